"""FW-DTP with parameter-free batch normalisation (FWDTP-BN): Shibuya et al. 2023, "Fixed-Weight Difference
Target Propagation", AAAI; the variant of the FW-DTP code's README example, whose quoted best settings (MNIST
lr 0.1, stepsize 0.04) the paper's FW-DTP row most likely used.

Equations (MLP, no biases; BN(z) = (z - mean_b z) / (std_b z + 1e-12) per unit over the batch, unbiased std,
no affine parameters):
    s_l = BN(tanh(W_l s_{l-1})) for hidden blocks;  s_N = BN(W_N s_{N-1}) (``bn_logits``) or W_N s_{N-1}
    g_l(t) = BN(tanh(B_l t)),  B_l ~ U(-a, a) fixed at initialisation and never trained
    t_N = s_N - stepsize * dL_sum/ds_N                           (on the normalised logits)
    t_{l-1} = BN(g_l(t_l) + s_{l-1} - g_l(s_l))                   (difference correction, re-standardised)
    forward: each block minimises ||t_l - s_l||^2 (summed over units), plain SGD with lr on the batch mean;
             the gradient flows through the batch statistics of its own block.
The rule adds one BN to every block of the network it is given (and to the logits), so evaluation runs the
same normalised network.

Deviations: as in algorithms/fwdtp.py, each block's input is detached (the reference back-propagates every local
loss into all earlier layers). Evaluation: the reference standardises with each evaluation batch's own
statistics (batches of 256); the suite's evaluation batches hold 1,000 samples. ``running_stats = True`` instead
keeps running means and standard deviations for evaluation (not the reference's behaviour).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bioplaus_bench import targetprop as tp
from bioplaus_bench.registry import register_algorithm
from bioplaus_bench.rule import OptimConfig, RuleBase

EPS = 1e-12  # added to the standard deviation, as in the FW-DTP code


@dataclass(frozen=True)
class Config(OptimConfig):
    lr: float = 0.1  # forward SGD learning rate on the batch mean (the FW-DTP README's MNIST example)
    momentum: float = 0.0  # plain SGD, as in the paper
    beta: float = 0.04  # the paper's "stepsize" of the output target (README example)
    feedback_range: float = 0.01  # B_l ~ U(-a, a): the paper's value (the code's default is 1e-3)
    bn_logits: bool = True  # normalise the logits too (the README's --forward_last_activation=linear-BN)
    running_stats: bool = False  # evaluate with running statistics instead of each batch's own (a deviation)


class BatchStandardize(nn.Module):
    """Parameter-free BN over the batch, per unit; optionally keeps running statistics for evaluation."""

    def __init__(self, width: int, running: bool, momentum: float = 0.1) -> None:
        super().__init__()
        self.running, self.momentum = running, momentum
        self.register_buffer("run_mean", torch.zeros(width))
        self.register_buffer("run_std", torch.ones(width))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.training or not self.running:
            mean, std = z.mean(0), z.std(0)
            if self.training and self.running:
                with torch.no_grad():
                    self.run_mean.lerp_(mean, self.momentum)
                    self.run_std.lerp_(std, self.momentum)
            return (z - mean) / (std + EPS)
        return (z - self.run_mean) / (self.run_std + EPS)


def standardize(z: torch.Tensor) -> torch.Tensor:
    return (z - z.mean(0)) / (z.std(0) + EPS)


class FWDTPBN(RuleBase):
    """FW-DTP-BN: fixed random feedback, parameter-free batch normalisation of activities and targets."""

    def __init__(self, model: nn.Module, cfg: Config, task, epochs: int) -> None:
        super().__init__(model, cfg, task, epochs)
        self.blocks = list(model.children())
        maps = tp.lee_feedback(self.blocks, bias=False)  # g_l = tanh(B_l t), before the blocks gain their BN
        for p in maps.parameters():
            nn.init.uniform_(p, -cfg.feedback_range, cfg.feedback_range)
            p.requires_grad_(False)  # fixed: never trained
        for g in list(maps)[1:]:
            g.parts.append(BatchStandardize(g.parts[0].out_features, running=False).to(g.parts[0].weight.device))
        self.feedback_net = maps
        self.feedback = [tp.FeedbackLayer(g, None, 0, 0.0) for g in maps]
        for i, block in enumerate(self.blocks):
            if i < len(self.blocks) - 1 or cfg.bn_logits:
                width = [m for m in block.modules() if isinstance(m, nn.Linear)][-1].out_features
                block.append(BatchStandardize(width, cfg.running_stats).to(next(block.parameters()).device))
        self.opt = self.add_optimizer(model.parameters(), cfg)

    @torch.no_grad()
    def targets(self, s: list[torch.Tensor], t_n: torch.Tensor) -> list[torch.Tensor | None]:
        """[None, t_1, ..., t_N]: t_{l-1} = BN(g_l(t_l) + s_{l-1} - g_l(s_l))."""
        n = len(s) - 1
        t: list[torch.Tensor | None] = [None] * (n + 1)
        t[n] = t_n
        for i in range(n - 1, 0, -1):
            g = self.feedback[i].map
            t[i] = standardize(g(t[i + 1]) + s[i].detach() - g(s[i + 1].detach()))
        return t

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        s, _ = tp.forward_blocks(self.blocks, x)
        # RULE: t_N on the normalised logits, re-standardised difference targets, local squared errors
        t = self.targets(s, tp.output_target(self.task.loss, s[-1], y, self.cfg.beta))
        tp.local_forward_step(s, t, self.opt, scale=1.0)
        return s[-1].detach()


register_algorithm(
    "fw-dtp-bn", Config,
    supports=lambda arch: arch.startswith("mlp"),
    task_defaults={"cifar10": {"arch": "mlp-6.3m"}, "cifar100": {"arch": "mlp-6.3m"}},
    presets={
        # the quoted best settings of the paper's lr x stepsize grid (algorithms.md section 8)
        "shibuya2023-mnist": {"arch": "mlp", "batch_size": 256, "epochs": 100, "lr": 0.1, "beta": 0.04},
        "shibuya2023-fashion-mnist": {"arch": "mlp", "batch_size": 256, "epochs": 100, "lr": 1.0, "beta": 0.004},
    },
)(FWDTPBN)
