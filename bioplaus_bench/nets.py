"""Architectures shared by every rule.

A network is an ``nn.Sequential`` of *blocks*; a block is what the target-propagation papers call a layer
(Linear+tanh; conv+ELU+maxpool; flatten+Linear). Rules see the same blocks: BP trains through them,
FA/DFA swap their Linear/Conv2d, TP-family rules give each block a target and a feedback map (they read the
max-pooling indices themselves, targetprop.run_block: no layer keeps state between calls).
"""

from __future__ import annotations

import math

from torch import nn

from bioplaus_bench.registry import register_arch


def _mlp(sizes: list[int], act: type[nn.Module] = nn.Tanh, bias: bool = False) -> nn.Sequential:
    blocks: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers: list[nn.Module] = [nn.Flatten()] if i == 0 else []
        layers.append(nn.Linear(sizes[i], sizes[i + 1], bias=bias))
        if i < len(sizes) - 2:
            layers.append(act())
        blocks.append(nn.Sequential(*layers))
    return nn.Sequential(*blocks)


def _orthogonal_(model: nn.Module) -> nn.Module:
    # Shibuya et al. and Lee et al. initialise the tanh MLPs orthogonally.
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.orthogonal_(m.weight)
    return model


@register_arch("mlp")
def mlp(input_shape: tuple[int, ...], num_classes: int) -> nn.Sequential:
    """FW-DTP MLP: in-256x5-out, tanh, linear output, no biases (0.47M params on MNIST)."""
    return _orthogonal_(_mlp([math.prod(input_shape)] + [256] * 5 + [num_classes]))


@register_arch("mlp-1.1m")
def mlp_1_1m(input_shape: tuple[int, ...], num_classes: int) -> nn.Sequential:
    """FW-DTP MLP: in-256x6-out, tanh, no biases (1.12M params on CIFAR-10)."""
    return _orthogonal_(_mlp([math.prod(input_shape)] + [256] * 6 + [num_classes]))


@register_arch("mlp-6.3m")
def mlp_6_3m(input_shape: tuple[int, ...], num_classes: int) -> nn.Sequential:
    """FW-DTP MLP: in-1024x4-out, tanh, no biases (6.30M params on CIFAR-10)."""
    return _orthogonal_(_mlp([math.prod(input_shape)] + [1024] * 4 + [num_classes]))


@register_arch("linear3")
def linear3(input_shape: tuple[int, ...], num_classes: int) -> nn.Sequential:
    """Lillicrap et al. 2016 Exp. 1: 3-layer linear network 30-20-10, no nonlinearity."""
    return _mlp([math.prod(input_shape), 20, num_classes], act=nn.Identity, bias=False)


@register_arch("lenet")
def lenet(input_shape: tuple[int, ...], num_classes: int) -> nn.Sequential:
    """Ernoult et al. 2022 LeNet: 2x[conv5x5 pad2, ELU, maxpool 3/2/1] (32, 64 ch), FC 512 ELU, FC out."""
    c, h, w = input_shape
    side = lambda s: (s + 2 - 3) // 2 + 1  # noqa: E731 - maxpool(3, stride 2, pad 1)
    flat = 64 * side(side(h)) * side(side(w))
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(c, 32, 5, padding=2), nn.ELU(), nn.MaxPool2d(3, 2, 1)),
        nn.Sequential(nn.Conv2d(32, 64, 5, padding=2), nn.ELU(), nn.MaxPool2d(3, 2, 1)),
        nn.Sequential(nn.Flatten(), nn.Linear(flat, 512), nn.ELU()),
        nn.Sequential(nn.Linear(512, num_classes)),
    )


@register_arch("vgg6")
def vgg6(input_shape: tuple[int, ...], num_classes: int) -> nn.Sequential:
    """Ernoult et al. 2022 6-layer VGG: conv3x3 128,128,256,256,512, ELU, maxpool 2 each; FC 512->out."""
    c, h, w = input_shape
    if h != 32 or w != 32:
        raise ValueError(f"vgg6 needs 32x32 inputs, got {h}x{w}; use lenet or an MLP for this task")
    blocks: list[nn.Module] = []
    for cin, cout in zip((c, 128, 128, 256, 256), (128, 128, 256, 256, 512), strict=True):
        blocks.append(nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ELU(), nn.MaxPool2d(2, 2)))
    blocks.append(nn.Sequential(nn.Flatten(), nn.Linear(512, num_classes)))
    return nn.Sequential(*blocks)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
