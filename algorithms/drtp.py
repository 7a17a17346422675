"""Direct random target projection (DRTP): Frenkel, Lefebvre, Bol 2021, "Learning Without Feedback: Fixed Random
Learning Signals Allow for Feedforward Training of Deep Neural Networks", Frontiers in Neuroscience 15:629892.

Equations (row-vector batch form; y* the one-hot target, B_k a fixed random (classes x n_k) matrix):
    delta_k = (y* B_k) * f_k'(a_k)                  for every hidden block k (no error reaches it: Eq. DRTP)
    delta_N = dL/da_N                               (the output block learns from its true local gradient)
    dW_k = delta_k^T h_{k-1}
The hidden update depends on the input, the label and B_k only: neither the output weights nor the error enter
it, so a block can update as soon as its own forward step is done. This is DFA (dfa.py) with the error e
replaced by the target y*. B_k ~ U(-s sqrt(6/n_k), s sqrt(6/n_k)) (the reference code's kaiming-uniform).

Deviations: softmax cross-entropy at the output (the reference default is sigmoid + binary cross-entropy; its
option is CE); the hidden signal is meaned over the batch like every loss here (the reference sums it, which
gives the hidden layers about batch x classes times the output's step, see families.md); plain SGD momentum
(the reference uses Nesterov). Where tasks are regressions there is no one-hot target: classification only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bioplaus_bench.registry import register_algorithm
from bioplaus_bench.rule import OptimConfig, RuleBase


@dataclass(frozen=True)
class Config(OptimConfig):
    lr: float = 0.1  # forward learning rate (chosen on MNIST validation accuracy, results/tuning/drtp)
    feedback_scale: float = 1.0  # s: B_k ~ U(-s sqrt(6/n_k), s sqrt(6/n_k))


class DRTP(RuleBase):
    """DRTP: every hidden block learns from a fixed random projection of the one-hot target, never the error."""

    def __init__(self, model: nn.Module, cfg: Config, task, epochs: int) -> None:
        super().__init__(model, cfg, task, epochs)
        if task.loss != "ce":
            raise ValueError("DRTP projects a one-hot target: classification tasks only")
        self.blocks = list(model.children())
        with torch.no_grad():  # shapes of the hidden block outputs, from one dry forward pass
            h = torch.zeros((1, *task.input_shape), device=next(model.parameters()).device)
            shapes = []
            for block in self.blocks[:-1]:
                h = block(h)
                shapes.append(h.shape[1:])
        self.feedback = []
        for s in shapes:
            a = cfg.feedback_scale * math.sqrt(6 / math.prod(s))
            self.feedback.append(torch.empty(task.num_classes, math.prod(s), device=h.device).uniform_(-a, a))
        self.opt = self.add_optimizer(model.parameters(), cfg)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.opt.zero_grad(set_to_none=False)
        hs, h = [], x
        for block in self.blocks:
            h = block(h.detach())  # detached input: nothing flows between blocks
            hs.append(h)
        target = F.one_hot(y, self.task.num_classes).to(h.dtype)
        # RULE: hidden block k from (y* B_k) through f_k' (meaned over the batch); the output from its own loss
        signals = [(target @ b).view_as(h) / len(y) for b, h in zip(self.feedback, hs[:-1], strict=True)]
        torch.autograd.backward([self.loss(hs[-1], y), *hs[:-1]], [None, *signals])
        self.opt.step()
        return hs[-1].detach()

    def extra_state(self) -> dict:
        return {"feedback": self.feedback}

    def load_extra_state(self, state: dict) -> None:
        self.feedback = [t.to(self.feedback[0].device) for t in state["feedback"]]


# linear3 belongs to the teacher-student regression, which has no one-hot target to project
register_algorithm("drtp", Config, supports=lambda arch: arch != "linear3")(DRTP)
