"""Figures from run records (seaborn), each written as PNG and PDF at paper-column width (3.4 in)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)
COLUMN_IN = 3.4  # one column of a two-column paper


def _setup():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", font_scale=0.9)
    return plt, sns


def conditions(records: list[dict[str, Any]]) -> str:
    """The caption line of a figure: epochs, seeds, batch sizes, hardware and threads of its records."""
    def span(values: set) -> str:
        v = sorted(values, key=str)
        return ",".join(map(str, v)) if len(v) <= 4 else f"{v[0]}..{v[-1]} ({len(v)})"

    cfg = [r["config"] for r in records]
    env = [r.get("env") or {} for r in records]
    hw = {e.get("gpu") or e.get("cpu") or "?" for e in env}
    return (f"epochs {span({c['epochs'] for c in cfg})}; seeds {span({c['seed'] for c in cfg})}; batch "
            f"{span({c['batch_size'] for c in cfg})}; {span(hw)}; torch threads "
            f"{span({e.get('torch_threads') for e in env})}")


def _save(fig, out: Path, name: str, caption: str = "") -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    if caption:
        fig.text(0.01, 0.005, caption, fontsize=5, color="0.3", ha="left", va="bottom")
        fig.tight_layout(rect=(0, 0.04, 1, 1))
    else:
        fig.tight_layout()
    for p in paths:
        fig.savefig(p, dpi=200)
    log.info("wrote %s", ", ".join(map(str, paths)))
    return paths


def series(records: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """The records that figures average (completed, real data, canonical copy), each with its series name:
    the rule, its configuration label when that is not the defaults, and n, the runs of that configuration.
    Different configurations are different series, never pooled as seeds."""
    from bioplaus_bench.records import RecordScan
    from bioplaus_bench.report import config_labels, frame, usable

    df = frame(RecordScan(records=list(records)))
    if df.empty:
        return []
    keep = df[usable(df)]
    labels, n = config_labels(df), keep.groupby("config_key").size()
    out = []
    for i in keep.index:
        row = keep.loc[i]
        label = labels[row.config_key]
        name = row.algo if label == "defaults" else f"{row.algo} [{label}]"
        out.append((records[i], f"{name} (n={n[row.config_key]})"))
    return out


def curves_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for r, name in series(records):
        c, cur = r["config"], r["curves"]
        for i, ep in enumerate(cur["epoch"]):
            rows.append({"rule": name, "task": c["task"], "seed": c["seed"], "epoch": ep,
                         "test accuracy (%)": _pct(cur["test_acc"][i]), "train loss": cur["train_loss"][i],
                         "epoch time (s)": cur["epoch_seconds"][i]})
    return pd.DataFrame(rows)


def _pct(v: float | None) -> float:
    return np.nan if v is None else 100 * v


def learning_curves(records: list[dict[str, Any]], out: Path) -> list[Path]:
    plt, sns = _setup()
    df = curves_frame(records)
    paths = []
    for task, sub in df.groupby("task"):
        # left: every rule; right: zoom on the rules within 10 points of the best, where they differ
        fig, axes = plt.subplots(1, 2, figsize=(2 * COLUMN_IN, 2.6))
        for ax in axes:
            sns.lineplot(data=sub, x="epoch", y="test accuracy (%)", hue="rule", errorbar="sd", marker="o", ax=ax,
                         legend=ax is axes[1])
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.set_xlim(0.7, max(sub.epoch.max(), 1) + 0.3)  # a 1-epoch run is a point at 1, not a 0.96-1.04 axis
        top = sub.groupby("rule")["test accuracy (%)"].max().max()
        axes[1].set_ylim(top - 10, top + 1)
        axes[0].set_title("all rules")
        axes[1].set_title("zoom: within 10 points of the best")
        axes[1].legend(fontsize=6, ncol=2, loc="lower right")
        fig.suptitle(f"{task}: test accuracy (mean ± sd over seeds)", fontsize=8)
        paths += _save(fig, out, f"curves_{task}", conditions([r for r, _ in series(records)
                                                                if r["config"]["task"] == task]))
        plt.close(fig)
    return paths


def angle_curves(records: list[dict[str, Any]], out: Path) -> list[Path]:
    plt, sns = _setup()
    rows = []
    for r, rule in series(records):
        for i, angles in enumerate(r["curves"].get("angles", [])):
            weights = [k for k in angles if k.endswith("weight")]
            for j, name in enumerate(weights):
                a = angles[name]
                if a is not None and a == a:
                    layer = "output" if j == len(weights) - 1 else f"hidden {j + 1}"
                    rows.append({"rule": rule, "task": r["config"]["task"], "layer": layer,
                                 "epoch": r["curves"]["epoch"][i], "angle to BP (deg)": a})
    df = pd.DataFrame(rows)
    if not df.empty:  # an output layer at 0° for every rule (its update is the BP gradient) only adds clutter
        flat = df[df.layer == "output"].groupby("task")["angle to BP (deg)"].max() < 1e-3
        df = df[~((df.layer == "output") & df.task.map(flat).fillna(False))]
    paths = []
    if df.empty:
        return paths
    for task, sub in df.groupby("task"):
        rules = sorted(sub.rule.unique())
        ncol = min(4, len(rules))
        nrow = -(-len(rules) // ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(2 * COLUMN_IN, 1.9 * nrow + 0.5), sharey=True, sharex=True,
                                 squeeze=False)
        for ax, rule in zip(axes.flat, rules, strict=False):
            sns.lineplot(data=sub[sub.rule == rule], x="epoch", y="angle to BP (deg)", hue="layer", ax=ax,
                         errorbar="sd", marker="o", legend=ax is axes[0][0])
            ax.set_title(rule, fontsize=8)
            ax.axhline(90, color="grey", lw=0.5, ls="--")
            ax.set_ylim(-5, 100)
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.set_xlim(0.7, max(sub.epoch.max(), 1) + 0.3)  # a 1-epoch run is a point at 1, not a 0.96-1.04 axis
        for ax in list(axes.flat)[len(rules):]:
            ax.set_visible(False)
        axes[0][0].legend(fontsize=5, title="layer", title_fontsize=5)
        fig.suptitle(f"{task}: angle between each rule's update and the BP gradient, per layer\n"
                     "(mean ± sd over seeds; dashed: 90°; the output layer is omitted where it is exactly BP's)",
                     fontsize=7)
        paths += _save(fig, out, f"angles_{task}", conditions([r for r, _ in series(records)
                                                                if r["config"]["task"] == task]))
        plt.close(fig)
    return paths


def epoch_times(records: list[dict[str, Any]], out: Path) -> list[Path]:
    plt, sns = _setup()
    rows = [{"rule": name, "task": r["config"]["task"],
             "epoch time (s)": r["final"]["epoch_seconds"], "feedback": r["final"]["feedback_seconds"]}
            for r, name in series(records)]
    df = pd.DataFrame(rows)
    paths = []
    for task, sub in df.groupby("task"):
        order = sub.groupby("rule")["epoch time (s)"].mean().sort_values().index
        fig, ax = plt.subplots(figsize=(COLUMN_IN, 2.4))
        fig.set_size_inches(COLUMN_IN, 0.8 + 0.22 * len(order))
        sns.barplot(data=sub, y="rule", x="epoch time (s)", order=order, errorbar="sd", ax=ax, color="C0")
        ax.set_xlabel("seconds per training epoch\n(epochs 2.., mean ± sd over seeds)", fontsize=7)
        ax.set_ylabel("")
        ax.tick_params(axis="y", labelsize=6)
        ax.set_title(f"{task}: seconds per epoch", fontsize=8)
        paths += _save(fig, out, f"epoch_time_{task}", conditions([r for r, _ in series(records)
                                                                    if r["config"]["task"] == task]))
        plt.close(fig)
    return paths


def sensitivity_figure(table: pd.DataFrame, axes: list[str], title: str, out: Path, name: str) -> list[Path]:
    """Heatmap of mean test accuracy over a 2-axis grid, or a curve for one axis (``table``: one row per run
    with the axes and ``acc``)."""
    plt, sns = _setup()
    fig, ax = plt.subplots(figsize=(COLUMN_IN, 2.8))
    if len(axes) == 2:
        grid = table.pivot_table(index=axes[0], columns=axes[1], values="acc", aggfunc="mean") * 100
        grid = grid.sort_index(ascending=False)  # the first axis grows upwards, as on a plot
        sns.heatmap(grid, annot=True, fmt=".1f", cmap="viridis", ax=ax, annot_kws={"fontsize": 6},
                    cbar_kws={"label": "test accuracy (%)"})
    else:
        sns.lineplot(data=table.assign(acc=100 * table.acc), x=axes[0], y="acc", marker="o", errorbar="sd", ax=ax)
        ax.set_xscale("log")
        ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=7)
    paths = _save(fig, out, name)
    plt.close(fig)
    return paths


def sensitivity_heatmaps(records: list[dict[str, Any]], out: Path) -> list[Path]:
    """A heatmap (or curve) per rule and task whose records differ in one or two rule hyperparameters."""
    paths = []
    done = [r for r, _ in series(records)]
    key = lambda r: (r["config"]["algo"], r["config"]["task"], r["config"]["arch"])  # noqa: E731
    for algo, task, arch in sorted({key(r) for r in done}):
        recs = [r for r in done if key(r) == (algo, task, arch)]
        hp = pd.DataFrame([r["config"]["hparams"] for r in recs]).astype(str)
        axes = [c for c in hp.columns if hp[c].nunique() > 1]
        run = pd.DataFrame([{k: v for k, v in r["config"].items() if k not in ("hparams", "seed", "angle_every")}
                            for r in recs]).astype(str)
        # a sensitivity study: only rule hyperparameters vary (1 or 2 of them), over at least 4 points
        if not 1 <= len(axes) <= 2 or (run.nunique() > 1).any() or hp[axes].drop_duplicates().shape[0] < 4:
            continue
        table = pd.DataFrame([{**{a: float(r["config"]["hparams"][a]) for a in axes}, "acc": r["final"]["test_acc"]}
                              for r in recs])
        seeds = sorted({r["config"]["seed"] for r in recs})
        title = (f"{algo} on {task}, {recs[0]['config']['epochs']} epochs, seeds {','.join(map(str, seeds))}: "
                 f"test accuracy over {' x '.join(axes)}")
        paths += sensitivity_figure(table, axes, title, out, f"sensitivity_{algo}_{task}_{arch}")
    return paths


def all_figures(records: list[dict[str, Any]], out: Path) -> list[Path]:
    return (learning_curves(records, out) + angle_curves(records, out) + epoch_times(records, out)
            + sensitivity_heatmaps(records, out))


def sensitivity_scores(acc: np.ndarray) -> dict[str, float]:
    """Spread (max - min, points) of mean final accuracy over the grid, and the fraction of grid points
    within 1 point of the best. Callers pass validation accuracy: the choice of a point is model selection."""
    acc = 100 * np.asarray(acc, dtype=float)
    best = np.nanmax(acc)
    return {"best": float(best), "spread": float(best - np.nanmin(acc)),
            "frac_within_1pt": float(np.mean(acc >= best - 1.0))}
