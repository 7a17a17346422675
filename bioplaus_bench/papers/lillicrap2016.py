"""Lillicrap et al. 2016, "Random synaptic feedback weights support error backpropagation for deep learning",
Nature Communications, Experiment 1 (Fig. 2a): a linear teacher-student task, 30-20-10 linear network, shallow
learning vs reinforcement (node perturbation) vs FA vs BP. The paper shows it as a figure (normalised error vs
examples): no published numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bioplaus_bench.harness import RunSpec
from bioplaus_bench.papers import Cell, Paper, register_paper

RULES = (("shallow", "shallow"), ("reinforcement (NP)", "np"), ("FA", "fa"), ("BP", "bp"))


def learning_curves(records: list[dict[str, Any]], out: Path) -> list[Path]:
    """Test MSE per epoch per rule (log scale), the band spanning the seeds."""
    from bioplaus_bench.plots import COLUMN_IN, _save, _setup, conditions

    plt, sns = _setup()
    label = {algo: row for row, algo in RULES}
    rows = [{"rule": label.get(r["config"]["algo"], r["config"]["algo"]), "seed": r["config"]["seed"], "epoch": ep,
             "test MSE": loss}
            for r in records if r.get("status") == "completed"
            for ep, loss in zip(r["curves"]["epoch"], r["curves"]["test_loss"], strict=True)]
    fig, ax = plt.subplots(figsize=(COLUMN_IN, 2.6))
    sns.lineplot(data=pd.DataFrame(rows), x="epoch", y="test MSE", hue="rule", errorbar=("pi", 100), marker="o",
                 ax=ax)
    ax.set_yscale("log")
    ax.set_title("Linear teacher-student (Lillicrap 2016, Fig. 2a)", fontsize=8)
    ax.set_xlabel("epoch (18,000 examples each)")
    return _save(fig, out, "lillicrap2016_learning_curves", conditions(records))


register_paper(Paper(
    name="lillicrap2016",
    title="Lillicrap et al. 2016, Experiment 1: linear teacher-student, 30-20-10 linear network",
    cells=tuple(Cell(row=row, col="teacher-student", metric="mse",
                     run=RunSpec(algo=algo, task="teacher-student", arch="linear3", epochs=10,
                                 overrides={"lr": "0.002", "momentum": "0.0"}))
                for row, algo in RULES),
    seeds=(0, 1, 2),
    figures=learning_curves,
    notes="The paper reports this experiment as a figure (normalised error vs examples), not a table: no "
          "published numbers. Plain SGD (lr 0.002, batch 20) for every rule; shallow learning trains the "
          "output layer only; reinforcement is node perturbation (Williams form, sigma 0.01: the paper's "
          "perturbation settings were not available).",
))
