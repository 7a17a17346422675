"""Target propagation (TP) without difference correction (Bengio 2014; the "TP" row of Shibuya et al.
2023 and scalingDTP's ``TargetProp``).

Equations: t_N = s_N - beta * dL_sum/ds_N;  t_{l-1} = G_l(t_l)  (no difference term);
forward loss sum_l 1/2 ||s_l - t_l||^2; feedback G_l trained by the noisy reconstruction loss
||G_l(F_l(s_{l-1} + e)) - (s_{l-1} + e)||^2, exactly as DTP (algorithms/dtp.py), whose code it reuses.
Without the difference term, imperfect inverses corrupt every target, which is why TP trails DTP
(Shibuya et al. report 78.99% test error on MNIST).

Known problem: with the defaults, the MNIST MLP stays at chance: within ~50 batches the targets G(t) push
every hidden layer into tanh saturation (std of s_l -> 0.99) and the output block sees uninformative
features. Neither lr 1e-3, a feedback warm-up epoch, nor U(-1e-2, 1e-2) initial inverses fixed it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bioplaus_bench.algorithms.dtp import DTP
from bioplaus_bench.algorithms.dtp import Config as DTPConfig

from bioplaus_bench.registry import register_algorithm


@dataclass(frozen=True)
class Config(DTPConfig):
    lr: float = 0.01  # forward learning rate (scalingDTP uses 1e-3 for TP: higher "produces NaNs")


class TP(DTP):
    """Plain target propagation: t_{l-1} = G_l(t_l), no difference correction."""

    difference = False


register_algorithm("tp", Config)(TP)
