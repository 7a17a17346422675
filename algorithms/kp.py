"""Kolen-Pollack learning (KP): Akrout, Wilson, Humphreys, Lillicrap, Tweed 2019, "Deep Learning without Weight
Transport", NeurIPS (after Kolen & Pollack 1994).

Equations (row-vector batch form, as in fa.py; B_l is stored in W_l's shape, i.e. it holds the paper's B^T):
    delta_{l-1} = (delta_l B_l) * f'(a_{l-1})                  (an FA backward pass through the current B_l)
    W_l <- W_l - eta (delta_l^T h_{l-1}) - eta lambda W_l        (paper eqs. 16-17)
    B_l <- B_l - eta (delta_l^T h_{l-1}) - eta lambda B_l        (the same outer product, the same decay)
so W_l - B_l = (1 - eta lambda)^t (W_0 - B_0) with plain SGD: the feedback forgets its random start and becomes W
whatever the data. With momentum the two get the same optimiser (one optimiser, identical treatment), and the
difference still decays, as a damped linear recursion. ``weight_decay`` is lambda (it also decays the biases,
which have no feedback twin). Conv2d layers are handled as in FA.

Defaults (MNIST MLP, results/tuning/kp, 1 epoch): lr 0.02 and lambda 1e-3: within 0.02 points of the best
validation accuracy (lambda 1e-4, 95.72%) and closer to BP (36.2 vs 37.8 degrees), the tie-break L-DRL uses too.

Deviations: the reference MNIST code (784-500-10 sigmoid, plain SGD lr 0.3, 400 epochs) sets no effective decay
(its weight_decay=1 multiplies by 1); here lambda > 0 by default, as in the paper's equations. B starts
Xavier-uniform (as FA's), independent of W.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from bioplaus_bench.algorithms.fa import init_feedback, swap_layers

from bioplaus_bench.registry import register_algorithm
from bioplaus_bench.rule import OptimConfig, RuleBase


@dataclass(frozen=True)
class Config(OptimConfig):
    lr: float = 0.02  # forward (and feedback) learning rate (chosen on MNIST validation, results/tuning/kp)
    weight_decay: float = 1e-3  # lambda: decay of W and B alike, what makes B forget its random start
    feedback_init: str = "xavier"  # xavier | kaiming | uniform: distribution of B_0


class KP(RuleBase):
    """Kolen-Pollack: FA whose feedback B receives W's update and decay, so that B -> W."""

    def __init__(self, model: torch.nn.Module, cfg: Config, task, epochs: int) -> None:
        super().__init__(model, cfg, task, epochs)
        self.layers = swap_layers(model, lambda w: init_feedback(w, cfg.feedback_init, 1.0).requires_grad_())
        # one optimiser over W and B: identical momentum and decay keep W - B a decaying recursion
        self.opt = self.add_optimizer([*model.parameters(), *(m.feedback for m in self.layers)], cfg)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.opt.zero_grad(set_to_none=False)
        out = self.model(x)
        self.loss(out, y).backward()  # FA backward: delta_{l-1} = delta_l B_l; dW_l = delta_l^T h_{l-1}
        for m in self.layers:
            # RULE: B_l takes W_l's own outer product (the same tensor), then the optimiser applies both updates
            m.feedback.grad = m.weight.grad
        self.opt.step()
        return out.detach()


register_algorithm("kp", Config)(KP)
