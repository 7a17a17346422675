"""Leaderboards from run records: per-task mean +- std over seeds, cost relative to BP, angle to BP, and an
across-task BP-normalised score with its interquartile mean and a stratified-bootstrap 95% CI.

Normalised score of a run on task k: (acc - chance_k) / (mean acc of BP on k - chance_k); BP scores 1.
IQM: the mean of the middle 50% of all runs' scores (25% trimmed from each end, over runs and tasks).
Stratified bootstrap: resample runs with replacement *within* each task, recompute the IQM, and take the
2.5/97.5 percentiles; the generator is seeded, so the interval is reproducible.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from bioplaus_bench.records import read_records


def iqm(x: np.ndarray) -> float:
    """Interquartile mean: mean of the values between the 25th and 75th percentile (by rank, trimmed)."""
    x = np.sort(np.asarray(x, dtype=float).ravel())
    n = len(x)
    if n == 0:
        return float("nan")
    lo, hi = int(math.floor(0.25 * n)), int(math.ceil(0.75 * n))
    return float(x[lo:hi].mean()) if hi > lo else float(x.mean())


def stratified_bootstrap_ci(groups: list[np.ndarray], stat=iqm, reps: int = 2000, seed: int = 0,
                            alpha: float = 0.05) -> tuple[float, float]:
    """Percentile CI of ``stat`` over all values, resampling within each group (task) independently."""
    rng = np.random.default_rng(seed)
    groups = [np.asarray(g, dtype=float) for g in groups if len(g)]
    stats = np.empty(reps)
    for r in range(reps):
        stats[r] = stat(np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups]))
    return float(np.quantile(stats, alpha / 2)), float(np.quantile(stats, 1 - alpha / 2))


def normalised_score(acc: float, bp_acc: float, chance: float) -> float:
    return (acc - chance) / (bp_acc - chance)


def runs_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per record with the fields leaderboards use (failed runs included, with their status)."""
    from bioplaus_bench.registry import get_task

    rows = []
    for r in records:
        c, f = r["config"], r.get("final", {})
        angles = [v for k, v in f.get("final_angles", {}).items() if k.endswith("weight") and v == v]
        try:
            chance = get_task(c["task"]).chance
        except Exception:
            chance = float("nan")
        rows.append({
            "algo": c["algo"], "task": c["task"], "arch": c["arch"], "seed": c["seed"], "epochs": c["epochs"],
            "status": r.get("status", "?"), "synthetic": r.get("task_synthetic", False),
            "data_generated": bool(r.get("data_generated", False)),
            "test_acc": f.get("test_acc", np.nan), "test_top5": f.get("test_top5", np.nan),
            "epoch_seconds": f.get("epoch_seconds", np.nan), "feedback_seconds": f.get("feedback_seconds", np.nan),
            "angle": float(np.mean(angles)) if angles else np.nan, "chance": chance,
            "error": r.get("error", ""), "path": r.get("_path", ""),
        })
    return pd.DataFrame(rows)


def leaderboard(df: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per rule x task table, across-task summary). Only completed runs on real data are aggregated."""
    ok = df[(df.status == "completed") & ~df.data_generated]
    g = ok.groupby(["algo", "task", "arch"])
    table = g.agg(acc_mean=("test_acc", "mean"), acc_std=("test_acc", "std"), n=("test_acc", "size"),
                  epoch_s=("epoch_seconds", "mean"), feedback_s=("feedback_seconds", "mean"),
                  angle=("angle", "mean")).reset_index()
    bp = table[table.algo == "bp"].set_index(["task", "arch"])
    table["time_vs_bp"] = [
        row.epoch_s / bp.loc[(row.task, row.arch), "epoch_s"] if (row.task, row.arch) in bp.index else np.nan
        for row in table.itertuples()]
    summary = []
    for algo, sub in ok.groupby("algo"):
        groups = []
        for (task, arch), runs in sub.groupby(["task", "arch"]):
            if (task, arch) not in bp.index or not np.isfinite(runs.chance.iloc[0]):
                continue
            groups.append(normalised_score(runs.test_acc.to_numpy(), bp.loc[(task, arch), "acc_mean"],
                                           runs.chance.iloc[0]))
        if groups:
            lo, hi = stratified_bootstrap_ci(groups, seed=seed)
            summary.append({"algo": algo, "norm_iqm": iqm(np.concatenate(groups)), "ci_low": lo, "ci_high": hi,
                            "tasks": len(groups), "runs": int(sum(len(x) for x in groups))})
    return table, pd.DataFrame(summary)


def render(df: pd.DataFrame, fmt: str = "md") -> str:
    """Leaderboard text: rules as rows, tasks as columns; failed/incomplete runs listed below."""
    table, summary = leaderboard(df)
    if table.empty:
        body = "(no completed runs)\n"
    else:
        table["cell"] = [f"{100 * r.acc_mean:.2f} ± {100 * (r.acc_std if r.acc_std == r.acc_std else 0):.2f} "
                         f"(n={r.n})" for r in table.itertuples()]
        table["col"] = table.task + "/" + table.arch
        wide = table.pivot(index="algo", columns="col", values="cell")
        cost = table.groupby("algo").agg(epoch_s=("epoch_s", "mean"), time_vs_bp=("time_vs_bp", "mean"),
                                         angle_to_bp=("angle", "mean"))
        wide = wide.join(cost.round(2))
        if not summary.empty:
            s = summary.set_index("algo")
            wide["norm. IQM [95% CI]"] = [
                f"{s.loc[a, 'norm_iqm']:.3f} [{s.loc[a, 'ci_low']:.3f}, {s.loc[a, 'ci_high']:.3f}]"
                if a in s.index else "" for a in wide.index]
        wide = wide.reset_index()
        if fmt == "csv":
            body = wide.to_csv(index=False)
        elif fmt == "latex":
            body = wide.to_latex(index=False)
        else:
            body = markdown(wide) + "\n"
    bad = df[(df.status != "completed") | df.data_generated]
    bad = bad.assign(status=[f"{st} (generated data: not a result)" if g else st
                             for st, g in zip(bad.status, bad.data_generated, strict=True)])
    if len(bad) and fmt == "md":
        body += "\nNot aggregated (failed or incomplete):\n\n" + markdown(bad[["algo", "task", "arch", "seed", "status",
                                                                                "error"]]) + "\n"
    return body


def markdown(df: pd.DataFrame) -> str:
    """A GitHub markdown table (no tabulate dependency)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join("" if (isinstance(v, float) and v != v) else str(v) for v in row) + " |")
    return "\n".join(lines)


def leaderboard_text(runs: str, fmt: str = "md") -> str:
    return render(runs_frame(read_records(runs)), fmt)
