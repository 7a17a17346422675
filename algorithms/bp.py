"""Backpropagation (BP), the reference every other rule is compared with.

Equations: for the mean task loss L over a batch, every parameter moves along -dL/dW computed exactly by
reverse-mode autodiff through the whole network (delta_{l-1} = W_l^T delta_l * f'(a_{l-1}),
dL/dW_l = delta_l h_{l-1}^T).

Defaults follow the BP baseline of Ernoult et al. 2022 (scalingDTP `BaselineModel`): SGD, momentum 0.9,
lr 0.05. Deviation from the FW-DTP repository: its hand-written "BP" uses the pre-activation of layer
l-1 as the presynaptic term (a bug); this file is exact backprop.

The ImageNet 32x32 baseline of distributed-dtp (setups.md section 4) steps its lr down by 10x every 30 epochs
(StepLR(30, 0.1), once per epoch): ``lr_step_every`` / ``lr_step_gamma``, used by the preset
``ernoult2022-vgg-imagenet32``. The schedule is BP's own field because only that baseline uses it; the shared
``OptimConfig`` keeps none / cosine.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bioplaus_bench.registry import register_algorithm
from bioplaus_bench.rule import OptimConfig, RuleBase


@dataclass(frozen=True)
class Config(OptimConfig):
    """BP hyperparameters: the forward optimiser (fields of OptimConfig) and an optional step schedule."""

    lr_step_every: int = 0  # >0: multiply the lr by lr_step_gamma every this many epochs (StepLR); 0: no step
    lr_step_gamma: float = 0.1  # the StepLR factor

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lr_step_every < 0 or not 0 < self.lr_step_gamma <= 1:
            raise ValueError(f"lr_step_every = {self.lr_step_every!r}, lr_step_gamma = {self.lr_step_gamma!r}; "
                             "accepted: lr_step_every >= 0 (0: off) and 0 < lr_step_gamma <= 1")
        if self.lr_step_every and self.scheduler != "none":
            raise ValueError(f"lr_step_every = {self.lr_step_every} with scheduler = {self.scheduler!r}; accepted: "
                             "one schedule, i.e. scheduler = 'none' when lr_step_every > 0")


class BP(RuleBase):
    """Backpropagation: exact gradients by autodiff (the baseline)."""

    def __init__(self, model: torch.nn.Module, cfg: Config, task, epochs: int) -> None:
        super().__init__(model, cfg, task, epochs)
        self.opt = self.add_optimizer(model.parameters(), cfg)
        if cfg.lr_step_every:  # stepped once per epoch with the shared schedulers (RuleBase.end_epoch)
            self.schedulers.append(torch.optim.lr_scheduler.StepLR(self.opt, cfg.lr_step_every, cfg.lr_step_gamma))

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
        # distributed-dtp's ImageNet32 baseline (setups.md section 4): lr 0.01, StepLR(30, 0.1), batch 256
        "ernoult2022-vgg-imagenet32": {"lr": 0.01, "momentum": 0.9, "weight_decay": 1e-4, "scheduler": "none",
                                       "lr_step_every": 30, "lr_step_gamma": 0.1, "epochs": 90, "batch_size": 256,
                                       "arch": "vgg6"},
    },
)(BP)
