"""What every learning rule shares: the forward-optimiser settings, the task loss and a thin base class.

A rule is constructed as ``Rule(model, cfg, task, epochs)`` and the harness calls ``rule.step(x, y)`` once
per batch. ``step`` is the update: it leaves the rule's update direction in ``p.grad`` of the forward
parameters (the angle-to-BP measurement reads it there) and steps the optimiser. It returns the network's
output on the batch before the update, from which the harness logs the training loss and accuracy.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class OptimConfig:
    """Forward-weight optimiser settings, shared by every rule's Config."""

    optimizer: str = "sgd"  # sgd | adam | rmsprop
    lr: float = 0.05  # forward learning rate
    momentum: float = 0.9  # SGD momentum (RMSprop: momentum too; Adam: ignored)
    weight_decay: float = 0.0  # L2 penalty added by the optimiser
    scheduler: str = "none"  # none | cosine (stepped once per epoch, eta_min 1e-5)
    cosine_t_max: int = 0  # cosine period in epochs; 0 = the run's epoch budget

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adam", "rmsprop"):
            raise ValueError(f"optimizer {self.optimizer!r} not in sgd, adam, rmsprop")
        if self.scheduler not in ("none", "cosine"):
            raise ValueError(f"scheduler {self.scheduler!r} not in none, cosine")


def make_optimizer(params: Any, cfg: OptimConfig, epochs: int
                   ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
    params = [p for p in params if p.requires_grad]
    if cfg.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    elif cfg.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = None
    if cfg.scheduler == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=cfg.cosine_t_max or max(epochs, 1), eta_min=1e-5)
    return opt, sched


def task_loss(loss: str, out: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy for classification; 0.5 * squared error summed over outputs for regression."""
    if loss == "ce":
        return F.cross_entropy(out, y, reduction=reduction)
    per_sample = 0.5 * (out - y).pow(2).flatten(1).sum(1)
    return per_sample.mean() if reduction == "mean" else per_sample.sum()


class RuleBase:
    """One level of shared plumbing: optimisers, schedulers, checkpoint state and the feedback timer."""

    def __init__(self, model: nn.Module, cfg: Any, task: Any, epochs: int) -> None:
        self.model, self.cfg, self.task, self.epochs = model, cfg, task, epochs
        self.optimizers: list[torch.optim.Optimizer] = []
        self.schedulers: list[Any] = []
        self.feedback_seconds = 0.0  # time spent training feedback weights, read by the harness
        self.feedback_net: nn.Module | None = None  # the rule's own modules (feedback maps), saved in checkpoints

    def loss(self, out: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        return task_loss(self.task.loss, out, y, reduction)

    def add_optimizer(self, params: Any, cfg: OptimConfig) -> torch.optim.Optimizer:
        opt, sched = make_optimizer(params, cfg, self.epochs)
        self.optimizers.append(opt)
        if sched is not None:
            self.schedulers.append(sched)
        return opt

    def compile(self) -> None:
        """``--compile``: torch.compile, in place, every block of the network and every feedback map."""
        for module in [*self.model.children(), *(self.feedback_net or [])]:
            module.compile()

    def warmup(self, batches: Any) -> None:
        """Feedback-only training before the first epoch (rules that have it override this)."""

    def end_epoch(self) -> None:
        for s in self.schedulers:
            s.step()

    @contextmanager
    def feedback_timer(self):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            if torch.cuda.is_available() and next(self.model.parameters()).is_cuda:
                torch.cuda.synchronize()
            self.feedback_seconds += time.perf_counter() - t0

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(),
                "optimizers": [o.state_dict() for o in self.optimizers],
                "schedulers": [s.state_dict() for s in self.schedulers],
                "extra": self.extra_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        for o, s in zip(self.optimizers, state["optimizers"], strict=True):
            o.load_state_dict(s)
        for o, s in zip(self.schedulers, state["schedulers"], strict=True):
            o.load_state_dict(s)
        self.load_extra_state(state.get("extra", {}))

    def extra_state(self) -> dict[str, Any]:
        """Rule-owned state outside the model and the optimisers: by default ``feedback_net``'s weights."""
        return {} if self.feedback_net is None else {"feedback": self.feedback_net.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if self.feedback_net is not None:
            self.feedback_net.load_state_dict(state["feedback"])

    def autograd_step(self, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer) -> torch.Tensor:
        """Mean task loss, backward through the network as its layers define it, one optimiser step."""
        opt.zero_grad(set_to_none=False)
        out = self.model(x)
        self.loss(out, y).backward()
        opt.step()
        return out.detach()
