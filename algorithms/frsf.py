"""Fixed random-magnitude sign-concordant feedback (frSF): Moskovitz, Litwin-Kumar & Abbott 2018,
"Feedback alignment in deep convolutional networks"; the variant of biotorch (Sanfiz & Akrout 2021).

Equations: B_l = |R_l| * sign(W_l), with R_l drawn once (Xavier-uniform, W_l's shape) and fixed, and the
signs following the current W_l before every step; the backward pass is FA's (algorithms/fa.py):
delta_{l-1} = (delta_l B_l) * f'(a_{l-1}),  dW_l = delta_l^T h_{l-1}. The update step is uSF's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from bioplaus_bench.algorithms.usf import USF
from bioplaus_bench.algorithms.usf import Config as USFConfig
from torch import nn

from bioplaus_bench.registry import register_algorithm


@dataclass(frozen=True)
class Config(USFConfig):
    lr: float = 0.05  # forward learning rate


class FRSF(USF):
    """frSF: feedback = |fixed random| * sign(W), refreshed before every update."""

    def __init__(self, model: nn.Module, cfg: Config, task, epochs: int) -> None:
        self.magnitudes: list[torch.Tensor] = []
        super().__init__(model, cfg, task, epochs)

    def initial_feedback(self, weight: torch.Tensor) -> torch.Tensor:
        r = torch.empty_like(weight)
        nn.init.xavier_uniform_(r)
        self.magnitudes.append(r.abs())
        return self.magnitudes[-1] * torch.sign(weight)

    @torch.no_grad()
    def refresh_feedback(self) -> None:
        for m, mag in zip(self.layers, self.magnitudes, strict=True):
            m.feedback.copy_(mag * torch.sign(m.weight))

    def extra_state(self) -> dict:
        return {"scales": self.scales, "magnitudes": self.magnitudes}

    def load_extra_state(self, state: dict) -> None:
        self.scales, self.magnitudes = state["scales"], state["magnitudes"]


register_algorithm("frsf", Config)(FRSF)
