"""Uniform sign-concordant feedback (uSF): Liao, Leibo & Poggio 2016, "How Important Is Weight Symmetry
in Backpropagation?", AAAI; the scaled variant as in biotorch (Sanfiz & Akrout 2021).

Equations (FA's backward pass, algorithms/fa.py, with a feedback that follows W's signs):
    B_l = s_l * sign(W_l)   recomputed from the current W_l before every step
    delta_{l-1} = (delta_l B_l) * f'(a_{l-1}),  dW_l = delta_l^T h_{l-1}
s_l is the standard deviation of W_l at initialisation, so that B_l has W_l's scale.
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


class USF(RuleBase):
    """uSF: feedback = std(W_init) * sign(W), refreshed before every update."""

    def __init__(self, model: nn.Module, cfg: Config, task, epochs: int) -> None:
        super().__init__(model, cfg, task, epochs)
        self.layers = swap_layers(model, lambda w: w.std() * torch.sign(w))
        self.scales = [m.weight.detach().std() for m in self.layers]  # s_l: std of W_l at initialisation
        self.opt = self.add_optimizer(model.parameters(), cfg)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():  # RULE: B_l = s_l sign(W_l) at the current weights, then FA's backward
            for m, s in zip(self.layers, self.scales, strict=True):
                m.feedback.copy_(s * torch.sign(m.weight))
        return self.autograd_step(x, y, self.opt)

    def extra_state(self) -> dict:
        return {"scales": self.scales}

    def load_extra_state(self, state: dict) -> None:
        self.scales = state["scales"]


register_algorithm("usf", Config)(USF)
