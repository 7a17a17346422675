"""Figures from run records (seaborn), each written as PNG and PDF at paper-column width (3.4 in)."""

from __future__ import annotations

import logging
import textwrap
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
        fig.tight_layout(rect=(0, 0.04 * (caption.count("\n") + 1), 1, 1))
    else:
        fig.tight_layout()
    for p in paths:  # no creation date in the PDF: a re-rendering of the same records is the same file
        fig.savefig(p, dpi=200, metadata={"CreationDate": None} if p.suffix == ".pdf" else None)
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
        n = len(cur["epoch"])  # the reader checked every curve has this length; a missing one is empty
        acc, loss, secs = (cur.get(k) or [None] * n for k in ("test_acc", "train_loss", "epoch_seconds"))
        for i, ep in enumerate(cur["epoch"]):
            rows.append({"rule": name, "task": c["task"], "seed": c["seed"], "epoch": ep,
                         "test accuracy (%)": _pct(acc[i]), "train loss": loss[i], "epoch time (s)": secs[i]})
    return pd.DataFrame(rows)


def _pct(v: float | None) -> float:
    return np.nan if v is None else 100 * v


def learning_curves(records: list[dict[str, Any]], out: Path) -> list[Path]:
    plt, sns = _setup()
    df = curves_frame(records)
    paths = []
    for task, sub in df.groupby("task") if not df.empty else ():
        if sub["test accuracy (%)"].isna().all():  # a regression task has no accuracy to draw
            continue
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


def cost_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Per rule: steady seconds per epoch (mean over seeds), its ratio to BP's, the feedback-training share, n
    and the highest load average seen by its runs (the load includes the run's own threads)."""
    from bioplaus_bench.records import RecordScan
    from bioplaus_bench.report import frame

    if not records:
        return pd.DataFrame()
    df = frame(RecordScan(records=records))
    df = df[df.status == "completed"].rename(columns={"algo": "rule", "epoch_seconds": "seconds",
                                                      "feedback_seconds": "feedback", "load_avg": "load"})
    if df.empty or "bp" not in set(df.rule):
        return pd.DataFrame()
    g = df.groupby("rule").agg(seconds=("seconds", "mean"), feedback=("feedback", "mean"), n=("seconds", "size"),
                               max_load=("load", "max"))
    g["x BP"] = g.seconds / g.loc["bp", "seconds"]
    g["feedback share"] = g.feedback / g.seconds
    return g.sort_values("x BP").reset_index()


def cost_figure(records: list[dict[str, Any]], out: Path, name: str) -> list[Path]:
    """Seconds per training epoch of each rule relative to BP, the feedback-training part stacked; also
    ``<name>.md`` with the numbers."""
    table = cost_table(records)
    if table.empty:
        log.warning("cost figure: no completed BP record to normalise by; skipped")
        return []
    plt, _ = _setup()
    fig, ax = plt.subplots(figsize=(COLUMN_IN, 0.9 + 0.25 * len(table)))
    fb = table["x BP"] * table["feedback share"]
    ax.barh(table.rule, table["x BP"] - fb, color="C0", label="forward pass and update")
    ax.barh(table.rule, fb, left=table["x BP"] - fb, color="C1", label="feedback training")
    for y, v in enumerate(table["x BP"]):
        ax.text(v, y, f" {v:.1f}x", va="center", fontsize=6)
    ax.set_xlabel(f"seconds per training epoch / BP's ({table.set_index('rule').loc['bp', 'seconds']:.2f} s)",
                  fontsize=7)
    ax.legend(fontsize=6, loc="lower right")
    ax.set_title("time per epoch relative to BP (steady epochs)", fontsize=7)
    cfg = records[0]["config"]
    caption = f"{cfg['task']} {cfg['arch']}; {conditions(records)}; load avg <= {table.max_load.max():.2f}"
    paths = _save(fig, out, name, textwrap.fill(caption, 90))
    plt.close(fig)
    md = out / f"{name}.md"
    md.write_text(f"# Time per epoch relative to BP\n\n{caption}\n\n" + _md(table) + "\n")
    return paths + [md]


def stability_figure(records: list[dict[str, Any]], point, algos: tuple[str, str], axes: tuple[str, str], out: Path,
                     name: str) -> list[Path]:
    """Test-accuracy heatmaps of two rules side by side on the same grid and colour scale (``point(record)`` gives
    a record's (row, column) grid coordinates), with each rule's stability summary on validation accuracy:
    spread (best - worst completed point), fraction of the grid within 1 point of the best, diverged points.
    Also ``<name>.md`` with the summary. A diverged point is drawn empty and counts as not within 1 point."""
    plt, sns = _setup()
    rows = [{"algo": r["config"]["algo"], axes[0]: point(r)[0], axes[1]: point(r)[1], "status": r.get("status"),
             "test": 100 * r["final"]["test_acc"] if r.get("status") == "completed" else np.nan,
             "val": 100 * r["final"]["best_val_acc"] if r.get("status") == "completed" else np.nan}
            for r in records if r.get("status") in ("completed", "diverged", "collapsed")]
    df = pd.DataFrame(rows)
    fig, panels = plt.subplots(1, 2, figsize=(2 * COLUMN_IN, 3.2), sharey=True)
    vmin, vmax = np.nanmin(df.test), np.nanmax(df.test)
    summary = []
    for ax, algo in zip(panels, algos, strict=True):
        sub = df[df.algo == algo]
        grid = sub.pivot_table(index=axes[0], columns=axes[1], values="test", aggfunc="mean", dropna=False)
        grid = grid.sort_index(ascending=False)
        sns.heatmap(grid, annot=True, fmt=".0f", cmap="viridis", vmin=vmin, vmax=vmax, ax=ax, cbar=ax is panels[-1],
                    annot_kws={"fontsize": 5}, cbar_kws={"label": "test accuracy (%)"})
        scores = sensitivity_scores(sub.val.to_numpy() / 100)  # a diverged point (NaN) is never within 1 point
        failed = int(sub.status.isin(("diverged", "collapsed")).sum())
        s = {"rule": algo, "points": len(sub), "diverged or collapsed": failed,
             "best val (%)": scores["best"], "spread (points)": scores["spread"],
             "within 1 pt of best": scores["frac_within_1pt"]}
        summary.append(s)
        ax.set_title(f"{algo}: spread {s['spread (points)']:.1f} pts, {100 * s['within 1 pt of best']:.0f}% within "
                     f"1 pt\n{s['diverged or collapsed']} diverged or collapsed", fontsize=7)
    cfg = records[0]["config"]
    caption = (f"{cfg['task']} {cfg['arch']}; stability on validation accuracy, colours test accuracy; empty: "
               f"diverged or collapsed; {conditions(records)}")
    paths = _save(fig, out, name, caption)
    plt.close(fig)
    md = out / f"{name}.md"
    md.write_text(f"# Sensitivity of {' and '.join(algos)} to {' x '.join(axes)}\n\n{caption}\n\n"
                  + _md(pd.DataFrame(summary)) + "\n")
    return paths + [md]


def _md(df: pd.DataFrame) -> str:
    from bioplaus_bench.report import markdown

    return markdown(df.map(lambda v: f"{v:.3f}" if isinstance(v, float) else v))


FEEDBACK_MEASURES = {"angle_T": "angle(J_G, J_F^T) (deg)", "dist_T": "||J_G - J_F^T|| / ||J_F^T||",
                     "inverse_residual": "inverse residual"}


def feedback_training_figures(records: list[dict[str, Any]], summary: list[dict[str, Any]], out: Path,
                              name: str) -> list[Path]:
    """The feedback-training experiment (``feedback_training.py``): per layer, each loss's angle and distance
    between J_G and J_F^T and its inverse residual against iterations (mean ± std over seeds); the final angle
    between each weight tensor's BP gradient and the rule's update (bars); ``<name>.md`` with the numbers."""
    plt, sns = _setup()
    losses = list(dict.fromkeys(r["config"]["loss"] for r in records))
    layers = records[0]["layers"]
    fig, axes = plt.subplots(len(FEEDBACK_MEASURES), len(layers), figsize=(2 * COLUMN_IN, 4.6), sharex=True,
                             squeeze=False)
    for col, layer in enumerate(layers):
        for row, (key, label) in enumerate(FEEDBACK_MEASURES.items()):
            ax = axes[row][col]
            for k, loss in enumerate(losses):
                mine = [r for r in records if r["config"]["loss"] == loss]
                it = np.array(mine[0]["curves"]["iteration"])
                vals = np.array([[v[col] for v in r["curves"][key]] for r in mine], dtype=float)
                mean, std = vals.mean(0), vals.std(0)
                ax.plot(it, mean, color=f"C{k}", lw=1, label=f"{loss} (n={len(mine)})")
                ax.fill_between(it, mean - std, mean + std, color=f"C{k}", alpha=0.2, lw=0)
            if row == 0:
                ax.set_title(layer, fontsize=7)
            if col == 0:
                ax.set_ylabel(label, fontsize=6)
            if row == len(FEEDBACK_MEASURES) - 1:
                ax.set_xlabel("feedback iterations", fontsize=6)
            ax.tick_params(labelsize=5)
    axes[0][0].legend(fontsize=5)
    cfg = records[0]["config"]
    caption = (f"frozen {cfg['arch']} at init, {cfg['task']} batches of {cfg['batch_size']}, Adam lr {cfg['lr']}, "
               f"sigma {cfg['noise']}; mean ± std over seeds; {records[0]['env'].get('cpu')}")
    paths = _save(fig, out, name, caption)
    plt.close(fig)
    bars = pd.DataFrame([{"loss": loss, "weight": w, "angle to BP (deg)": v[k]}
                         for r in records for loss in [r["config"]["loss"]]
                         for k, w in enumerate(r["weights"]) for v in [r["curves"]["bp_angle"][-1]]]
                        + [{"loss": "at init (every loss)", "weight": w, "angle to BP (deg)": v[k]}
                           for r in records if r["config"]["loss"] == losses[0]
                           for k, w in enumerate(r["weights"]) for v in [r["curves"]["bp_angle"][0]]])
    fig, ax = plt.subplots(figsize=(COLUMN_IN, 2.4))
    sns.barplot(data=bars, x="weight", y="angle to BP (deg)", hue="loss", errorbar="sd", ax=ax)
    ax.set_title(f"angle between BP's gradient and the update at beta {cfg['beta']}, after "
                 f"{cfg['iterations']} feedback iterations", fontsize=6)
    ax.tick_params(labelsize=5)
    ax.legend(fontsize=5)
    paths += _save(fig, out, f"{name}_bp_angles", caption)
    plt.close(fig)
    df = pd.DataFrame(summary)
    df["value"] = [f"{f:.3g}" + ("" if s != s else f" ± {s:.2g}") + f" (init {i:.3g})"
                   for f, s, i in zip(df["final"], df["final std"], df["at init"], strict=True)]
    tables = "\n\n".join(
        _md(df[df.measure.isin(keys)].pivot_table(index=["measure", "loss"], columns="layer", values="value",
                                                  aggfunc="first", sort=False).reset_index())
        for keys in (list(FEEDBACK_MEASURES), ["bp_angle"]))
    stale = int(df.groupby("loss")["stale"].max().sum())
    md = out / f"{name}.md"
    md.write_text(f"# Feedback training on a frozen network: final values after {cfg['iterations']} iterations\n\n"
                  f"{caption}. Final mean ± std over n = {df['n'].max()} seeds (at initialisation in brackets). "
                  "Measures: angle_T and dist_T compare J_G with J_F^T; inverse_residual is 0 when J_G is an "
                  "inverse of J_F; bp_angle is the angle between a weight tensor's BP gradient and the rule's "
                  "update." + (f" {stale} records were made by other code (stale)." if stale else "") + "\n\n"
                  + tables + "\n")
    return paths + [md]
