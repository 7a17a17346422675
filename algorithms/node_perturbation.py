"""Node perturbation (NP): the REINFORCE-style baseline ("reinforcement") of Lillicrap, Cownden, Tweed, Akerman
2016, "Random synaptic feedback weights support error backpropagation for deep learning", Nature Communications,
Fig. 2a; Williams 1992, "Simple statistical gradient-following algorithms for connectionist reinforcement
learning", Machine Learning 8.

Equations (per sample b; a_l = W_l h_{l-1} + b_l the pre-activation of every Linear/Conv2d layer l):
    clean pass:  L_b                                      noisy pass: a_l + xi_l, xi_l ~ sigma N(0, I), -> L~_b
    g_l = (L~_b - L_b) xi_l / sigma^2                     (an unbiased estimate of dL_b/da_l as sigma -> 0)
    dW_l = mean_b g_l h_{l-1}^T,  db_l = mean_b g_l       (h_{l-1}: the clean presynaptic activity)
Every neuron receives the same scalar reward difference L~ - L; no error travels backwards. Both passes use the
same batch. The update is a gradient estimate whose variance grows with the number of perturbed units, which is
why NP is slow in wide networks (the reason it is Lillicrap et al.'s weak baseline).

Deviations: the paper's Methods (its perturbation form, sigma and learning rate) were not available; this is the
canonical Williams form with the clean pass as the baseline (families.md section 8). All layers are perturbed at
once in one noisy pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bioplaus_bench.registry import register_algorithm
from bioplaus_bench.rule import OptimConfig, RuleBase

PERTURBED = (nn.Linear, nn.Conv2d)


@dataclass(frozen=True)
class Config(OptimConfig):
    lr: float = 0.002  # learning rate (the Lillicrap study's plain-SGD value for every rule)
    sigma: float = 0.01  # sigma of the pre-activation noise


class NP(RuleBase):
    """Node perturbation: a second, noisy pass; every unit correlates its noise with the change in loss."""

    def __init__(self, model: nn.Module, cfg: Config, task, epochs: int) -> None:
        super().__init__(model, cfg, task, epochs)
        self.layers = [m for m in model.modules() if isinstance(m, PERTURBED)]
        self.opt = self.add_optimizer(model.parameters(), cfg)

    def forward(self, x: torch.Tensor, noise: list[torch.Tensor] | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Output and every perturbed layer's pre-activation (noise added when given); each layer's input is
        detached, so a pre-activation's graph reaches its own layer's weights only."""
        pre: list[torch.Tensor] = []

        def run(module: nn.Module, h: torch.Tensor) -> torch.Tensor:
            if isinstance(module, PERTURBED):
                a = module(h.detach())
                pre.append(a)
                return a if noise is None else a + noise[len(pre) - 1]
            children = list(module.children())
            if not children:
                return module(h)
            for child in children:
                h = run(child, h)
            return h

        return run(self.model, x), pre

    def per_sample_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.task.loss == "ce":
            return F.cross_entropy(out, y, reduction="none")
        return 0.5 * (out - y).pow(2).flatten(1).sum(1)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.opt.zero_grad(set_to_none=False)
        out, pre = self.forward(x, None)
        with torch.no_grad():
            xi = [self.cfg.sigma * torch.randn_like(a) for a in pre]
            noisy, _ = self.forward(x, xi)
            reward = self.per_sample_loss(noisy, y) - self.per_sample_loss(out, y)  # L~_b - L_b
        # RULE: g_l = (L~ - L) xi_l / sigma^2 at every unit, meaned over the batch, times the clean input
        scale = reward / (self.cfg.sigma ** 2 * len(x))
        torch.autograd.backward(pre, [scale.view(-1, *[1] * (n.dim() - 1)) * n for n in xi])
        self.opt.step()
        return out.detach()


register_algorithm("np", Config)(NP)
