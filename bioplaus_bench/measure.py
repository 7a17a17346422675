"""Angle between a rule's update and the BP gradient, per layer.

Definition: for every trainable tensor W (weights and biases separately), the angle in degrees between the
flattened rule update direction u (what the rule leaves in ``W.grad`` before its optimiser step) and the
flattened BP gradient g = dL/dW of the mean task loss, both at the same pre-step weights on the same
batch: angle = degrees(arccos(<u, g> / (||u|| ||g||))). It is scale-free, so rules that scale their update
by beta are comparable. This is the post-2022 definition of scalingDTP (flattened tensor, PR #40), not the
older mean of per-row angles.

Measuring never changes training: the rule is deep-copied and stepped under a forked RNG, so the real
rule's weights, optimiser state, feedback weights and random stream are untouched.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from bioplaus_bench.rule import task_loss


def plain_copy(model: nn.Module) -> nn.Module:
    """A copy whose Linear/Conv2d subclasses (FA-style custom backward) are plain layers again."""
    m = copy.deepcopy(model)
    for mod in m.modules():
        if isinstance(mod, nn.Linear) and type(mod) is not nn.Linear:
            mod.__class__ = nn.Linear
        elif isinstance(mod, nn.Conv2d) and type(mod) is not nn.Conv2d:
            mod.__class__ = nn.Conv2d
    return m


def bp_gradients(model: nn.Module, loss: str, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    m = plain_copy(model)
    m.zero_grad(set_to_none=True)
    task_loss(loss, m(x), y).backward()
    return {n: p.grad.detach().clone() for n, p in m.named_parameters() if p.grad is not None}


def rule_directions(rule, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    devices = [x.device.index or 0] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        clone = copy.deepcopy(rule)
        clone.step(x, y)
    return {n: p.grad.detach().clone() for n, p in clone.model.named_parameters() if p.grad is not None}


def angle_deg(u: torch.Tensor, g: torch.Tensor) -> float:
    """arccos of the cosine, computed as 2 atan2(|a - b|, |a + b|) on unit vectors (exact near 0 and 180)."""
    u, g = u.flatten().double(), g.flatten().double()
    nu, ng = u.norm(), g.norm()
    if nu == 0.0 or ng == 0.0:
        return float("nan")
    a, b = u / nu, g / ng
    return math.degrees(2.0 * math.atan2((a - b).norm().item(), (a + b).norm().item()))


def angles_to_bp(rule, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Per-parameter angle (degrees) between the rule's update and the BP gradient on (x, y)."""
    bp = bp_gradients(rule.model, rule.task.loss, x, y)
    ours = rule_directions(rule, x, y)
    return {n: angle_deg(ours[n], g) for n, g in bp.items() if n in ours}
