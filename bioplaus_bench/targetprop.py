"""Shared pieces of the target-propagation family (TP, DTP, DRL, L-DRL, FW-DTP).

Notation (Ernoult et al. 2022): s_l = F_l(s_{l-1}) is the output of block l (s_0 = x), G_l maps block l's
output space back to block l-1's, t_l is the target of s_l, and N is the output block.

Indexing, one convention throughout: ``blocks[i]``, ``feedback[i]`` and ``pools[i]`` all belong to block i
(0-based); ``s[i]`` is block i's input and ``s[i + 1]`` its output (s[0] = x), and a target list ``t`` is
indexed like ``s``. ``feedback[i].map`` is G of block i: it maps s[i + 1]'s space back to s[i]'s.

* ``forward_blocks``: s_1..s_N with each block's input detached, so every block learns from its own local
  loss only, and each block's max-pooling indices (``pools``), passed explicitly to the unpooling in G.
* ``output_target``: t_N = s_N - beta * dL_sum/ds_N (the summed task loss, so per sample
  t_N = s_N - beta (softmax(s_N) - onehot)).
* ``propagate``: t_{l-1} = s_{l-1} + G_l(t_l) - G_l(s_l) (difference correction, DTP) or
  t_{l-1} = G_l(t_l) (plain TP).
* ``local_forward_step``: one optimiser step on sum_l c * ||s_l - t_l||^2 (summed over units, meaned
  over the batch); c = 1/2 for L-DRL, 1 for FW-DTP.
* ``build_feedback``: one ``FeedbackLayer`` per block (map, optimiser, iterations, noise), from the
  rule's per-layer ``fb_*`` settings; ``train_feedback`` trains them on a batch.
* Feedback maps: ``lee_feedback`` builds G_l(h) = act_{l-1}(V_l h + c_l) (Lee et al. 2015, Meulemans et
  al. 2020, Shibuya et al. 2023) for MLPs; ``invert`` builds Ernoult et al.'s layer-by-layer inverse
  (Linear -> Linear(out, in), Conv2d -> ConvTranspose2d, MaxPool -> MaxUnpool with the forward indices,
  activation -> the same activation, Flatten -> Unflatten), applied child by child in reverse order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bioplaus_bench.rule import task_loss

ACTIVATIONS = (nn.Tanh, nn.ELU, nn.ReLU, nn.Sigmoid, nn.Identity)

Pools = list[torch.Tensor]  # max-pooling indices of one block's forward pass, in the block's order

# scalingDTP's feedback settings per conv network (algorithms.md section 7: dtp_lenet.yaml; SimpleVGG = HEAD
# defaults), per trained feedback layer G_1..G_{N-1}. Its VanillaDTP and TargetProp copy them unchanged; the
# MLP defaults of the rules' Configs diverge on these networks within 10 batches.
SCALINGDTP_FEEDBACK: dict[str, dict[str, tuple]] = {
    "lenet": {"fb_iterations": (41, 51, 24), "fb_noise": (0.4164, 0.3826, 0.1395),
              "fb_lr": (7.19e-4, 1.25e-4, 3.54e-2)},
    "vgg6": {"fb_iterations": (20, 30, 35, 55, 20), "fb_noise": (0.4, 0.4, 0.2, 0.2, 0.08),
             "fb_lr": (1e-4, 3.5e-4, 8e-3, 8e-3, 0.18)},
}


def parts_of(block: nn.Module) -> list[nn.Module]:
    """A block's layers in forward order (a block is a flat nn.Sequential, or one layer)."""
    return list(block.children()) if isinstance(block, nn.Sequential) else [block]


def run_block(block: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, Pools]:
    """F(x) for one block, and the indices of its max-pooling layers (read by G's unpooling)."""
    pools: Pools = []
    for m in parts_of(block):
        if isinstance(m, nn.MaxPool2d):
            x, idx = F.max_pool2d(x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode,
                                  return_indices=True)
            pools.append(idx)
        else:
            x = m(x)
    return x, pools


def forward_blocks(blocks: Sequence[nn.Module], x: torch.Tensor) -> tuple[list[torch.Tensor], list[Pools]]:
    """([s_0, s_1, ..., s_N], pools), each s_{i+1} = F_i(s_i.detach()) with F_i's graph kept for its local loss."""
    s, pools = [x], []
    for block in blocks:
        out, idx = run_block(block, s[-1].detach())
        s.append(out)
        pools.append(idx)
    return s, pools


def output_target(loss: str, s_n: torch.Tensor, y: torch.Tensor, beta: float) -> torch.Tensor:
    """t_N = s_N - beta * dL_sum/ds_N, computed on detached logits (no full backward pass)."""
    s = s_n.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(task_loss(loss, s, y, reduction="sum"), s)
    return (s - beta * g).detach()


@dataclass
class FeedbackLayer:
    """G of one block and how it learns."""

    map: nn.Module  # G: the block's output space -> its input space, called as map(h, pools)
    opt: torch.optim.Optimizer | None  # None: G is not trained (block 0, fixed or parameter-free maps)
    iterations: int  # optimiser steps on the feedback loss per batch
    noise: float  # sigma of the feedback loss's noise


@torch.no_grad()
def propagate(feedback: Sequence[FeedbackLayer], s: Sequence[torch.Tensor], pools: Sequence[Pools],
              t_n: torch.Tensor, difference: bool = True) -> list[torch.Tensor | None]:
    """Targets [None, t_1, ..., t_N] (indexed like s) from t_N down through the feedback maps."""
    n = len(s) - 1
    t: list[torch.Tensor | None] = [None] * (n + 1)
    t[n] = t_n
    for i in range(n - 1, 0, -1):  # block i's G sends the target of its output, t[i + 1], to its input
        g = feedback[i].map
        if difference:
            t[i] = s[i].detach() + g(t[i + 1], pools[i]) - g(s[i + 1].detach(), pools[i])
        else:
            t[i] = g(t[i + 1], pools[i])
    return t


def local_forward_step(s: Sequence[torch.Tensor], t: Sequence[torch.Tensor | None],
                       opt: torch.optim.Optimizer, scale: float = 0.5) -> torch.Tensor:
    """One optimiser step on sum_l scale * ||s_l - t_l||^2 (summed over units, meaned over the batch)."""
    opt.zero_grad(set_to_none=False)
    b = s[-1].shape[0]
    loss = sum(scale * (s_l - t_l).pow(2).sum() / b for s_l, t_l in zip(s[1:], t[1:], strict=True)
               if t_l is not None and s_l.requires_grad)
    loss.backward()
    opt.step()
    return loss.detach()


def per_layer(value: float | int | Sequence, n: int, name: str, minimum: float = 0.0) -> tuple:
    """Broadcast a scalar or a 1-tuple to n feedback layers; a list must have length n and every value be
    at least ``minimum`` (checked)."""
    vals = tuple(value) if isinstance(value, tuple | list) else (value,)
    if not vals or any(not v >= minimum for v in vals):  # `not >=` also rejects NaN
        raise ValueError(f"{name} = {value!r}; accepted: one value or one per feedback layer, each >= {minimum:g}")
    if len(vals) == 1:
        return vals * n
    if len(vals) != n:
        raise ValueError(f"{name} has {len(vals)} entries but the network has {n} trainable feedback layers; "
                         f"give one value or {n}")
    return vals


def build_feedback(maps: nn.ModuleList, cfg: Any) -> list[FeedbackLayer]:
    """One FeedbackLayer per block from the rule's ``fb_iterations``, ``fb_noise``, ``fb_lr`` (one value or one
    per trainable layer 1..N-1) and ``fb_momentum``: SGD per trainable G; G of block 0 is never trained."""
    n = len(maps) - 1
    iters = per_layer(cfg.fb_iterations, n, "fb_iterations", minimum=1)
    noise = per_layer(cfg.fb_noise, n, "fb_noise")
    lrs = per_layer(cfg.fb_lr, n, "fb_lr")
    out = [FeedbackLayer(maps[0], None, 0, 0.0)]
    for i in range(1, n + 1):
        params = list(maps[i].parameters())
        opt = torch.optim.SGD(params, lr=lrs[i - 1], momentum=cfg.fb_momentum) if params else None
        out.append(FeedbackLayer(maps[i], opt, iters[i - 1], noise[i - 1]))
    return out


def is_mlp(blocks: Sequence[nn.Module]) -> bool:
    return all(not isinstance(m, nn.Conv2d | nn.MaxPool2d) for b in blocks for m in b.modules())


class Inverse(nn.Module):
    """A feedback map G: layers applied in order; an unpooling layer takes the next forward indices, last
    pooling first (G undoes the block in reverse)."""

    def __init__(self, parts: list[nn.Module]) -> None:
        super().__init__()
        self.parts = nn.ModuleList(parts)

    def forward(self, h: torch.Tensor, pools: Pools = ()) -> torch.Tensor:
        return apply_parts(list(self.parts), h, pools)

    def linear_split(self) -> tuple[list[nn.Module], nn.Module, list[nn.Module]] | None:
        """(P, L, S) with G(h) = S(L(P(h))): P parameter-free, L the map's one Linear or ConvTranspose2d,
        S only reshapes. Then G(a) - G(b) = S(L'(P(a) - P(b))) with L' = L without its bias, exactly. None when
        G has another form."""
        where = [k for k, m in enumerate(self.parts) if any(True for _ in m.parameters())]
        if len(where) != 1 or not isinstance(self.parts[where[0]], nn.Linear | nn.ConvTranspose2d):
            return None
        k = where[0]
        suffix = list(self.parts[k + 1:])
        if not all(isinstance(m, Unflatten | nn.Identity) for m in suffix):
            return None
        return list(self.parts[:k]), self.parts[k], suffix


def apply_parts(parts: list[nn.Module], h: torch.Tensor, pools: Pools = ()) -> torch.Tensor:
    k = len(pools)
    for part in parts:
        if isinstance(part, Unpool):
            k -= 1
            h = part(h, pools[k])
        else:
            h = part(h)
    return h


def without_bias(layer: nn.Module, u: torch.Tensor) -> torch.Tensor:
    """A Linear or ConvTranspose2d layer applied without its bias (a difference of two outputs)."""
    if isinstance(layer, nn.Linear):
        return F.linear(u, layer.weight)
    return F.conv_transpose2d(u, layer.weight, None, layer.stride, layer.padding, layer.output_padding,
                              layer.groups, layer.dilation)


def _activation_of(block: nn.Module) -> nn.Module:
    last = parts_of(block)[-1]
    return type(last)() if isinstance(last, ACTIVATIONS) else nn.Identity()


def _linear_of(block: nn.Module) -> nn.Linear:
    (lin,) = [m for m in block.modules() if isinstance(m, nn.Linear)]
    return lin


def lee_feedback(blocks: Sequence[nn.Module], bias: bool = True) -> nn.ModuleList:
    """G_l(h) = act_{l-1}(V_l h + c_l) for blocks 1..N-1 (block 0 gets an identity placeholder)."""
    maps: list[nn.Module] = [Inverse([])]
    for i in range(1, len(blocks)):
        lin = _linear_of(blocks[i])
        maps.append(Inverse([nn.Linear(lin.out_features, lin.in_features, bias=bias),
                             _activation_of(blocks[i - 1])]))
    return nn.ModuleList(maps).to(lin.weight.device)


class Unpool(nn.Module):
    """MaxUnpool2d back to the forward input's size, with the forward pass's indices given to each call."""

    def __init__(self, pool: nn.MaxPool2d, in_size: tuple[int, int]) -> None:
        super().__init__()
        self.unpool = nn.MaxUnpool2d(pool.kernel_size, pool.stride, pool.padding)
        self.in_size = in_size

    def forward(self, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        if idx.shape[1:] != y.shape[1:] or y.shape[0] % idx.shape[0]:
            raise RuntimeError("Unpool needs the indices of a forward pass on a batch of the same shape")
        if y.shape[0] != idx.shape[0]:  # several evaluations stacked on the batch axis share the indices
            idx = idx.repeat(y.shape[0] // idx.shape[0], 1, 1, 1)
        return self.unpool(y, idx, output_size=self.in_size)


class Unflatten(nn.Module):
    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y.view(y.shape[0], *self.shape)


def invert_layer(layer: nn.Module, example: torch.Tensor) -> nn.Module:
    """Ernoult et al.'s inverse of one layer, given an example input (for shapes)."""
    if isinstance(layer, nn.Linear):
        return nn.Linear(layer.out_features, layer.in_features, bias=layer.bias is not None)
    if isinstance(layer, nn.Conv2d):
        out = layer(example)
        # output_padding recovers the input size lost to the stride
        op = tuple(int(e - ((o - 1) * s - 2 * p + k)) for e, o, s, p, k in zip(
            example.shape[-2:], out.shape[-2:], layer.stride, layer.padding, layer.kernel_size, strict=True))
        return nn.ConvTranspose2d(layer.out_channels, layer.in_channels, layer.kernel_size, layer.stride,
                                  layer.padding, output_padding=op, bias=layer.bias is not None)
    if isinstance(layer, nn.MaxPool2d):
        return Unpool(layer, tuple(example.shape[-2:]))
    if isinstance(layer, nn.Flatten):
        return Unflatten(tuple(example.shape[1:]))
    if isinstance(layer, ACTIVATIONS):
        return type(layer)()
    raise TypeError(f"cannot invert {type(layer).__name__}")


def invert(block: nn.Module, example: torch.Tensor) -> Inverse:
    """G of a block: its layers inverted one by one (shapes from a forward pass on ``example``), reversed."""
    parts, h = [], example
    for layer in parts_of(block):
        parts.append(invert_layer(layer, h))
        h = layer(h)
    return Inverse(list(reversed(parts)))


def inverse_feedback(blocks: Sequence[nn.Module], input_shape: tuple[int, ...]) -> nn.ModuleList:
    """Ernoult-style G for every block (G of block 0 is built too but never trained or used for targets)."""
    dev = next(blocks[0].parameters()).device
    h = torch.zeros(2, *input_shape, device=dev)
    maps = []
    with torch.no_grad():
        for block in blocks:
            maps.append(invert(block, h))
            h = block(h)
    return nn.ModuleList(maps).to(dev)


def make_feedback(blocks: Sequence[nn.Module], input_shape: tuple[int, ...], bias: bool = True) -> nn.ModuleList:
    """Lee-form G_l for MLPs, Ernoult's layer inverse for conv nets (as scalingDTP's DTP/TP do)."""
    return lee_feedback(blocks, bias) if is_mlp(blocks) else inverse_feedback(blocks, input_shape)


def detached(s: list[torch.Tensor]) -> list[torch.Tensor]:
    return [h.detach() for h in s]


def clean_forward(blocks: Sequence[nn.Module], x: torch.Tensor) -> tuple[list[torch.Tensor], list[Pools]]:
    """s and pools of x without a graph (feedback-only training, e.g. warm-up)."""
    with torch.no_grad():
        return forward_blocks(blocks, x)


def fit(fb: FeedbackLayer, loss: Callable[[], torch.Tensor]) -> None:
    """``fb.iterations`` optimiser steps of one feedback map on ``loss()``."""
    for _ in range(fb.iterations):
        fb.opt.zero_grad(set_to_none=False)
        loss().backward()
        fb.opt.step()


FeedbackLoss = Callable[[int, list[torch.Tensor], list[Pools]], torch.Tensor]


def train_feedback(feedback: Sequence[FeedbackLayer], s: list[torch.Tensor], pools: list[Pools],
                   layer_loss: FeedbackLoss) -> None:
    """Train the G of blocks 1..N-1 in forward order, ``iterations`` steps each, on the batch's clean activations
    s (detached; the forward pass the rule's update uses too, so the batch is not run twice) and pools.

    ``layer_loss(i, s, pools)`` is the feedback loss of block i's G.
    """
    for i, fb in enumerate(feedback):
        if fb.opt is not None:
            fit(fb, lambda i=i: layer_loss(i, s, pools))
