"""Records as a table, and leaderboards that aggregate per configuration.

``load_records(folder)`` gives one DataFrame row per record: the config fields as columns (rule
hyperparameters included), the final metrics, the status, and whether the record was made by other code
than today's (``stale``) or timed on a loaded machine (``contended``). Every report is built on it.

A configuration is the unit of aggregation: records are grouped by their resolved config without the seed
(and without the angle interval, which only decides how often training is observed). Different configs of one
rule are separate rows, labelled by what differs (the preset, the hyperparameters that differ from the rule's
defaults, and the run-level fields that vary between its rows). ``n`` is always shown; std and CIs need n >= 2.
Diverged, failed, unfinished and generated-data runs are never averaged; each row says how many it excluded.

Normalised score of a run on task k: (acc - chance_k) / (mean acc of BP on k - chance_k), where BP is the
BP config with the same task, architecture, epochs and batch size (BP's defaults where there are several; no
score when there is none).
IQM: the mean of the middle 50% of the scores. Stratified bootstrap: resample runs within each task, recompute
the IQM, take the 2.5/97.5 percentiles; the generator is seeded, so the interval is reproducible.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bioplaus_bench.records import RecordScan, config_hash, is_set_aside, is_stale, read_records, repro

RUN_FIELDS = ("algo", "task", "arch", "preset", "seed", "epochs", "batch_size", "val_size", "max_batches",
              "angle_every")
NOT_CONFIG = ("seed", "angle_every")  # fields that do not change what is trained
CONTENTION_MARGIN = 0.5  # a run alone on the machine keeps the load near its thread count
METRICS = ("test_acc", "test_top5", "test_loss", "val_acc", "best_val_acc", "train_loss", "epoch_seconds",
           "feedback_seconds")


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


# ------------------------------------------------------------------------------------------- records as rows

def config_key(config: dict[str, Any]) -> str:
    """The configuration a record belongs to: its resolved config without the seed and the angle interval."""
    return json.dumps({k: v for k, v in config.items() if k not in NOT_CONFIG}, sort_keys=True, default=str)


@functools.cache
def rule_defaults(algo: str) -> dict[str, Any] | None:
    """The rule's default hyperparameters as they appear in a record's config (None: the rule does not load)."""
    from bioplaus_bench.registry import get_algorithm

    try:
        return json.loads(json.dumps(dataclasses.asdict(get_algorithm(algo).config()), default=list))
    except Exception:
        return None


def _scalar(v: Any) -> Any:
    """A per-layer list with one value (the usual case) is that value, so its column stays numeric."""
    if isinstance(v, list):
        return v[0] if len(v) == 1 else ",".join(map(str, v))
    return v


def frame(scan: RecordScan) -> pd.DataFrame:
    """One row per record (see ``load_records``)."""
    rows = []
    for r in scan.records:
        c, f = r["config"], r.get("final") or {}
        hp = c.get("hparams") or {}
        # the angle at the end of training: the last measurement (records from before it: the last epoch's mean)
        last = f.get("final_angles_last") or f.get("final_angles") or {}
        angles = [v for k, v in last.items() if k.endswith("weight") and v is not None]
        env = r.get("env") or {}
        loads = [x for x in (r.get("load_avg_start"), r.get("load_avg_end")) if isinstance(x, int | float)]
        cores = env.get("cpu_count")
        path = Path(r.get("_path", ""))
        row = {k: c.get(k) for k in RUN_FIELDS}
        row.update({k: _scalar(v) for k, v in hp.items() if k not in RUN_FIELDS})
        row.update({
            "config_key": config_key(c), "run_id": r.get("run_id", path.stem), "status": r["status"],
            "data_generated": bool(r.get("data_generated", False)), "synthetic": bool(r.get("task_synthetic")),
            **{m: _num(f.get(m)) for m in METRICS},
            "angle": float(np.mean(angles)) if angles else np.nan,
            "code_hash": r.get("code_hash"),
            "stale": is_stale(r),
            "load_avg": max(loads) if loads else np.nan, "threads": repro(r).get("threads"),
            "device": repro(r).get("device"),
            "started": _num(r.get("started")), "git_commit": env.get("git_commit"),
            "hardware": env.get("gpu") or env.get("cpu"),
            # timed under contention: the load (in which the run's own threads count) exceeded the cores by
            # more than CONTENTION_MARGIN; an unknown load is not flagged
            "contended": bool(loads and cores and max(loads) > cores + CONTENTION_MARGIN),
            "error": ((r.get("error") or "").strip().splitlines() or [""])[-1] or _dead(r), "path": str(path),
            # a copy kept by --force (<run id>.superseded-<time>.json): the canonical file is the run's result
            "superseded": bool(r.get("_path")) and is_set_aside(path),
        })
        rows.append(row)
    return pd.DataFrame(rows)


def _dead(rec: dict[str, Any]) -> str:
    """For a record left "running": why it will not finish (its process is gone), else ""."""
    from bioplaus_bench.records import run_is_dead

    why = run_is_dead(rec) if rec.get("status") == "running" else None
    return f"{why}; rerun to resume" if why else ""


def _num(v: Any) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else np.nan


def load_records(folder: str | Path) -> pd.DataFrame:
    """All run records below ``folder`` as a DataFrame, one row per record, with numeric columns for the run
    fields, every rule hyperparameter (by its name) and the final metrics (accuracies as fractions). Unreadable
    files are skipped; ``df.attrs["skipped"]`` lists them with the reason."""
    scan = read_records(folder)
    df = frame(scan)
    df.attrs["skipped"] = scan.skipped
    return df


# ------------------------------------------------------------------------------------------- aggregation

def config_labels(df: pd.DataFrame) -> dict[str, str]:
    """config_key -> a short label: preset, hyperparameters that differ from the rule's defaults, and the
    run-level fields that vary between the configs of the same rule, task and architecture."""
    labels: dict[str, str] = {}
    for _, fam in df.groupby(["algo", "task", "arch"], dropna=False):
        configs = fam.drop_duplicates("config_key")
        varying = [k for k in ("val_size", "max_batches") if configs[k].astype(str).nunique() > 1]
        for _, row in configs.iterrows():
            cfg = json.loads(row.config_key)
            hp, ref = cfg.get("hparams") or {}, rule_defaults(row.algo) or {}
            parts = [f"preset {cfg['preset']}"] if cfg.get("preset") else []
            parts += [f"{k}={_scalar(v)}" for k, v in sorted(hp.items()) if k in ref and ref[k] != v]
            parts += [f"{k}={cfg.get(k)}" for k in varying]
            labels[row.config_key] = ", ".join(parts) or "defaults"
        ident = configs.config_key.map(labels) + configs.epochs.astype(str) + "/" + configs.batch_size.astype(str)
        for _, keys in configs.groupby(ident).config_key:  # rows that label, epochs and batch do not tell apart
            if len(keys) > 1:
                for k in keys:
                    labels[k] = f"{labels[k]} [{config_hash(json.loads(k))}]"
    return labels


def usable(df: pd.DataFrame) -> pd.Series:
    """The records that are averaged: completed, on real data, the canonical copy of their run."""
    return (df.status == "completed") & ~df.data_generated & ~df.superseded


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration: n, mean and std (n >= 2) of test accuracy, epoch time, time vs BP, angle,
    and the number of records excluded (diverged / failed or unfinished / generated data) and flagged."""
    if df.empty:
        return pd.DataFrame()
    labels = config_labels(df)
    ok = usable(df)
    rows = []
    for key, g in df[~df.superseded].groupby("config_key", sort=False):
        u = g[ok[g.index]]
        first = g.iloc[0]
        accs = u.test_acc.to_numpy(dtype=float)
        rows.append({
            "task": first.task, "arch": first.arch, "algo": first.algo, "config": labels[key],
            "preset": first.preset, "epochs": first.epochs, "batch_size": first.batch_size,
            "n": len(u), "acc_mean": float(np.mean(accs)) if len(u) else np.nan,
            "acc_std": float(np.std(accs, ddof=1)) if len(u) >= 2 else np.nan,
            "test_loss": float(u.test_loss.mean()) if len(u) else np.nan,
            "epoch_s": float(u.epoch_seconds.mean()) if len(u) else np.nan,
            "feedback_s": float(u.feedback_seconds.mean()) if len(u) else np.nan,
            "angle": float(u.angle.mean()) if len(u) else np.nan,
            "n_diverged": int((g.status == "diverged").sum()),
            "n_collapsed": int((g.status == "collapsed").sum()),
            "n_failed": int((~g.status.isin(("completed", "diverged", "collapsed"))).sum()),
            # what else decides the numbers (torch threads, device): more than one among the averaged runs
            "repro_mix": ", ".join(f"{k} {','.join(map(str, v))}" for k, v in (
                ("threads", sorted(u.threads.dropna().unique())), ("device", sorted(u.device.dropna().unique())))
                if len(v) > 1),
            "n_generated": int(((g.status == "completed") & g.data_generated).sum()),
            "n_stale": int(u.stale.sum()), "n_contended": int(u.contended.sum()),
            "config_key": key,
            **{k: first[k] for k in df.columns if k not in RUN_FIELDS and k not in _ROW_ONLY},
        })
    table = pd.DataFrame(rows)
    bp = table[(table.algo == "bp") & (table.n > 0)]
    table["time_vs_bp"] = [
        r.epoch_s / float(m.epoch_s.mean()) if len(m := bp[(bp.task == r.task) & (bp.arch == r.arch)
                                                          & (bp.batch_size == r.batch_size)]) else np.nan
        for r in table.itertuples()]
    return table.sort_values(["task", "arch", "algo", "config"], kind="stable").reset_index(drop=True)


_ROW_ONLY = {"config_key", "run_id", "status", "data_generated", "synthetic", *METRICS, "angle", "code_hash",
             "stale", "load_avg", "threads", "device", "hardware", "contended", "error", "path", "superseded",
             "started", "git_commit"}


def summary(df: pd.DataFrame, table: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per rule and config label across tasks: IQM of the BP-normalised score, with a 95% CI when n >= 2."""
    from bioplaus_bench.registry import get_task

    ok = df[usable(df)]
    out = []
    for (algo, label), rows in table[table.n > 0].groupby(["algo", "config"]):
        groups = []
        for r in rows.itertuples():
            ref = table[(table.algo == "bp") & (table.task == r.task) & (table.arch == r.arch) & (table.n > 0)
                        & (table.epochs == r.epochs) & (table.batch_size == r.batch_size)]
            if len(ref) > 1:  # several BP configs: BP with its defaults is the reference
                ref = ref[ref.config == "defaults"]
            try:
                chance = get_task(r.task).chance
            except Exception:
                continue
            if len(ref) != 1 or not math.isfinite(chance):
                continue
            accs = ok[ok.config_key == r.config_key].test_acc.to_numpy(dtype=float)
            groups.append(normalised_score(accs, ref.acc_mean.iloc[0], chance))
        if not groups:
            continue
        n = int(sum(len(x) for x in groups))
        lo, hi = stratified_bootstrap_ci(groups, seed=seed) if n >= 2 else (np.nan, np.nan)
        out.append({"algo": algo, "config": label, "norm_iqm": iqm(np.concatenate(groups)), "ci_low": lo,
                    "ci_high": hi, "tasks": len(groups), "n": n})
    return pd.DataFrame(out)


# ------------------------------------------------------------------------------------------- rendering

def render(df: pd.DataFrame, fmt: str = "md") -> str:
    """The leaderboard as markdown (one table per task and architecture), csv (numeric columns) or LaTeX."""
    skipped = df.attrs.get("skipped", [])
    if df.empty:
        return "(no run records)\n"
    table = aggregate(df)
    if fmt == "csv":
        cols = ["task", "arch", "algo", "config", "preset", "epochs", "batch_size", "n", "acc_mean", "acc_std",
                "test_loss", "epoch_s", "feedback_s", "time_vs_bp", "angle", "n_diverged", "n_collapsed",
                "n_failed", "n_generated", "n_stale", "n_contended", "repro_mix"]
        extra = [c for c in table.columns if c not in cols and c != "config_key"]
        return table[cols + extra].to_csv(index=False)
    show = pd.DataFrame({
        "rule": table.algo, "config": table.config, "epochs": table.epochs, "batch": table.batch_size,
        "n": table.n,
        "test acc (%)": [f"{100 * r.acc_mean:.2f}" if r.n else "—" for r in table.itertuples()],
        "± std": [f"{100 * r.acc_std:.2f}" if r.n >= 2 else "—" for r in table.itertuples()],
        "test loss": [f"{x:.4g}" if x == x else "—" for x in table.test_loss],
        "s/epoch": [f"{x:.2f}" if x == x else "—" for x in table.epoch_s],
        "x BP": [f"{x:.2f}" if x == x else "—" for x in table.time_vs_bp],
        "angle (°)": [f"{x:.1f}" if x == x else "—" for x in table.angle],
        "excluded": [_excluded(r) for r in table.itertuples()],
        "flags": [_flags(r) for r in table.itertuples()],
    })
    if fmt == "latex":
        ok = df[usable(df)]
        cap = ("Test accuracy (%, last epoch) per configuration: mean and std over n seeds; seconds per training "
               "epoch and ratio to BP; mean final angle to BP (degrees). Seeds "
               + ",".join(map(str, sorted(ok.seed.unique()))) + "; " + "; ".join(sorted(ok.hardware.dropna().unique()))
               + "; torch threads " + ",".join(map(str, sorted(ok.threads.dropna().unique()))) + ".")
        return latex(show.assign(task=table.task + "/" + table.arch)[["task", *show.columns]], cap)
    parts = []
    for (task, arch), idx in table.groupby(["task", "arch"], sort=False).groups.items():
        sub = show.loc[idx]
        if table.loc[idx, "acc_mean"].isna().all():
            sub = sub.drop(columns=["test acc (%)", "± std"])
        parts.append(f"### {task} / {arch}\n\n" + markdown(sub) + "\n")
    s = summary(df, table)
    if not s.empty:
        s = s.assign(**{"norm. IQM": s.norm_iqm.map("{:.3f}".format),
                        "95% CI": [f"[{lo:.3f}, {hi:.3f}]" if n >= 2 else "—"
                                   for lo, hi, n in zip(s.ci_low, s.ci_high, s.n, strict=True)]})
        parts.append("### Across tasks: BP-normalised score\n\n"
                     + markdown(s[["algo", "config", "tasks", "n", "norm. IQM", "95% CI"]]) + "\n")
    parts.append(_footnotes(df, table, skipped))
    return "\n".join(parts)


def _excluded(r: Any) -> str:
    bits = [f"{r.n_diverged} diverged" if r.n_diverged else "", f"{r.n_collapsed} collapsed" if r.n_collapsed
            else "", f"{r.n_failed} failed/unfinished" if r.n_failed else "",
            f"{r.n_generated} on generated data" if r.n_generated else ""]
    return ", ".join(b for b in bits if b)


def _flags(r: Any) -> str:
    bits = [f"stale {r.n_stale}/{r.n}" if r.n_stale else "", f"loaded {r.n_contended}/{r.n}" if r.n_contended
            else "", f"mixed {r.repro_mix}" if r.repro_mix else ""]
    return ", ".join(b for b in bits if b)


def _footnotes(df: pd.DataFrame, table: pd.DataFrame, skipped: list) -> str:
    lines = ["n: completed runs (seeds) averaged; ± std: their standard deviation (— for n < 2). Accuracy is the "
             "last epoch's. x BP: epoch time over BP's (same task, architecture and batch size)."]
    lines += _timing_span(df[usable(df)])
    if table.n_stale.any():
        lines.append("stale k/n: today's code computes something else for k of the n records' configurations (their "
                     "behavioural fingerprint no longer holds): rerun them to refresh.")
    if table.n_collapsed.any():
        from bioplaus_bench.records import COLLAPSE_FACTOR, COLLAPSE_MARGIN

        lines.append(f"collapsed: the run ended within {100 * COLLAPSE_MARGIN:g} points of chance with a test loss "
                     f"over {COLLAPSE_FACTOR:g} x its loss at the start (its loss blew up under the divergence bound); "
                     "excluded like a diverged run.")
    if (table.repro_mix != "").any():
        lines.append("mixed: the row averages runs made with different torch threads or devices, whose numbers "
                     "differ at the same seed; rerun them alike (`bench rebuild --rerun`) to compare seeds alone.")
    if table.n_contended.any():
        lines.append(f"loaded k/n: k runs were timed while the load average exceeded the core count by more than "
                     f"{CONTENTION_MARGIN} (other work shared the machine); their times are not comparable.")
    excl = df[~usable(df)]
    if len(excl):
        lines.append("\nNot aggregated:\n\n" + markdown(excl.assign(why=[
            "superseded copy" if s else ("generated data (not a result)" if g else st)
            for s, g, st in zip(excl.superseded, excl.data_generated, excl.status, strict=True)])[
            ["algo", "task", "arch", "seed", "why", "error", "path"]]))
    if skipped:
        lines.append(f"\n{len(skipped)} unreadable file(s) skipped: "
                     + "; ".join(f"{p} ({why})" for p, why in skipped[:10]) + (" ..." if len(skipped) > 10 else ""))
    return "\n".join(lines) + "\n"


def _timing_span(ok: pd.DataFrame) -> list[str]:
    """When, and at which commits, the timed runs were started: ``x BP`` divides epoch times, which are
    comparable only when they were measured in one sitting on one machine."""
    t = ok.started.dropna()
    if t.empty:
        return []
    lo, hi = (time.strftime("%Y-%m-%d %H:%M", time.gmtime(v)) for v in (t.min(), t.max()))
    commits = ok.git_commit.dropna().nunique()
    line = f"s/epoch: runs started {lo} to {hi} UTC" + (f", at {commits} commits" if commits > 1 else "")
    if t.max() - t.min() > 86400 or commits > 1:  # more than one sitting: the ratios may mix machine conditions
        line += (" (`x BP` may compare runs timed at different times; `bench rebuild --rerun --only STEP` "
                 "retimes a study in one sitting)")
    return [line + "."]


def markdown(df: pd.DataFrame) -> str:
    """A GitHub markdown table (no tabulate dependency)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join("" if (isinstance(v, float) and v != v) else str(v) for v in row) + " |")
    return "\n".join(lines)


def latex(df: pd.DataFrame, caption: str = "") -> str:
    """A booktabs table with every cell escaped (values are already formatted strings or integers)."""
    def esc(v: Any) -> str:
        text = "" if v is None or (isinstance(v, float) and v != v) else str(v)
        return "".join(_TEX.get(ch, ch) for ch in text)
    head = " & ".join(esc(c) for c in df.columns)
    body = "\n".join(" & ".join(esc(v) for v in row) + r" \\" for row in df.itertuples(index=False))
    cap = f"\\caption{{{esc(caption)}}}\n" if caption else ""
    return (f"\\begin{{table}}[t]\n\\centering\n{cap}\\begin{{tabular}}{{{'l' * len(df.columns)}}}\n\\toprule\n"
            f"{head} \\\\\n\\midrule\n{body}\n\\bottomrule\n\\end{{tabular}}\n\\end{{table}}\n")


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}", "±": r"$\pm$", "°": r"$^\circ$", "—": "--"}


def sensitivity_report(df: pd.DataFrame, run_ids: set[str], axes: list[str], out: Path, name: str
                       ) -> tuple[str, list[Path]]:
    """Markdown report and figure of a hyperparameter grid (the records ``run_ids`` in ``df``): the point chosen
    on mean validation accuracy and its test accuracy, the spread of validation accuracy over the grid and the
    fraction of points within 1 point of the best; the figure shows mean test accuracy."""
    from bioplaus_bench.plots import sensitivity_figure, sensitivity_scores

    sub = df[df.run_id.isin(run_ids)] if not df.empty else df
    done = sub[usable(sub)] if not sub.empty else sub
    if done.empty:
        raise ValueError(f"no completed grid point in {out} (see `bench status --out {out}`)")
    first = done.iloc[0]
    table = done[axes + ["seed", "val_acc", "test_acc", "angle"]].rename(columns={"test_acc": "acc"})
    means = table.groupby(axes)[["val_acc", "acc"]].mean()
    angle = table.groupby(axes).angle.mean()  # the end-of-training angle to BP, when the runs measured it
    scores = sensitivity_scores(means.val_acc.to_numpy())
    best = means.val_acc.idxmax()
    best_pt = ", ".join(f"{k}={v:g}" if isinstance(v, int | float) else f"{k}={v}"
                        for k, v in zip(axes, best if isinstance(best, tuple) else (best,), strict=True))
    seeds = sorted(done.seed.unique())
    what = f"{first.algo} on {first.task} ({first.arch}), {first.epochs} epochs, batch {first.batch_size}"
    title = f"{what}, seeds {','.join(map(str, seeds))}: test accuracy over {' x '.join(axes)}"
    figs = sensitivity_figure(table, axes, title, out / "figures", name)
    excluded = sub[~usable(sub)]
    text = (f"# Sensitivity: {what}\n\n"
            f"Chosen on validation accuracy: {best_pt} (val {scores['best']:.2f}%, test "
            f"{100 * means.acc.loc[best]:.2f}%). Spread of validation accuracy over the grid "
            f"{scores['spread']:.2f} points; {100 * scores['frac_within_1pt']:.0f}% of the {len(means)} points are "
            f"within 1 point of the best. Excluded (not completed): {len(excluded)}"
            + (f" ({', '.join(f'{k} {v}' for k, v in excluded.status.value_counts().items())})" if len(excluded)
               else "") + ".\n\n"
            + markdown((means * 100).round(2).rename(columns={"val_acc": "val acc (%)", "acc": "test acc (%)"})
                       .assign(**({"angle to BP (°)": angle.round(1)} if angle.notna().any() else {}))
                       .assign(n=table.groupby(axes).size()).reset_index()) + "\n")
    (out / f"{name}.md").write_text(text)
    return text, [out / f"{name}.md", *figs]


REPORT_KEYS = ("leaderboard", "figures", "sensitivity", "heading")
FORMATS = {"md": "md", "csv": "csv", "latex": "tex"}


def _leaderboard_body(df: pd.DataFrame, study: Any, study_file: Path, fmt: str) -> str:
    cmd = f"bench grid --study {study_file}"
    body = render(df, fmt)
    heading = study.report.get("heading", "")  # what the data is, where a reader must know it first
    if fmt == "md":
        return (f"# {study.name}\n\n" + (f"{heading}\n\n" if heading else "")
                + f"Regenerate: `{cmd}` (records in `{study.out}`).\n\n" + body)
    if fmt == "latex":
        return f"% regenerate: {cmd}\n" + body
    return body


def render_leaderboard_file(path: Path) -> str:
    """What ``write_study_report`` would write now at ``path`` (a leaderboard beside its study.toml)."""
    from bioplaus_bench.grid import load_study

    study_file = path.parent / "study.toml"
    study, _ = load_study(study_file)
    fmt = {v: k for k, v in FORMATS.items()}[path.suffix.lstrip(".")]
    rel = Path(study_file).relative_to(Path.cwd()) if Path(study_file).is_absolute() else study_file
    return _leaderboard_body(load_records(study.out), study, rel, fmt)


def write_study_report(study: Any, study_file: Path) -> list[Path]:
    """The outputs a study file's ``[report]`` table asks for, written beside the study file: the leaderboard
    of the study's records in each format (``leaderboard = ["md", "csv", "latex"]``) and the figures
    (``figures = true``) in ``figures/``."""
    from bioplaus_bench.plots import all_figures
    from bioplaus_bench.records import read_records
    from bioplaus_bench.registry import RegistryError

    folder = Path(study_file).parent
    bad = sorted(set(study.report) - set(REPORT_KEYS))
    fmts = study.report.get("leaderboard", [])
    if bad or not isinstance(fmts, list) or any(f not in FORMATS for f in fmts):
        raise RegistryError(f"bad [report] in {study_file}: keys {', '.join(REPORT_KEYS)}; leaderboard formats "
                            f"{', '.join(FORMATS)}")
    df = load_records(study.out)
    paths = []
    for fmt in fmts:
        path = folder / f"leaderboard.{FORMATS[fmt]}"
        path.write_text(_leaderboard_body(df, study, study_file, fmt))
        paths.append(path)
    if study.report.get("figures"):
        paths += all_figures(read_records(study.out).records, folder / "figures")
    if study.report.get("sensitivity"):
        from bioplaus_bench.grid import plan

        ids = {r.path.stem for r in plan(study.specs())[0]}
        for algo in study.algos:
            for task in study.tasks:
                sub = df[(df.algo == algo) & (df.task == task)]
                paths += sensitivity_report(sub, ids, list(study.grid), folder, f"sensitivity_{algo}_{task}")[1]
    return paths


def leaderboard_text(runs: str, fmt: str = "md") -> str:
    return render(load_records(runs), fmt)
