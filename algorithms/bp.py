"""Backpropagation (BP), the reference every other rule is compared with.

Equations: for the mean task loss L over a batch, every parameter moves along -dL/dW computed exactly by
reverse-mode autodiff through the whole network (delta_{l-1} = W_l^T delta_l * f'(a_{l-1}),
dL/dW_l = delta_l h_{l-1}^T).

Defaults follow the BP baseline of Ernoult et al. 2022 (scalingDTP `BaselineModel`): SGD, momentum 0.9,
lr 0.05. Deviation from the FW-DTP repository: its hand-written "BP" uses the pre-activation of layer
l-1 as the presynaptic term (a bug); this file is exact backprop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bioplaus_bench.registry import register_algorithm
from bioplaus_bench.rule import OptimConfig, RuleBase


@dataclass(frozen=True)
class Config(OptimConfig):
    """BP hyperparameters: only the forward optimiser (fields of OptimConfig)."""


class BP(RuleBase):
    """Backpropagation: exact gradients by autodiff (the baseline)."""

    def __init__(self, model: torch.nn.Module, cfg: Config, task, epochs: int) -> None:
        super().__init__(model, cfg, task, epochs)
        self.opt = self.add_optimizer(model.parameters(), cfg)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # RULE: W <- W - lr * dL/dW, the gradient of the mean loss by autodiff.
        return self.autograd_step(x, y, self.opt)


register_algorithm(
    "bp", Config,
    presets={
        "ernoult2022-lenet": {"lr": 0.05, "weight_decay": 1e-4, "scheduler": "cosine", "cosine_t_max": 85,
                              "epochs": 90, "batch_size": 128, "arch": "lenet"},
        "ernoult2022-vgg": {"lr": 0.05, "weight_decay": 1e-4, "scheduler": "cosine", "cosine_t_max": 85,
                            "epochs": 90, "batch_size": 128, "arch": "vgg6"},
    },
)(BP)
