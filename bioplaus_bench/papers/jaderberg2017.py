"""Jaderberg et al. 2017, "Decoupled Neural Interfaces using Synthetic Gradients", ICML: the stochastic-update
experiment (Sec. 3.3) on MNIST. A 4-layer FCN (``fcn4``: Linear-BN-ReLU hidden blocks of 256) trained by BP, by
DNI and by cDNI with a synthetic-gradient module after every hidden block; with ``p_update`` < 1 every block,
with its module, updates on a batch only with that probability, independently of the others. The claim: the
decoupled network still trains to nearly BP's error.

Settings (families.md; from two third-party reimplementations citing the paper's appendix A.1, not verified
against the PDF): Adam lr 3e-5, batch 256, 500k steps (``full``: 2326 epochs of the 55,000 training images);
the same Adam for the modules; DNI's module one hidden layer of 1024 (ReLU), cDNI's a linear map on [h, y].
Deviations: no lr drops at 300k and 400k steps (the suite's schedulers are none / cosine), DNI's module has one
hidden layer without batch normalisation (the references give two with BN), the last 5,000 training images
are held out for validation. BP has no decoupled form: its row has the p_update 1.0 cell only.

Budgets: ``full`` (the paper's steps, 2 seeds: a cluster job), ``short`` (the same cells, 20 epochs, seed 0: the
learning curves and a summary table, on two cores in minutes), ``smoke``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bioplaus_bench.harness import RunSpec
from bioplaus_bench.papers import Cell, Paper, register_paper

P_UPDATES = ("1.0", "0.5", "0.2")
SHORT_EPOCHS = 20
FULL_EPOCHS = 2326  # 500k steps of batch 256 over 55,000 training images (215 batches an epoch)
ADAM = {"optimizer": "adam", "lr": "3e-5", "scheduler": "none"}
RULES = {  # row label -> (rule, its overrides beyond ADAM)
    "BP": ("bp", {}),
    "DNI": ("dni", {"lr_scale": "1.0", "sg_hidden": "1024", "sg_lr": "3e-5"}),
    "cDNI": ("cdni", {"lr_scale": "1.0", "sg_hidden": "0", "sg_lr": "3e-5"}),
}
ROW_OF = {algo: row for row, (algo, _) in RULES.items()}


def _col(p: str) -> str:
    return f"p_update {p}"


def cells() -> tuple[Cell, ...]:
    out = []
    for row, (algo, extra) in RULES.items():
        for p in P_UPDATES:
            if algo == "bp" and p != "1.0":
                out.append(Cell(row=row, col=_col(p), run=RunSpec(algo="bp", task="mnist"), runnable=False,
                                note="BP has no decoupled form"))
                continue
            overrides = {**ADAM, **extra, **({"p_update": p} if algo != "bp" else {})}
            run = RunSpec(algo=algo, task="mnist", arch="fcn4", epochs=FULL_EPOCHS, batch_size=256,
                          overrides=overrides)
            out.append(Cell(row=row, col=_col(p), run=run, metric="error"))
    return tuple(out)


def p_update_of(rec: dict[str, Any]) -> str:
    return f"{float(rec['config']['hparams'].get('p_update', 1.0)):.1f}"


def summary(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Final test error (%) per rule and p_update: mean, n, and the best validation epoch's test error."""
    rows = [{"rule": ROW_OF[r["config"]["algo"]], "p_update": p_update_of(r),
             "seed": r["config"]["seed"], "epochs": r["config"]["epochs"],
             "test error (%)": 100 * (1 - r["final"]["test_acc"]),
             "test error at best val (%)": 100 * (1 - r["final"]["test_acc_at_best_val"])}
            for r in records if r.get("status") == "completed"]
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    g = df.groupby(["rule", "p_update", "epochs"], sort=False)
    out = g[["test error (%)", "test error at best val (%)"]].mean().round(2)
    out["n"] = g.size()
    return out.reset_index()


def figures(records: list[dict[str, Any]], out: Path) -> list[Path]:
    """Test error per epoch, one panel per p_update, one line per rule; and the summary table (markdown)."""
    from bioplaus_bench.plots import COLUMN_IN, _save, _setup, conditions
    from bioplaus_bench.report import markdown

    records = [r for r in records if r.get("status") == "completed"]
    if not records:
        return []
    plt, sns = _setup()
    rows = [{"rule": ROW_OF[r["config"]["algo"]], "p_update": p_update_of(r),
             "seed": r["config"]["seed"], "epoch": ep, "test error (%)": 100 * (1 - acc)}
            for r in records for ep, acc in zip(r["curves"]["epoch"], r["curves"]["test_acc"], strict=True)]
    df = pd.DataFrame(rows)
    fig, axes = plt.subplots(1, len(P_UPDATES), figsize=(2 * COLUMN_IN, 2.4), sharey=True)
    for ax, p in zip(axes, P_UPDATES, strict=True):
        part = df[(df.p_update == p) | (df.rule == "BP")]  # BP (p_update 1) is every panel's reference
        sns.lineplot(data=part, x="epoch", y="test error (%)", hue="rule", hue_order=list(RULES),
                     errorbar=("pi", 100), ax=ax, legend=ax is axes[0])
        ax.set_title(f"p_update {p}", fontsize=8)
        ax.set_yscale("log")
    fig.suptitle("Jaderberg et al. 2017, Sec. 3.3: decoupled updates, MNIST 4-layer FCN", fontsize=8)
    paths = _save(fig, out, "jaderberg2017_p_update", conditions(records))
    table = summary(records)
    md = out / "jaderberg2017_p_update.md"
    md.write_text("# Decoupled updates (Jaderberg et al. 2017, Sec. 3.3): final test error (%)\n\n"
                  f"{conditions(records)}. Mean over n seeds; no spread is shown for n = 1. The paper's values "
                  "for this experiment are not in our references (unverified there), so there is no published "
                  "column.\n\n" + markdown(table.map(lambda v: f"{v:.2f}" if isinstance(v, float) else v)) + "\n")
    return [*paths, md]


register_paper(Paper(
    name="jaderberg2017",
    title="Jaderberg et al. 2017, DNI: decoupled (stochastic) updates on MNIST, 4-layer FCN: test error (%)",
    cells=cells(), seeds=(0, 1), figures=figures, budgets={"short": SHORT_EPOCHS}, budget_cells="all",
    notes="Settings from two third-party reimplementations citing the paper's appendix A.1 (families.md; "
          "unverified against the PDF): Adam lr 3e-5 for the network and the modules, batch 256, 500k steps; "
          "DNI's module one hidden ReLU layer of 1024 (theirs: two, with batch normalisation), cDNI's linear on "
          "[h, y]; no lr drops at 300k/400k steps. The published errors of this experiment (the paper's Table 1 "
          "reports about 2% for 3-6-layer FCNs) are not in our references, so none is printed; a third-party "
          "notebook reports 96.95% test accuracy at p_update 0.2 against 97.64% for BP (not the paper's numbers). "
          "BP has no decoupled form (p_update 1.0 only).",
))
