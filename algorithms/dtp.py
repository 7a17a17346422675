"""Difference target propagation (DTP): Lee et al. 2015, "Difference Target Propagation", ECML-PKDD.

Equations (s_l = F_l(s_{l-1}); for MLPs G_l(h) = act_{l-1}(V_l h + c_l), Lee's form):
    t_N = s_N - beta * dL_sum/ds_N                           (output target on the output block)
    t_{l-1} = s_{l-1} + G_l(t_l) - G_l(s_l)                   (difference correction, Lee Eq. 15)
    forward loss = sum_l 1/2 ||s_l - t_l||^2                  (each block's input held constant)
    feedback loss of G_l: ||G_l(F_l(s_{l-1} + e)) - (s_{l-1} + e)||^2, e ~ N(0, sigma^2 I)
                                                              (noise-corrupted reconstruction, Lee Eq. 16)
Schedule: per batch, each G_l (l = 1..N-1) takes ``fb_iterations`` steps on its reconstruction loss,
then one forward step (the per-batch order of Meulemans et al. and Shibuya et al.; Lee et al. alternated
per epoch). Optional feedback-only warm-up epochs (``warmup_epochs``) count in epoch 1's time.

Computation (exact): F_l does not change while G_l trains, so the k = ``fb_iterations`` noisy inputs of G_l draw
their noise in one call (the same numbers as k draws) and F_l(s_{l-1} + e) runs once on all of them; for the Lee
maps each step's gradient is in closed form, dL/d(V h + c) = act'(2 (G_l(h) - s_{l-1} - e) / b) with autograd's
activation-backward kernels, and its SGD step is PyTorch's fused kernel (``fit_feedback``; ``feedback_loss`` keeps
the equation, and a test checks that both give the same weights). The conv nets' layer inverses train on
``feedback_loss`` through autograd. One forward pass of the batch serves the feedback training and the update.

Deviations from Lee et al.: the output target is set on the output block (as in the issue and in
Ernoult/Shibuya), instead of Lee's BP-trained top layer with a target on the last hidden layer; all
layers are trained (Lee's code forgot W6/B5). Conv nets use Ernoult et al.'s layer inverse as G_l.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bioplaus_bench import targetprop as tp
from bioplaus_bench.registry import register_algorithm
from bioplaus_bench.rule import OptimConfig, RuleBase

CHUNK_VALUES = 2**23  # most values (32 MB in fp32) of one tensor of noisy inputs: iterations batched up to this


@dataclass(frozen=True)
class Config(OptimConfig):
    lr: float = 0.05  # forward SGD learning rate
    beta: float = 0.5  # output target step size
    fb_iterations: tuple[int, ...] = (2,)  # feedback steps per batch, per layer G_1..G_{N-1} (or one value)
    fb_noise: tuple[float, ...] = (0.1,)  # sigma of the reconstruction noise, per layer (or one value)
    fb_lr: tuple[float, ...] = (0.01,)  # feedback learning rate, per layer (or one value)
    fb_momentum: float = 0.9  # feedback SGD momentum
    warmup_epochs: int = 0  # feedback-only epochs before training (Shibuya et al.'s epochs_backward)
    fb_init_range: float = 0.0  # >0: feedback weights start as U(-a, a) (the FW-DTP code: 1e-2); 0: torch default


def reconstruction_loss(blocks: list[torch.nn.Module], fb: tp.FeedbackLayer, i: int,
                        s: list[torch.Tensor]) -> torch.Tensor:
    """||G_i(F_i(x + e)) - (x + e)||^2 summed over units, meaned over the batch (Lee Eq. 16); x = s[i] is block
    i's input, and G_i unpools with the indices of the noisy forward pass it inverts."""
    x = s[i]
    xn = x + fb.noise * torch.randn_like(x)
    with torch.no_grad():
        y, pools = tp.run_block(blocks[i], xn)
    return (fb.map(y, pools) - xn).pow(2).sum() / x.shape[0]


def chunks(iterations: int, per_iteration: int) -> Iterator[int]:
    """Sizes of consecutive batches of a layer's ``iterations``, each storing at most ~CHUNK_VALUES values (given
    ``per_iteration`` values per iteration), at least one iteration each: conv nets' memory."""
    done = 0
    while done < iterations:
        k = min(iterations - done, max(1, CHUNK_VALUES // per_iteration))
        yield k
        done += k


def lee_parts(g: nn.Module) -> tuple[nn.Linear, nn.Module] | None:
    """(V, act) when G(h) = act(V h + c), the Lee form of the MLP feedback maps; None for other maps."""
    parts = list(g.parts) if isinstance(g, tp.Inverse) else []
    if len(parts) == 2 and isinstance(parts[0], nn.Linear) and isinstance(parts[1], tp.ACTIVATIONS):
        return parts[0], parts[1]
    return None


def act_backward(act: nn.Module, grad: torch.Tensor, pre: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """dL/d(pre) from dL/d(out), out = act(pre), by the kernels (and arguments) autograd uses for these activations."""
    if isinstance(act, nn.Tanh):
        return torch.ops.aten.tanh_backward(grad, out)
    if isinstance(act, nn.Sigmoid):
        return torch.ops.aten.sigmoid_backward(grad, out)
    if isinstance(act, nn.ReLU):
        return torch.ops.aten.threshold_backward(grad, out, 0)
    if isinstance(act, nn.ELU):
        return torch.ops.aten.elu_backward(grad, act.alpha, 1.0, 1.0, False, pre)
    return grad  # Identity


def set_lee_grads(lin: nn.Linear, h: torch.Tensor, grad_pre: torch.Tensor) -> None:
    """V.grad and c.grad of G(h) = act(V h + c) from dL/d(V h + c) (Linear's backward pass, weights only)."""
    lin.weight.grad = grad_pre.t() @ h
    if lin.bias is not None:
        lin.bias.grad = grad_pre.sum(0)


class DTP(RuleBase):
    """DTP (Lee et al. 2015): difference-corrected targets, feedback trained to invert each layer."""

    def __init__(self, model: torch.nn.Module, cfg: Config, task, epochs: int) -> None:
        super().__init__(model, cfg, task, epochs)
        self.blocks = list(model.children())
        self.feedback_net = tp.make_feedback(self.blocks, task.input_shape)
        if cfg.fb_init_range > 0:
            for p in self.feedback_net.parameters():
                torch.nn.init.uniform_(p, -cfg.fb_init_range, cfg.fb_init_range)
        self.feedback = tp.build_feedback(self.feedback_net, cfg)  # feedback[i]: G of block i and its optimiser
        self.optimizers += [fb.opt for fb in self.feedback if fb.opt is not None]
        for fb in self.feedback:  # many small steps per batch: one fused kernel each (foreach's arithmetic, 1/3 faster)
            if fb.opt is not None and next(fb.map.parameters()).device.type in ("cpu", "cuda"):
                fb.opt.param_groups[0]["fused"] = True
        self.opt = self.add_optimizer(model.parameters(), cfg)

    def feedback_loss(self, i: int, s: list[torch.Tensor], pools: list[tp.Pools]) -> torch.Tensor:
        """Lee Eq. 16 of G_i for one noise draw (the equation; the reference for ``fit_feedback``)."""
        return reconstruction_loss(self.blocks, self.feedback[i], i, s)

    def train_feedback(self, s: list[torch.Tensor], pools: list[tp.Pools]) -> None:
        with self.feedback_timer():
            for i, fb in enumerate(self.feedback):
                if fb.opt is not None:
                    self.fit_feedback(i, s, pools)

    def fit_feedback(self, i: int, s: list[torch.Tensor], pools: list[tp.Pools]) -> None:
        """``iterations`` SGD steps of G_i on Lee Eq. 16, the same noise and steps as ``fit`` on ``feedback_loss``
        (tests/test_targetprop.py). For the Lee maps of MLPs, G = act(V h + c): F does not change while G_i
        trains, so the k iterations' noisy inputs and F(x + e) are one batch (the noise one draw of k, the same
        numbers as k draws), and each step's gradient is in closed form, dL/d(V h + c) = act'(2 (G - x - e) / b),
        without an autograd graph. Other maps (the conv nets' layer inverses) train on ``feedback_loss``."""
        fb, lee = self.feedback[i], lee_parts(self.feedback[i].map)
        if lee is None:
            tp.fit(fb, lambda: self.feedback_loss(i, s, pools))
            return
        lin, act = lee
        x, b = s[i], s[i].shape[0]
        for k in chunks(fb.iterations, b * (x[0].numel() + s[i + 1][0].numel())):
            with torch.no_grad():
                xn = x + fb.noise * torch.randn(k, *x.shape, dtype=x.dtype, device=x.device)
                y = self.blocks[i](xn.flatten(0, 1)).view(k, *s[i + 1].shape)
                for j in range(k):
                    pre = F.linear(y[j], lin.weight, lin.bias)
                    g = act(pre)
                    # RULE (Lee Eq. 16): the gradient of ||G(F(x + e)) - (x + e)||^2 / b
                    set_lee_grads(lin, y[j], act_backward(act, (g - xn[j]) * (2.0 / b), pre, g))
                    fb.opt.step()

    def warmup(self, batches) -> None:
        for _ in range(self.cfg.warmup_epochs):
            for x, _y in batches:
                self.train_feedback(*tp.clean_forward(self.blocks, x))

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        s, pools = tp.forward_blocks(self.blocks, x)
        self.train_feedback(tp.detached(s), pools)  # every G_i first, on this batch (the same forward pass)
        # RULE: t_N = s_N - beta dL/ds_N, then Lee Eq. 15 down the feedback maps, then the local losses
        t = tp.propagate(self.feedback, s, pools, tp.output_target(self.task.loss, s[-1], y, self.cfg.beta))
        tp.local_forward_step(s, t, self.opt, scale=0.5)
        return s[-1].detach()


register_algorithm(
    "dtp", Config, smoke={"fb_iterations": "1", "warmup_epochs": "0"},
    # scalingDTP's VanillaDTP on the conv nets: L-DRL's feedback lists, forward lr 1e-3 (0.05 gives NaNs)
    arch_defaults={arch: {"lr": 1e-3, **fb} for arch, fb in tp.SCALINGDTP_FEEDBACK.items()},
)(DTP)
