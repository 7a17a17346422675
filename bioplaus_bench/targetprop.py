"""Shared pieces of the target-propagation family (TP, DTP, DRL, L-DRL, FW-DTP).

Notation (Ernoult et al. 2022): s_l = F_l(s_{l-1}) is the output of block l (s_0 = x), G_l maps block l's
output space back to block l-1's, t_l is the target of s_l, and N is the output block.

* ``forward_blocks``: s_1..s_N with each block's input detached, so every block learns from its own local
  loss only.
* ``output_target``: t_N = s_N - beta * dL_sum/ds_N (the summed task loss, so per sample
  t_N = s_N - beta (softmax(s_N) - onehot)).
* ``propagate``: t_{l-1} = s_{l-1} + G_l(t_l) - G_l(s_l) (difference correction, DTP) or
  t_{l-1} = G_l(t_l) (plain TP).
* ``local_forward_step``: one optimiser step on sum_l c * ||s_l - t_l||^2 (summed over units, meaned
  over the batch); c = 1/2 for L-DRL, 1 for FW-DTP.
* Feedback maps: ``lee_feedback`` builds G_l(h) = act_{l-1}(V_l h + c_l) (Lee et al. 2015, Meulemans et
  al. 2020, Shibuya et al. 2023) for MLPs; ``invert`` builds Ernoult et al.'s layer-by-layer inverse
  (Linear -> Linear(out, in), Conv2d -> ConvTranspose2d, MaxPool -> MaxUnpool with the forward indices,
  activation -> the same activation, Flatten -> Unflatten), applied child by child in reverse order.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from bioplaus_bench.nets import MaxPoolIdx
from bioplaus_bench.rule import task_loss

ACTIVATIONS = (nn.Tanh, nn.ELU, nn.ReLU, nn.Sigmoid, nn.Identity)


def forward_blocks(blocks: Sequence[nn.Module], x: torch.Tensor) -> list[torch.Tensor]:
    """[s_0, s_1, ..., s_N], each s_l = F_l(s_{l-1}.detach()) with F_l's graph kept for its local loss."""
    s = [x]
    for block in blocks:
        s.append(block(s[-1].detach()))
    return s


def output_target(loss: str, s_n: torch.Tensor, y: torch.Tensor, beta: float) -> torch.Tensor:
    """t_N = s_N - beta * dL_sum/ds_N, computed on detached logits (no full backward pass)."""
    s = s_n.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(task_loss(loss, s, y, reduction="sum"), s)
    return (s - beta * g).detach()


@torch.no_grad()
def propagate(feedback: Sequence[nn.Module | None], s: Sequence[torch.Tensor], t_n: torch.Tensor,
              difference: bool = True) -> list[torch.Tensor | None]:
    """Targets [None, t_1, ..., t_N] from t_N down through the feedback maps (t_0 is never needed)."""
    n = len(s) - 1
    t: list[torch.Tensor | None] = [None] * (n + 1)
    t[n] = t_n
    for layer in range(n, 1, -1):
        g = feedback[layer - 1]  # feedback[i] belongs to block i+1 (blocks are 0-indexed in the list)
        if difference:
            t[layer - 1] = s[layer - 1].detach() + g(t[layer]) - g(s[layer].detach())
        else:
            t[layer - 1] = g(t[layer])
    return t


def local_forward_step(s: Sequence[torch.Tensor], t: Sequence[torch.Tensor | None],
                       opt: torch.optim.Optimizer, scale: float = 0.5) -> float:
    """One optimiser step on sum_l scale * ||s_l - t_l||^2 (summed over units, meaned over the batch)."""
    opt.zero_grad(set_to_none=False)
    b = s[-1].shape[0]
    loss = sum(scale * (s_l - t_l).pow(2).sum() / b for s_l, t_l in zip(s[1:], t[1:], strict=True)
               if t_l is not None and s_l.requires_grad)
    loss.backward()
    opt.step()
    return loss.item()


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


def is_mlp(blocks: Sequence[nn.Module]) -> bool:
    return all(not isinstance(m, nn.Conv2d | nn.MaxPool2d) for b in blocks for m in b.modules())


def _activation_of(block: nn.Module) -> nn.Module:
    mods = list(block.children()) if isinstance(block, nn.Sequential) else [block]
    last = mods[-1] if mods else nn.Identity()
    return type(last)() if isinstance(last, ACTIVATIONS) else nn.Identity()


def _linear_of(block: nn.Module) -> nn.Linear:
    (lin,) = [m for m in block.modules() if isinstance(m, nn.Linear)]
    return lin


def lee_feedback(blocks: Sequence[nn.Module], bias: bool = True) -> nn.ModuleList:
    """G_l(h) = act_{l-1}(V_l h + c_l) for l = 1..N-1 (list index; block 0 gets an Identity placeholder)."""
    maps: list[nn.Module] = [nn.Identity()]
    for i in range(1, len(blocks)):
        lin = _linear_of(blocks[i])
        maps.append(nn.Sequential(nn.Linear(lin.out_features, lin.in_features, bias=bias),
                                  _activation_of(blocks[i - 1])))
    return nn.ModuleList(maps).to(lin.weight.device)


class Unpool(nn.Module):
    """MaxUnpool2d that reads the indices of its paired forward MaxPoolIdx (passed explicitly, per layer)."""

    def __init__(self, pool: MaxPoolIdx) -> None:
        super().__init__()
        self.unpool = nn.MaxUnpool2d(pool.kernel_size, pool.stride, pool.padding)
        self.pool = [pool]  # a list, so the forward module is not registered as a child

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        pool = self.pool[0]
        idx = pool.indices
        if idx is None or idx.shape[1:] != y.shape[1:] or y.shape[0] % idx.shape[0]:
            raise RuntimeError("Unpool needs the indices of a forward pass on a batch of the same shape")
        if y.shape[0] != idx.shape[0]:  # several evaluations stacked on the batch axis share the indices
            idx = idx.repeat(y.shape[0] // idx.shape[0], 1, 1, 1)
        return self.unpool(y, idx, output_size=pool.in_size[-2:])


class Unflatten(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.shape: tuple[int, ...] | None = None

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y.view(y.shape[0], *self.shape)


def invert(module: nn.Module, example: torch.Tensor) -> nn.Module:
    """Ernoult et al.'s inverse of a block, built from a forward pass on ``example`` (for shapes)."""
    if isinstance(module, nn.Sequential):
        parts, h = [], example
        for child in module.children():
            parts.append(invert(child, h))
            h = child(h)
        return nn.Sequential(*reversed(parts))
    if isinstance(module, nn.Linear):
        return nn.Linear(module.out_features, module.in_features, bias=module.bias is not None)
    if isinstance(module, nn.Conv2d):
        out = module(example)
        # output_padding recovers the input size lost to the stride
        op = tuple(int(e - ((o - 1) * s - 2 * p + k)) for e, o, s, p, k in zip(
            example.shape[-2:], out.shape[-2:], module.stride, module.padding, module.kernel_size, strict=True))
        return nn.ConvTranspose2d(module.out_channels, module.in_channels, module.kernel_size, module.stride,
                                  module.padding, output_padding=op, bias=module.bias is not None)
    if isinstance(module, MaxPoolIdx):
        return Unpool(module)
    if isinstance(module, nn.Flatten):
        u = Unflatten()
        u.shape = tuple(example.shape[1:])
        return u
    if isinstance(module, ACTIVATIONS):
        return type(module)()
    raise TypeError(f"cannot invert {type(module).__name__}")


def inverse_feedback(blocks: Sequence[nn.Module], input_shape: tuple[int, ...]) -> nn.ModuleList:
    """Ernoult-style G_l for every block (G_0 is built too but never trained or used for targets)."""
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


def attach_feedback(rule, feedback: nn.ModuleList, cfg) -> None:
    """Store G_l, the per-layer iterations/noise lists and one optimiser per trainable G_l on ``rule``."""
    n = len(rule.blocks) - 1
    rule.feedback = feedback
    rule.iters = per_layer(cfg.fb_iterations, n, "fb_iterations", minimum=1)
    rule.noise = per_layer(cfg.fb_noise, n, "fb_noise")
    rule.fb_opts = feedback_optimizers(feedback, per_layer(cfg.fb_lr, n, "fb_lr"), cfg.fb_momentum)
    rule.optimizers += [o for o in rule.fb_opts if o is not None]


def feedback_optimizers(feedback: nn.ModuleList, lrs: Sequence[float], momentum: float,
                        kind: str = "sgd") -> list[torch.optim.Optimizer | None]:
    """One optimiser per trainable feedback layer 1..N-1 (index 0 is None: G_0 is never trained)."""
    opts: list[torch.optim.Optimizer | None] = [None]
    for g, lr in zip(list(feedback)[1:], lrs, strict=True):
        params = list(g.parameters())
        if not params:
            opts.append(None)
        elif kind == "adam":
            opts.append(torch.optim.Adam(params, lr=lr))
        else:
            opts.append(torch.optim.SGD(params, lr=lr, momentum=momentum))
    return opts


def train_feedback(blocks: Sequence[nn.Module], opts: Sequence[torch.optim.Optimizer | None],
                   iterations: Sequence[int], x: torch.Tensor, layer_loss) -> list[float]:
    """Train G_1..G_{N-1} in forward order, ``iterations[l-1]`` steps each, on the clean activations of x.

    ``layer_loss(l, s)`` returns the feedback loss of G_l given the clean activations s = [s_0..s_N].
    """
    with torch.no_grad():
        s = [x]
        for block in blocks:
            s.append(block(s[-1]))
    losses = []
    for layer in range(1, len(blocks)):
        opt = opts[layer]
        if opt is None:
            continue
        for _ in range(iterations[layer - 1]):
            opt.zero_grad(set_to_none=False)
            loss = layer_loss(layer, s)
            loss.backward()
            opt.step()
        losses.append(loss.item())
    return losses
