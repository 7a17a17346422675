"""L-DRL, the local difference reconstruction loss: Ernoult et al. 2022, "Towards Scaling Difference
Target Propagation by Learning Backprop Targets", ICML (scalingDTP ``DTP``).

Equations (s_l = F_l(s_{l-1}), G_l the feedback of block l, one noise scale sigma_l per layer):
    t_N = s_N - beta * dL_sum/ds_N                                  (output target, summed cross-entropy)
    t_{l-1} = s_{l-1} + G_l(t_l) - G_l(s_l)                          (difference correction)
    forward loss  = sum_l 1/2 ||s_l - t_l||^2, one optimiser step     (inputs of every block detached)
    feedback loss of G_l, with dx, dy ~ sigma_l N(0, I), r = G_l(s_l):
        dr = G_l(F_l(s_{l-1} + dx)) - r,  dr_y = G_l(s_l + dy) - r
        L_G = -2 mean_b <dx, dr> + mean_b ||dr_y||^2                  (Eq. L-DRL)
    whose expectation is sigma^2 (||J_G - J_F^T||_F^2 - ||J_F||_F^2): its minimum makes the feedback
    Jacobian the transpose of the forward Jacobian, so targets approach BP targets.
Schedule: on every batch the feedback layers G_1..G_{N-1} are trained first, in forward order, G_l for
iterations_l SGD steps (momentum 0.9, per-layer lr); G_0 is never trained. Then one forward step.
G_l inverts F_l layer by layer: Conv2d -> ConvTranspose2d, MaxPool2d -> MaxUnpool2d with the forward
indices (passed per layer, not through a shared global), activation -> the same activation.

Deviations: none in the equations. The val/test passes do not compute feedback losses (scalingDTP does,
which only costs time). Optional, off by default: ``warmup_batches`` feedback-only batches before the first
forward step. With few feedback iterations per batch (the CPU budget: 5 instead of the paper's 41/51/24 on
LeNet), the untrained inverses' targets move the fc block so far that LeNet diverges within ~20 batches
(results/probes/ldrl_lenet_*.out at commit 370e6b8, in git history); 20 warm-up batches and forward lr 0.01
keep it stable.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bioplaus_bench import targetprop as tp
from bioplaus_bench.registry import register_algorithm
from bioplaus_bench.rule import OptimConfig, RuleBase


@dataclass(frozen=True)
class Config(OptimConfig):
    lr: float = 0.1  # forward SGD learning rate (chosen on MNIST validation accuracy, 3 epochs)
    beta: float = 0.5  # output target step size
    fb_iterations: tuple[int, ...] = (5,)  # feedback SGD steps per batch, per layer G_1..G_{N-1} (or one value)
    fb_noise: tuple[float, ...] = (0.05,)  # sigma_l of the L-DRL noise, per layer (or one value)
    fb_lr: tuple[float, ...] = (0.01,)  # feedback SGD learning rate, per layer (or one value)
    fb_momentum: float = 0.9  # feedback SGD momentum
    warmup_batches: int = 0  # feedback-only batches before the first forward step (not in the paper; see docstring)


class LDRL(RuleBase):
    """L-DRL (Ernoult et al. 2022): DTP whose feedback learns J_G = J_F^T by a local reconstruction loss."""

    def __init__(self, model: torch.nn.Module, cfg: Config, task, epochs: int) -> None:
        super().__init__(model, cfg, task, epochs)
        self.blocks = list(model.children())
        self.feedback_net = tp.inverse_feedback(self.blocks, task.input_shape)
        self.feedback = tp.build_feedback(self.feedback_net, cfg)  # feedback[i]: G of block i and its optimiser
        self.optimizers += [fb.opt for fb in self.feedback if fb.opt is not None]
        self.opt = self.add_optimizer(model.parameters(), cfg)

    def feedback_loss(self, i: int, s: list[torch.Tensor], pools: list[tp.Pools]) -> torch.Tensor:
        f, g, sigma = self.blocks[i], self.feedback[i].map, self.feedback[i].noise
        x, y = s[i], s[i + 1]  # block i's input and output (s_{l-1}, s_l in the paper's indexing)
        dx = sigma * torch.randn_like(x)
        with torch.no_grad():
            y_noisy = f(x + dx)
        dy = sigma * torch.randn_like(y)
        b = x.shape[0]
        # one call for the three evaluations, all unpooled with the clean pass's indices
        r, r_noisy, r_y = g(torch.cat([y, y_noisy, y + dy]), pools[i]).split(b)
        dr = r_noisy - r
        dr_y = r_y - r
        # RULE (Eq. L-DRL): -2 <dx, dr> + ||dr_y||^2, meaned over the batch
        return (-2.0 * (dx * dr).sum() + dr_y.pow(2).sum()) / b

    def train_feedback(self, x: torch.Tensor) -> None:
        with self.feedback_timer():
            tp.train_feedback(self.blocks, self.feedback, x, self.feedback_loss)

    def warmup(self, batches) -> None:
        """Train only the feedback on the first ``warmup_batches`` batches."""
        for i, (x, _y) in enumerate(batches):
            if i >= self.cfg.warmup_batches:
                break
            self.train_feedback(x)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.train_feedback(x)  # every G_i first, on this batch, by the loss above
        s, pools = tp.forward_blocks(self.blocks, x)
        # RULE: output target, difference-corrected targets, local losses (module docstring)
        t = tp.propagate(self.feedback, s, pools, tp.output_target(self.task.loss, s[-1], y, self.cfg.beta))
        tp.local_forward_step(s, t, self.opt, scale=0.5)
        return s[-1].detach()


register_algorithm(
    "l-drl", Config,
    smoke={"fb_iterations": "1", "warmup_batches": "0"},  # one feedback step per layer, no warm-up
    presets={
        # conf/model_network/dtp_lenet.yaml of scalingDTP; cosine schedule and 90 epochs are its DTP defaults
        "ernoult2022-lenet": {
            "arch": "lenet", "batch_size": 256, "epochs": 90, "beta": 0.4655, "lr": 0.03618, "momentum": 0.9,
            "weight_decay": 1e-4, "scheduler": "cosine", "cosine_t_max": 85,
            "fb_iterations": (41, 51, 24), "fb_noise": (0.4164, 0.3826, 0.1395),
            "fb_lr": (7.19e-4, 1.25e-4, 3.54e-2)},
        # SimpleVGG on CIFAR-10, HEAD defaults = distributed-dtp conf/reproduce
        "ernoult2022-vgg": {
            "arch": "vgg6", "batch_size": 128, "epochs": 90, "beta": 0.7, "lr": 0.05, "momentum": 0.9,
            "weight_decay": 1e-4, "scheduler": "cosine", "cosine_t_max": 85,
            "fb_iterations": (20, 30, 35, 55, 20), "fb_noise": (0.4, 0.4, 0.2, 0.2, 0.08),
            "fb_lr": (1e-4, 3.5e-4, 8e-3, 8e-3, 0.18)},
        # ImageNet32: batch 256, forward lr 0.01, more feedback iterations; all else as for CIFAR-10
        "ernoult2022-vgg-imagenet32": {
            "arch": "vgg6", "batch_size": 256, "epochs": 90, "beta": 0.7, "lr": 0.01, "momentum": 0.9,
            "weight_decay": 1e-4, "scheduler": "cosine", "cosine_t_max": 85,
            "fb_iterations": (25, 35, 40, 60, 25), "fb_noise": (0.4, 0.4, 0.2, 0.2, 0.08),
            "fb_lr": (1e-4, 3.5e-4, 8e-3, 8e-3, 0.18)},
    },
)(LDRL)
