"""Probe used for the per-block learning-rate sweep of DNI (records in results/runs/issue7/dni_layer_lr, names
B*, C*, D*, G*, L*, M*, S*), run as ``PYTHONPATH=results/probes bench run --algo dniprobe:DNILayerLR ...``
against commit 66101a7, before ``lr_scale`` was part of ``algorithms/dni.py``.

``lr_scale`` here lists one multiplier per hidden block, input side first. The hidden blocks' optimiser is
rebuilt after the harness attached its scheduler, so with ``--set scheduler=cosine`` (runs D*) the cosine
schedule reached the output block only. With the current rule, the runs without a scheduler are
``bench run --algo dni --task mnist --epochs 3 --set lr_scale=<the same values, top block first>
--set scheduler=none`` (bit-identical: run N0none equals B1).
"""
from dataclasses import dataclass

import torch
from bioplaus_bench.algorithms.dni import DNI
from bioplaus_bench.algorithms.dni import Config as DNIConfig


@dataclass(frozen=True)
class Config(DNIConfig):
    lr_scale: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)  # per hidden block, input side first


class DNILayerLR(DNI):
    Config = Config

    def __init__(self, model, cfg, task, epochs):
        super().__init__(model, cfg, task, epochs)
        self.optimizers.remove(self.opt)
        groups = [{"params": list(b.parameters()), "lr": cfg.lr * s}
                  for b, s in zip(self.blocks[:-1], cfg.lr_scale, strict=True)]
        self.opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
        self.optimizers.insert(0, self.opt)
