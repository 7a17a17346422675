"""The claims index: every number the README, docstrings and tables quote, tied to the records behind it.

``results/claims.toml`` lists the claims. Each ``[[claim]]`` is one of:

* a **measured** number: ``quote`` (as written), ``where`` (files that quote it; the check finds the quote in
  each), ``records`` (a folder of run records), ``select`` (column = value filters on ``load_records``; the
  value ``"defaults"`` of ``config`` picks records whose rule hyperparameters are the rule's defaults),
  ``metric`` (a ``load_records`` column), ``stat`` (mean | min | max | std | value: exactly one record),
  ``scale`` (100 for percentages) and ``digits``; plus ``command``, the command that made the records.
  The check recomputes the statistic from the completed records and compares it, rounded, with the quote.
* a **published** or **measured-once** number (a paper's value, a wall-clock duration): ``quote``, ``where`` and
  ``source``, the reference file or committed measurement log that must contain it.
* a **table**: ``table`` (a committed file) and ``command``; the check regenerates it from the records and
  compares the text (a leaderboard's markdown, a paper study's table, or the markdown summary beside a paper's
  figures, ``results/papers/<name>/figures_<budget>/<figure>.md``).

``bench claims`` writes ``results/CLAIMS.md``; ``bench claims --check`` exits 1 on any mismatch, missing
record or missing quote.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bioplaus_bench.config import check_keys, read_toml
from bioplaus_bench.registry import RegistryError

CLAIMS_FILE = Path("results/claims.toml")
STATS = ("mean", "min", "max", "std", "value")


@dataclass
class Claim:
    quote: str = ""  # the number exactly as the text writes it (without the unit)
    what: str = ""  # what the number is, in words
    where: list[str] = field(default_factory=list)  # files that quote it
    records: str = ""  # folder of the run records behind it
    select: dict[str, Any] = field(default_factory=dict)  # load_records column = value filters
    metric: str = "test_acc"  # load_records column
    stat: str = "mean"  # mean | min | max | std | value
    scale: float = 100.0  # multiplier before rounding (100: fractions -> %)
    digits: int = 2  # decimals of the quote
    command: str = ""  # the command that made the records (or the table)
    source: str = ""  # published numbers: the reference file that holds it
    table: str = ""  # tables: the committed file that must equal a fresh rendering


@dataclass
class Outcome:
    claim: Claim
    ok: bool
    value: str  # recomputed (or "-")
    n: int
    detail: str


def load(path: Path = CLAIMS_FILE) -> list[Claim]:
    out = []
    for i, item in enumerate(read_toml(path, "claims file").get("claim", []), 1):
        check_keys(item, Claim, f"claim {i} of {path}")
        c = Claim(**item)
        if c.stat not in STATS:
            raise RegistryError(f"claim {i} of {path}: bad stat {c.stat!r}; accepted: {', '.join(STATS)}")
        out.append(c)
    return out


def _select(df: Any, select: dict[str, Any]) -> Any:
    from bioplaus_bench.report import rule_defaults

    for key, want in select.items():
        if key == "config" and want == "defaults":
            keep = [all(json.loads(k).get("hparams", {}).get(h) == v for h, v in (rule_defaults(a) or {}).items())
                    for k, a in zip(df.config_key, df.algo, strict=True)]
            df = df[keep]
        elif key not in df.columns:
            return df.iloc[0:0]
        elif isinstance(want, list):
            df = df[df[key].isin(want)]
        else:
            df = df[df[key] == want]
    return df


def check_one(c: Claim, root: Path) -> Outcome:
    for w in c.where:
        path = root / w
        if not path.exists() or c.quote not in path.read_text():
            return Outcome(c, False, "-", 0, f"quote {c.quote!r} not found in {w}")
    if c.table:
        fresh = render_table(c, root)
        committed = (root / c.table).read_text() if (root / c.table).exists() else None
        if committed is None:
            return Outcome(c, False, "-", 0, f"{c.table} is missing")
        return Outcome(c, fresh == committed, "-", 0, "matches a fresh rendering" if fresh == committed else
                       f"{c.table} differs from a fresh rendering of its records: rerun `{c.command}`")
    if c.source:
        src = (root / c.source).resolve()
        if not src.exists():
            return Outcome(c, False, "-", 0, f"source {c.source} not found")
        ok = c.quote in src.read_text()
        return Outcome(c, ok, c.quote if ok else "-", 0, f"as written in {c.source}" if ok else f"not in {c.source}")
    from bioplaus_bench.report import load_records, usable

    folder = root / c.records
    if not c.records or not folder.exists():
        return Outcome(c, False, "-", 0, f"records folder {c.records!r} is missing")
    df = load_records(folder)
    df = _select(df[usable(df)], c.select) if not df.empty else df
    if df.empty or c.metric not in df.columns:
        return Outcome(c, False, "-", 0, f"no completed record in {c.records} matches {c.select}")
    vals = df[c.metric].to_numpy(dtype=float)
    if c.stat == "value" and len(vals) != 1:
        return Outcome(c, False, "-", len(vals), f"stat 'value' needs exactly one record, {len(vals)} match")
    if c.stat == "std" and len(vals) < 2:
        return Outcome(c, False, "-", len(vals), "a std needs two records or more")
    v = {"mean": np.mean, "min": np.min, "max": np.max, "value": np.mean,
         "std": lambda x: np.std(x, ddof=1)}[c.stat](vals) * c.scale
    got = f"{v:.{c.digits}f}" if math.isfinite(v) else "nan"
    stale = int(df.stale.sum())
    detail = f"{len(vals)} record(s)" + (f", {stale} made by older code" if stale else "")
    return Outcome(c, got == c.quote, got, len(vals), detail if got == c.quote else f"recomputed {got}; {detail}")


def render_table(c: Claim, root: Path) -> str:
    """A fresh rendering of a committed table from its records (leaderboards and paper tables)."""
    from bioplaus_bench import papers
    from bioplaus_bench.report import render_leaderboard_file

    path = root / c.table
    if path.name.startswith("leaderboard."):
        return render_leaderboard_file(path)
    if path.parent.name.startswith("figures_"):  # a paper figure's summary: render the figures anew elsewhere
        import tempfile

        study = path.parent.parent
        with tempfile.TemporaryDirectory() as tmp:
            papers.render_figures(papers.get_paper(study.name), path.parent.name.removeprefix("figures_"), study,
                                  Path(tmp))
            fresh = Path(tmp) / path.name
            return fresh.read_text() if fresh.exists() else ""
    name, budget = path.parent.name, path.stem.removeprefix("table_").split(".")[0]
    return papers.render_text(papers.get_paper(name), budget, path.parent, path.suffix)


def check(root: Path = Path("."), path: Path = CLAIMS_FILE) -> list[Outcome]:
    return [check_one(c, root) for c in load(root / path)]


def markdown_index(outcomes: list[Outcome]) -> str:
    import pandas as pd

    from bioplaus_bench.report import markdown

    rows = [{"quoted": o.claim.quote or "(table)", "what": o.claim.what or o.claim.table,
             "where": ", ".join(o.claim.where) or o.claim.table,
             "records": o.claim.records or o.claim.source or o.claim.table,
             "recomputed": o.value, "n": o.n or "", "check": "ok" if o.ok else "FAIL: " + o.detail,
             "command": f"`{o.claim.command}`" if o.claim.command else ""} for o in outcomes]
    return ("# Claims index\n\nEvery number the README, the rules' docstrings and the committed tables quote, the "
            "records behind it and the command that made them. Generated by `bench claims` from "
            "`results/claims.toml`; `bench claims --check` recomputes each from the records and fails on any "
            "mismatch or missing record.\n\n" + markdown(pd.DataFrame(rows)) + "\n")
