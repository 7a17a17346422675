"""Jaderberg et al. 2017's fully connected networks ("FCN"), for backprop and the synthetic-gradient rules.

Hidden blocks Linear(256) -> BatchNorm1d -> ReLU, then a linear output: the MNIST FCNs of "Decoupled Neural
Interfaces using Synthetic Gradients" (ICML), Table 1 and the stochastic-update experiment (Sec. 3.3), as two
third-party reimplementations give them from the paper's appendix A.1 (families.md: unverified against the
PDF). ``fcn4`` has 4 weight layers (3 hidden blocks). The hidden Linear layers have no bias (BatchNorm's shift
replaces it); PyTorch's default initialisation.

The networks are registered for BP, DNI and cDNI only, and live outside ``nets.py`` so that adding them did not
change the code every record hashes; a record of those rules hashes this module instead (records.code_files).
"""

from __future__ import annotations

import math

from torch import nn

from bioplaus_bench.registry import register_arch

RULES = ("bp", "dni", "cdni")  # the rules of Jaderberg et al.'s experiments


def fcn(sizes: list[int]) -> nn.Sequential:
    """Blocks [Flatten,] Linear -> BN -> ReLU for every hidden width, then Linear to the classes."""
    blocks: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers: list[nn.Module] = [nn.Flatten()] if i == 0 else []
        if i < len(sizes) - 2:
            layers += [nn.Linear(sizes[i], sizes[i + 1], bias=False), nn.BatchNorm1d(sizes[i + 1]), nn.ReLU()]
        else:
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        blocks.append(nn.Sequential(*layers))
    return nn.Sequential(*blocks)


@register_arch("fcn4", rules=RULES)
def fcn4(input_shape: tuple[int, ...], num_classes: int) -> nn.Sequential:
    """Jaderberg et al. 2017 4-layer FCN: in-256x3-out, Linear-BN-ReLU, linear output (0.34M on MNIST)."""
    return fcn([math.prod(input_shape)] + [256] * 3 + [num_classes])
