"""Ernoult et al. 2022, "Towards Scaling Difference Target Propagation by Learning Backprop Targets", ICML: test
accuracy (%) of DRL, L-DRL and BP on LeNet (MNIST, F-MNIST, CIFAR-10) and of L-DRL and BP on the 6-layer VGG
(CIFAR-10, ImageNet 32x32 top-5), with the angle to BP per layer for the target-propagation rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bioplaus_bench.harness import RunSpec
from bioplaus_bench.papers import Cell, Paper, register_paper

LENET = {  # published test accuracy on LeNet (published-tables.md): MNIST, F-MNIST, CIFAR-10
    ("DRL (Meulemans et al. 2020)", "drl"): ("98.6", "88.9", "76.3"),
    ("L-DRL", "l-drl"): ("98.9", "90.3", "85.3"),
    ("BP", "bp"): ("98.9", "91.4", "86.3"),
}
# DRL has no preset of its own: it runs with the L-DRL LeNet forward settings
DRL_LENET = {"lr": "0.03618", "beta": "0.4655", "weight_decay": "1e-4", "scheduler": "cosine", "cosine_t_max": "85"}
ANGLE_EVERY = 100  # batches between angle-to-BP measurements of the target-propagation rules


def cells() -> tuple[Cell, ...]:
    out = []
    for (label, algo), published in LENET.items():
        for (col, task), pub in zip((("MNIST", "mnist"), ("F-MNIST", "fashion-mnist"), ("CIFAR-10", "cifar10")),
                                    published, strict=True):
            preset = "ernoult2022-lenet" if algo in ("l-drl", "bp") else None
            run = RunSpec(algo=algo, task=task, arch="lenet", preset=preset, epochs=90, batch_size=256,
                          overrides={} if preset else DRL_LENET, angle_every=0 if algo == "bp" else ANGLE_EVERY)
            out.append(Cell(row=f"{label}, LeNet", col=col, run=run, published=pub, metric="acc"))
    for label, algo, preset_c, preset_i, pub_c, pub_i in (
            ("L-DRL", "l-drl", "ernoult2022-vgg", "ernoult2022-vgg-imagenet32", "89.4", "60.6"),
            ("BP", "bp", "ernoult2022-vgg", "ernoult2022-vgg", "89.0", "61.3")):
        out.append(Cell(row=f"{label}, VGG", col="CIFAR-10", published=pub_c, metric="acc",
                        run=RunSpec(algo=algo, task="cifar10", arch="vgg6", preset=preset_c, epochs=90,
                                    angle_every=0 if algo == "bp" else ANGLE_EVERY)))
        out.append(Cell(row=f"{label}, VGG", col="ImageNet 32x32 (top-5)", published=pub_i, metric="top5",
                        run=RunSpec(algo=algo, task="imagenet32", arch="vgg6", preset=preset_i, epochs=90,
                                    batch_size=256)))
    return tuple(out)


def angles(records: list[dict[str, Any]], out: Path) -> list[Path]:
    from bioplaus_bench.plots import angle_curves

    with_angles = [r for r in records if r.get("status") == "completed" and any(r["curves"].get("angles") or [])]
    return angle_curves(with_angles, out) if with_angles else []


register_paper(Paper(
    name="ernoult2022",
    title="Ernoult et al. 2022, Towards Scaling DTP by Learning Backprop Targets (ICML): test accuracy (%)",
    cells=cells(), seeds=(0, 1), figures=angles,
    notes="Settings from scalingDTP's configurations (algorithms.md): L-DRL and BP use the presets "
          "`ernoult2022-lenet`, `ernoult2022-vgg`, `ernoult2022-vgg-imagenet32`; DRL on LeNet uses the L-DRL "
          "LeNet forward settings. The published numbers carry no standard deviation; ImageNet32 is top-5. "
          "Deviation: MNIST/F-MNIST are not augmented here (scalingDTP's HEAD flips and crops them). "
          f"Angle-to-BP per layer is measured every {ANGLE_EVERY} batches for the target-propagation rules.",
))
