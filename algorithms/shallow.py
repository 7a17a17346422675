"""Shallow learning: only the output layer learns (the control of Lillicrap et al. 2016, "Random synaptic
feedback weights support error backpropagation for deep learning", Nature Communications, Fig. 2a).

Equations: the hidden layers keep their random initial weights; the output block N follows the exact
gradient of the mean task loss, dL/dW_N = delta_N h_{N-1}^T with delta_N = dL/da_N. The hidden layers
get no update (their angle to BP is undefined and recorded as NaN).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bioplaus_bench.registry import register_algorithm
from bioplaus_bench.rule import OptimConfig, RuleBase


@dataclass(frozen=True)
class Config(OptimConfig):
    """Shallow-learning hyperparameters: the output layer's optimiser (fields of OptimConfig)."""


class Shallow(RuleBase):
    """Shallow learning: train the output layer only; hidden layers stay random (Lillicrap 2016 control)."""

    def __init__(self, model: torch.nn.Module, cfg: Config, task, epochs: int) -> None:
        super().__init__(model, cfg, task, epochs)
        self.output = list(model.children())[-1]
        self.opt = self.add_optimizer(self.output.parameters(), cfg)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.opt.zero_grad(set_to_none=False)
        with torch.no_grad():  # RULE: the hidden layers are fixed features
            h = x
            for block in list(self.model.children())[:-1]:
                h = block(h)
        out = self.output(h)
        self.loss(out, y).backward()  # the exact gradient, for the output layer only
        self.opt.step()
        return out.detach()


register_algorithm("shallow", Config)(Shallow)
