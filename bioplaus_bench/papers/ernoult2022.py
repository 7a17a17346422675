"""Ernoult et al. 2022, "Towards Scaling Difference Target Propagation by Learning Backprop Targets", ICML: test
accuracy (%) of DRL, L-DRL and BP on LeNet (MNIST, F-MNIST, CIFAR-10) and of L-DRL and BP on the 6-layer VGG
(CIFAR-10, ImageNet 32x32 top-5), with the angle to BP per layer for the target-propagation rules; and the
feedback-training experiment (``bioplaus_bench/feedback_training.py``): on a frozen LeNet, which Jacobian the
DTP, DRL and L-DRL feedback losses learn. ``--budget feedback`` runs only that experiment (about half an hour on
two cores); ``smoke`` runs a tiny version of it, ``full`` the real one beside the training cells."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bioplaus_bench.harness import RunSpec
from bioplaus_bench.papers import Cell, Paper, register_paper

LENET = {  # published test accuracy on LeNet (published-tables.md): MNIST, F-MNIST, CIFAR-10
    # the paper's "Meulemans et al. 2020 (DRL)" row is their DDTPConvCIFAR (direct feedback from the output,
    # difference reconstruction loss): the suite's ddtp with its ernoult2022-lenet preset (s-DDTP)
    ("DDTP (Meulemans et al. 2020)", "ddtp"): ("98.6", "88.9", "76.3"),
    ("L-DRL", "l-drl"): ("98.9", "90.3", "85.3"),
    ("BP", "bp"): ("98.9", "91.4", "86.3"),
}
ANGLE_EVERY = 100  # batches between angle-to-BP measurements of the target-propagation rules
FEEDBACK_SEEDS = (0, 1)  # seeds of the feedback-training experiment (one at the smoke budget)


def cells() -> tuple[Cell, ...]:
    out = []
    for (label, algo), published in LENET.items():
        for (col, task), pub in zip((("MNIST", "mnist"), ("F-MNIST", "fashion-mnist"), ("CIFAR-10", "cifar10")),
                                    published, strict=True):
            # each rule's own preset: L-DRL's and BP's scalingDTP configurations (batch 256), DDTP's s-DDTP one
            # (Meulemans' DDTPConvCIFAR configuration, batch 128, 10 feedback pre-training epochs)
            run = RunSpec(algo=algo, task=task, arch="lenet", preset="ernoult2022-lenet", epochs=90,
                          batch_size=128 if algo == "ddtp" else 256, angle_every=0 if algo == "bp" else ANGLE_EVERY)
            out.append(Cell(row=f"{label}, LeNet", col=col, run=run, published=pub, metric="acc"))
    for label, algo, preset_c, preset_i, pub_c, pub_i in (
            ("L-DRL", "l-drl", "ernoult2022-vgg", "ernoult2022-vgg-imagenet32", "89.4", "60.6"),
            ("BP", "bp", "ernoult2022-vgg", "ernoult2022-vgg-imagenet32", "89.0", "61.3")):
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


def feedback_experiment(out: Path, budget: str, render_only: bool, workers: int, data_dir: str | None,
                        figures: Path) -> list[Path]:
    """Feedback trained with each loss on a frozen LeNet: records in ``out/feedback-training``, figures in
    ``figures``."""
    from bioplaus_bench import feedback_training as ft
    from bioplaus_bench.plots import feedback_training_figures

    settings, seeds = (ft.SMOKE, (0,)) if budget == "smoke" else (ft.Settings(), FEEDBACK_SEEDS)
    recs = ft.run(out / "feedback-training", settings, seeds, data_dir, workers, render_only)
    if not recs:
        return []
    return feedback_training_figures(recs, ft.summary(recs), figures, "feedback_training")


register_paper(Paper(
    name="ernoult2022",
    title="Ernoult et al. 2022, Towards Scaling DTP by Learning Backprop Targets (ICML): test accuracy (%)",
    cells=cells(), seeds=(0, 1), figures=angles, budgets={"feedback": None}, experiment=feedback_experiment,
    notes="Settings from scalingDTP's configurations (algorithms.md): L-DRL and BP use the presets "
          "`ernoult2022-lenet`, `ernoult2022-vgg`, `ernoult2022-vgg-imagenet32` (BP's: distributed-dtp's ImageNet32 "
          "baseline, lr 0.01 with StepLR(30, 0.1), setups.md section 4); the 'Meulemans et al.' row runs "
          "DDTP (algorithms/ddtp.py) with its `ernoult2022-lenet` preset, Meulemans' DDTPConvCIFAR configuration "
          "as Ernoult et al.'s s-DDTP ran it (90 epochs), on the suite's LeNet (ELU; theirs: tanh). The published "
          "numbers carry no standard deviation; ImageNet32 is top-5. "
          "Deviation: MNIST/F-MNIST are not augmented here (scalingDTP's HEAD flips and crops them). "
          f"Angle-to-BP per layer is measured every {ANGLE_EVERY} batches for the target-propagation rules.",
))
