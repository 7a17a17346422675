"""Target propagation (TP) without difference correction (Bengio 2014; the "TP" row of Shibuya et al.
2023 and scalingDTP's ``TargetProp``).

Equations: t_N = s_N - beta * dL_sum/ds_N;  t_{l-1} = G_l(t_l)  (no difference term);
forward loss sum_l 1/2 ||s_l - t_l||^2; feedback G_l trained by the noisy reconstruction loss
||G_l(F_l(s_{l-1} + e)) - (s_{l-1} + e)||^2, exactly as DTP (algorithms/dtp.py), whose constructor and
feedback loss it reuses.
Without the difference term, imperfect inverses corrupt every target, which is why TP trails DTP
(Shibuya et al. report 78.99% test error on MNIST).

Hyperparameters: forward lr 1e-3 (scalingDTP's TP value; higher "produces NaNs") and beta = 10, chosen on
validation accuracy after one MNIST epoch over lr x beta (results/tuning/tp/sensitivity_tp_mnist.md, made by
its study file). With DTP's beta = 0.5 the hidden layers collapse into tanh saturation within ~50 batches and
accuracy stays at chance (a probe of the saturation, results/probes/tp_saturation.py at commit 370e6b8, is in
git history).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from bioplaus_bench.algorithms.dtp import DTP
from bioplaus_bench.algorithms.dtp import Config as DTPConfig

from bioplaus_bench import targetprop as tp
from bioplaus_bench.registry import register_algorithm


@dataclass(frozen=True)
class Config(DTPConfig):
    lr: float = 0.001  # forward learning rate (scalingDTP's TP value: higher "produces NaNs")
    beta: float = 10.0  # output target step; DTP's 0.5 lets the hidden layers collapse (see docstring)


class TP(DTP):
    """Plain target propagation: t_{l-1} = G_l(t_l), no difference correction; the rest is DTP's."""

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        s, pools = tp.forward_blocks(self.blocks, x)
        self.train_feedback(tp.detached(s), pools)  # every G_i first, on this batch (DTP's reconstruction loss)
        # RULE: t_N = s_N - beta dL/ds_N, then t_{l-1} = G_l(t_l) (no difference term), then the local losses
        t = tp.propagate(self.feedback, s, pools, tp.output_target(self.task.loss, s[-1], y, self.cfg.beta),
                         difference=False)
        tp.local_forward_step(s, t, self.opt, scale=0.5)
        return s[-1].detach()


register_algorithm(
    "tp", Config, smoke={"fb_iterations": "1", "warmup_epochs": "0"},
    # scalingDTP's TargetProp on the conv nets: DTP's feedback lists (L-DRL's), forward lr 1e-3
    arch_defaults={arch: {"lr": 1e-3, **fb} for arch, fb in tp.SCALINGDTP_FEEDBACK.items()},
)(TP)
