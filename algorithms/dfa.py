"""Direct feedback alignment (DFA), Nøkland 2016, "Direct Feedback Alignment Provides Learning in Deep
Neural Networks", NeurIPS.

Equations, for blocks h_l = f_l(a_l) with output a_N and task loss L:
    e = dL/da_N                                            (output error, the only error signal)
    delta_N = e;  delta_l = (e B_l) * f_l'(a_l)  for l < N   (Eq. DFA: a fixed random B_l, no W^T)
    dW_l = delta_l^T h_{l-1}
B_l (num_classes x size of h_l) is drawn once and never changes. The error reaches every hidden block
directly; the block's own nonlinearity (and pooling, for conv blocks) is differentiated locally by
autograd because each block's input is detached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from bioplaus_bench.registry import register_algorithm
from bioplaus_bench.rule import OptimConfig, RuleBase


@dataclass(frozen=True)
class Config(OptimConfig):
    lr: float = 0.02  # forward learning rate (chosen on MNIST validation accuracy, 3 epochs)
    feedback_scale: float = 1.0  # B_l ~ U(-s/sqrt(n_out), s/sqrt(n_out)), n_out = number of outputs


class DFA(RuleBase):
    """Direct feedback alignment: the output error is sent to every hidden block by a fixed B_l."""

    def __init__(self, model: nn.Module, cfg: Config, task, epochs: int) -> None:
        super().__init__(model, cfg, task, epochs)
        self.blocks = list(model.children())
        # Shapes of the hidden block outputs, from one dry forward pass on a zero input.
        with torch.no_grad():
            h = torch.zeros((1, *task.input_shape), device=next(model.parameters()).device)
            shapes = []
            for block in self.blocks[:-1]:
                h = block(h)
                shapes.append(h.shape[1:])
        a = cfg.feedback_scale / math.sqrt(task.num_classes)
        self.feedback = [torch.empty(task.num_classes, math.prod(s), device=h.device).uniform_(-a, a)
                         for s in shapes]
        self.opt = self.add_optimizer(model.parameters(), cfg)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.opt.zero_grad(set_to_none=False)
        hs, h = [], x
        for block in self.blocks:
            h = block(h.detach())  # detached input: no error flows between blocks
            hs.append(h)
        out = hs[-1]
        loss = self.loss(out, y)
        e = torch.autograd.grad(loss, out, retain_graph=True)[0]  # e = dL/da_N
        # RULE: the last block learns from e itself; hidden block l from (e B_l) through f_l' (Eq. DFA).
        signals = [(e @ b).view_as(h) for b, h in zip(self.feedback, hs[:-1], strict=True)]
        torch.autograd.backward([loss, *hs[:-1]], [None, *signals])
        self.opt.step()
        return out.detach()

    def extra_state(self) -> dict:
        return {"feedback": self.feedback}

    def load_extra_state(self, state: dict) -> None:
        self.feedback = [t.to(self.feedback[0].device) for t in state["feedback"]]


# LeNet: B sends the output error to all 25 088 units of the first conv block, and lr 0.02 with scale 1 diverges
# within 10 batches; lr 0.02 with scale 0.01 is the best of results/tuning/lenet-dfa (no reference value)
register_algorithm("dfa", Config, arch_defaults={"lenet": {"lr": 0.02, "feedback_scale": 0.01}})(DFA)
