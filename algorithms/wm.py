"""Weight mirrors (WM): Akrout, Wilson, Humphreys, Lillicrap, Tweed 2019, "Deep Learning without Weight Transport",
NeurIPS.

Two modes alternate. Engaged mode is FA (fa.py): delta_{l-1} = (delta_l B_l) * f'(a_{l-1}) with the current
B_l (stored in W_l's shape), and only W learns. Mirror mode sends no data: every layer draws its own noise
xi ~ sigma N(0, I) (fresh per layer, so that hidden noise stays white), passes it through its weights, and the
feedback synapses learn Hebbian-ly from the pre/post pair, with a decay:
    B_l <- B_l + eta_B mean_b (W_l xi)(xi)^T - lambda_B B_l             (paper eq. 7 plus decay)
Since E[(W xi) xi^T] = sigma^2 W, B_l converges to (eta_B sigma^2 / lambda_B) W_l: with the defaults
(eta_B = lambda_B, sigma = 1) to W_l itself. Schedule (the reference code's): one epoch of mirror batches
before any learning (``warmup``), then one mirror batch after every engaged step.

Deviations: the mirror pass is linear (no bias, no nonlinearity), as the reference notes advise, so B tracks
W^T itself rather than W^T diag(f'(b)); the reference code's bound on B is a no-op, so the decay lambda_B here is
this suite's choice, made so that B's fixed point is W's scale. Noise is Gaussian (the code's is uniform in
+-0.05). Defined on the MLPs (a conv mirror pass would need each layer's input size; not built).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from bioplaus_bench.algorithms.fa import init_feedback, swap_layers

from bioplaus_bench.registry import register_algorithm
from bioplaus_bench.rule import OptimConfig, RuleBase


@dataclass(frozen=True)
class Config(OptimConfig):
    lr: float = 0.02  # forward learning rate (engaged mode; chosen on MNIST validation, results/tuning/wm)
    mirror_lr: float = 0.01  # eta_B: Hebbian step of the feedback weights in mirror mode
    mirror_decay: float = 0.01  # lambda_B: decay of B per mirror step; B -> (eta_B sigma^2 / lambda_B) W
    mirror_noise: float = 1.0  # sigma of the mirror-mode noise injected at every layer
    mirror_batch: int = 128  # noise samples per mirror step
    warmup_mirror_steps: int = -1  # mirror steps before training; -1 = one epoch's worth of batches (the code's)


class WM(RuleBase):
    """Weight mirrors: FA whose feedback learns W's transpose from noise, in a mirror phase between steps."""

    def __init__(self, model: torch.nn.Module, cfg: Config, task, epochs: int) -> None:
        super().__init__(model, cfg, task, epochs)
        self.layers = swap_layers(model, lambda w: init_feedback(w, "xavier", 1.0))
        if any(not isinstance(m, torch.nn.Linear) for m in self.layers):
            raise ValueError("weight mirrors are defined on MLPs here (Linear layers only)")
        self.opt = self.add_optimizer(model.parameters(), cfg)

    @torch.no_grad()
    def mirror(self) -> None:
        """One mirror step of every layer: B += eta_B mean (W xi) xi^T - lambda_B B."""
        c = self.cfg
        for m in self.layers:
            xi = c.mirror_noise * torch.randn(c.mirror_batch, m.in_features, device=m.weight.device)
            post = xi @ m.weight.t()  # W xi, linear: no bias, no nonlinearity
            m.feedback.mul_(1 - c.mirror_decay).add_(post.t() @ xi, alpha=c.mirror_lr / c.mirror_batch)

    def warmup(self, batches) -> None:
        steps = len(batches) if self.cfg.warmup_mirror_steps < 0 else self.cfg.warmup_mirror_steps
        with self.feedback_timer():
            for _ in range(steps):
                self.mirror()

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # RULE: engaged mode (an FA step through the current B), then one mirror step of the feedback
        out = self.autograd_step(x, y, self.opt)
        with self.feedback_timer():
            self.mirror()
        return out


register_algorithm("wm", Config, supports=lambda arch: arch.startswith("mlp") or arch == "linear3")(WM)
