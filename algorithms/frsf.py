"""Fixed random-magnitude sign-concordant feedback (frSF): Moskovitz, Litwin-Kumar & Abbott 2018,
"Feedback alignment in deep convolutional networks"; the variant of biotorch (Sanfiz & Akrout 2021).

Equations: B_l = |R_l| * sign(W_l), with R_l drawn once (Xavier-uniform, W_l's shape) and fixed, and the
signs following the current W_l before every step; the backward pass is FA's (algorithms/fa.py):
delta_{l-1} = (delta_l B_l) * f'(a_{l-1}),  dW_l = delta_l^T h_{l-1}.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from bioplaus_bench.algorithms.fa import swap_layers
from torch import nn

from bioplaus_bench.registry import register_algorithm
from bioplaus_bench.rule import OptimConfig, RuleBase


@dataclass(frozen=True)
class Config(OptimConfig):
    lr: float = 0.05  # forward learning rate


class FRSF(RuleBase):
    """frSF: feedback = |fixed random| * sign(W), refreshed before every update."""

    def __init__(self, model: nn.Module, cfg: Config, task, epochs: int) -> None:
        super().__init__(model, cfg, task, epochs)
        magnitudes: list[torch.Tensor] = []  # |R_l|, drawn once per layer in the order the layers are swapped

        def signed_random(weight: torch.Tensor) -> torch.Tensor:
            r = torch.empty_like(weight)
            nn.init.xavier_uniform_(r)
            magnitudes.append(r.abs())
            return magnitudes[-1] * torch.sign(weight)

        self.layers = swap_layers(model, signed_random)
        self.magnitudes = magnitudes
        self.opt = self.add_optimizer(model.parameters(), cfg)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # RULE: B_l = |R_l| sign(W_l) at the current weights, then FA's backward
            for m, mag in zip(self.layers, self.magnitudes, strict=True):
                m.feedback.copy_(mag * torch.sign(m.weight))
        return self.autograd_step(x, y, self.opt)

    def extra_state(self) -> dict:
        return {"magnitudes": self.magnitudes}

    def load_extra_state(self, state: dict) -> None:
        self.magnitudes = state["magnitudes"]


# LeNet: lr 0.05 diverges within 15 batches; 0.02 is the best of results/tuning/lenet-fa (no reference value)
register_algorithm("frsf", Config, arch_defaults={"lenet": {"lr": 0.02}})(FRSF)
