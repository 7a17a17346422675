"""Feedback alignment (FA), Lillicrap et al. 2016, "Random synaptic feedback weights support error
backpropagation for deep learning", Nature Communications 7:13276.

Equations (row-vector batch form, h_l = f(a_l), a_l = h_{l-1} W_l^T + b_l):
    delta_N = dL/da_N                                   (true output error)
    delta_{l-1} = (delta_l B_l) * f'(a_{l-1})           (Eq. FA: B_l replaces W_l in the backward pass)
    dW_l = delta_l^T h_{l-1},  db_l = sum_b delta_l    (the usual local form)
B_l has W_l's shape, is drawn once at initialisation and never changes (a buffer, not a parameter).
Conv2d layers are handled the same way: the input gradient is the transposed convolution with B_l.

Deviation: none in the rule. B is Xavier-uniform by default (as in biotorch); Lillicrap et al. draw it
uniformly with a hand-set scale.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bioplaus_bench.registry import register_algorithm
from bioplaus_bench.rule import OptimConfig, RuleBase


@dataclass(frozen=True)
class Config(OptimConfig):
    lr: float = 0.02  # forward learning rate (chosen on MNIST validation accuracy, 3 epochs)
    feedback_init: str = "xavier"  # xavier | kaiming | uniform: distribution of the fixed B_l
    feedback_scale: float = 1.0  # multiplies B_l after initialisation


class _LinearFA(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b, fb):  # noqa: D102
        ctx.save_for_backward(x, fb)
        ctx.has_bias = b is not None
        return F.linear(x, w, b)

    @staticmethod
    def backward(ctx, g):  # noqa: D102
        x, fb = ctx.saved_tensors
        gb = g.sum(0) if ctx.has_bias else None
        gx = g @ fb if ctx.needs_input_grad[0] else None  # delta_{l-1} uses B ...
        return gx, g.t() @ x, gb, None  # ... while dW uses the true presynaptic activity


class _Conv2dFA(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b, fb, stride, padding):  # noqa: D102
        ctx.save_for_backward(x, fb)
        ctx.conf = (w.shape, stride, padding, b is not None)
        return F.conv2d(x, w, b, stride, padding)

    @staticmethod
    def backward(ctx, g):  # noqa: D102
        x, fb = ctx.saved_tensors
        wshape, stride, padding, has_bias = ctx.conf
        gx = torch.nn.grad.conv2d_input(x.shape, fb, g, stride, padding) if ctx.needs_input_grad[0] else None
        gw = torch.nn.grad.conv2d_weight(x, wshape, g, stride, padding)
        return gx, gw, g.sum((0, 2, 3)) if has_bias else None, None, None, None


class LinearFA(nn.Linear):
    """nn.Linear whose backward pass sends the error through the fixed buffer ``feedback``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _LinearFA.apply(x, self.weight, self.bias, self.feedback)


class Conv2dFA(nn.Conv2d):
    """nn.Conv2d whose backward pass sends the error through the fixed buffer ``feedback``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Conv2dFA.apply(x, self.weight, self.bias, self.feedback, self.stride, self.padding)


def init_feedback(weight: torch.Tensor, kind: str, scale: float) -> torch.Tensor:
    fb = torch.empty_like(weight)
    if kind == "xavier":
        nn.init.xavier_uniform_(fb)
    elif kind == "kaiming":
        nn.init.kaiming_uniform_(fb, a=5**0.5)  # nn.Linear's own default
    elif kind == "uniform":
        nn.init.uniform_(fb, -1.0, 1.0)
    else:
        raise ValueError(f"feedback_init {kind!r} not in xavier, kaiming, uniform")
    return fb * scale


def swap_layers(model: nn.Module, make_feedback: Callable[[torch.Tensor], torch.Tensor]
                ) -> list[LinearFA | Conv2dFA]:
    """Turn every Linear/Conv2d into its feedback-matrix twin, sharing the same weight Parameters; returns
    them in the order they were swapped.

    ``make_feedback(weight)`` returns the initial B for that layer (also used by the sign-symmetry rules).
    """
    swapped = []
    for parent in list(model.modules()):
        for child in list(parent.children()):
            if type(child) in (nn.Linear, nn.Conv2d):
                child.__class__ = LinearFA if isinstance(child, nn.Linear) else Conv2dFA
                child.register_buffer("feedback", make_feedback(child.weight.detach()))
                swapped.append(child)
    return swapped


class FA(RuleBase):
    """Feedback alignment: errors travel down through fixed random matrices B_l instead of W_l^T."""

    def __init__(self, model: nn.Module, cfg: Config, task, epochs: int) -> None:
        super().__init__(model, cfg, task, epochs)
        swap_layers(model, lambda w: init_feedback(w, cfg.feedback_init, cfg.feedback_scale))
        self.opt = self.add_optimizer(model.parameters(), cfg)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # RULE: autograd runs the FA backward of every layer (delta_{l-1} = delta_l B_l, see module doc).
        return self.autograd_step(x, y, self.opt)


# LeNet: lr 0.02 diverges within 25 batches; 0.001 is the best of results/tuning/lenet-fa (no reference value)
register_algorithm("fa", Config, arch_defaults={"lenet": {"lr": 0.001}})(FA)
