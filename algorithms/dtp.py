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

Deviations from Lee et al.: the output target is set on the output block (as in the issue and in
Ernoult/Shibuya), instead of Lee's BP-trained top layer with a target on the last hidden layer; all
layers are trained (Lee's code forgot W6/B5). Conv nets use Ernoult et al.'s layer inverse as G_l.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bioplaus_bench import targetprop as tp
from bioplaus_bench.registry import register_algorithm
from bioplaus_bench.rule import OptimConfig, RuleBase


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
        self.opt = self.add_optimizer(model.parameters(), cfg)

    def feedback_loss(self, i: int, s: list[torch.Tensor], pools: list[tp.Pools]) -> torch.Tensor:
        return reconstruction_loss(self.blocks, self.feedback[i], i, s)

    def train_feedback(self, s: list[torch.Tensor], pools: list[tp.Pools]) -> None:
        with self.feedback_timer():
            tp.train_feedback(self.feedback, s, pools, self.feedback_loss)

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
