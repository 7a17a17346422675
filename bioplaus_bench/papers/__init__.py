"""Paper studies: the runs behind a published table or figure, and the table with published vs measured.

One module per study in this package (``lillicrap2016.py``, ``shibuya2023.py``, ``ernoult2022.py``), each
registering a ``Paper`` like a rule registers itself (a duplicate name is an error). A paper is a list of
cells, each a run description (``RunSpec``) plus the published number where one is known, the figures the
suite can make from its records, and ``findings``: sentences computed from the measured table (notes never
type a measured number). ``bench paper NAME`` resolves every cell for a budget, runs them through the grid
machinery (finished cells are skipped) and renders ``table_<budget>.md`` / ``.tex`` and the figures.

Budgets: ``full`` is the paper's (epochs, batch size, seeds; meant for a cluster). A study may add budgets of
its own (``Paper.budgets``: name -> epochs): such a budget runs only the figure cells, capped at that many
epochs, seed 0, and renders the figures without a table (e.g. ``shibuya2023``'s ``sensitivity``, a reduced
grid that fits two cores); with ``Paper.budget_cells = "all"`` it runs every cell so capped and renders the
table too, every measured value marked with the budget (e.g. ``jaderberg2017``'s ``short``: the paper's 500k
steps are a cluster job). ``smoke`` runs every
cell for one epoch of ``SMOKE_BATCHES`` small batches and one seed, with each rule's own ``smoke`` settings
(its registration: e.g. one feedback iteration per layer), so the whole study runs in minutes; tasks whose
files are absent (CIFAR, ImageNet32) are run on generated stand-ins in the official format, and their records
say ``data_generated``. Smoke numbers are not results: the tables say so.

Published values come from ``published-tables.md`` (Shibuya et al. 2023, Ernoult et al. 2022); a cell
whose published value is unknown says so.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import math
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bioplaus_bench.harness import RunSpec
from bioplaus_bench.registry import RegistryError, add_entry, get_algorithm

log = logging.getLogger(__name__)

BUDGETS = ("smoke", "full")
SMOKE_BATCHES = 3  # training batches per cell in a smoke run
SMOKE_BATCH_SIZE = 32
GENERATED_TASKS = ("cifar10", "cifar100", "imagenet32")  # stand-ins are generated for these when absent


@dataclass(frozen=True)
class Cell:
    """One table cell: a run description and the published number (None: not published or not known)."""

    row: str  # method label as in the paper
    col: str  # column label as in the paper
    run: RunSpec  # the paper's settings; the budget sets seed and out (and the smoke budget shrinks it)
    published: str | None = None  # as printed, e.g. "1.85 ± 0.09"
    metric: str = "error"  # error (100 - top-1 %) | acc (top-1 %) | top5 (%) | mse
    note: str = ""  # why a cell is as it is (e.g. an architecture that could not be identified)
    runnable: bool = True
    in_table: bool = True  # False: runs only for a figure (e.g. a sensitivity grid), not a row of the table
    comparable: bool = True  # False: the model is not the published one (the note says why): no difference


@dataclass(frozen=True)
class Paper:
    name: str
    title: str
    cells: tuple[Cell, ...]
    seeds: tuple[int, ...]  # full budget
    figures: Callable[[list[dict[str, Any]], Path], list[Path]] | None = None
    notes: str = ""  # settings and sources; never a measured number (those come from ``findings``)
    # sentences computed from the records: {(row, column): completed full-budget records of that cell} -> text
    findings: Callable[[dict[tuple[str, str], list[dict[str, Any]]]], str] | None = None
    # the study's own budgets, name -> epochs: only the figure cells (``in_table=False``), capped at that many
    # epochs, seed 0; rendered as figures only (None: no cells, only the experiment below)
    budgets: dict[str, int | None] = field(default_factory=dict)
    # what the study's own budgets run: "figure" (the figure cells only, no table) or "all" (every cell, capped
    # the same way, and the table, marked with the budget)
    budget_cells: str = "figure"
    # an experiment that is not a training run (e.g. feedback trained on a frozen network): called after the
    # cells as experiment(out, budget, render_only, workers, data_dir, figures_dir); runs what is missing (unless
    # render_only), keeps its records under ``out`` and returns the files it rendered into figures_dir
    experiment: Callable[[Path, str, bool, int, str | None, Path], list[Path]] | None = None

    def __post_init__(self) -> None:
        if self.budget_cells not in ("figure", "all"):
            raise RegistryError(f"paper {self.name}: budget_cells = {self.budget_cells!r}; accepted: figure, all")

    def budget_names(self) -> tuple[str, ...]:
        return (*BUDGETS, *self.budgets)

    def specs(self, budget: str, out: Path, run_fields: dict[str, Any] | None = None, rows: tuple[str, ...] = (),
              cols: tuple[str, ...] = ()) -> list[tuple[Cell, RunSpec]]:
        """The runs of every runnable cell (or of the cells whose row and column are among ``rows``/``cols``);
        ``run_fields`` (RunSpec fields given on the command line) apply to every run."""
        if budget not in self.budget_names():
            raise RegistryError(f"unknown budget {budget!r} for {self.name}; accepted: "
                                f"{', '.join(self.budget_names())}")
        for wanted, have, what in ((rows, {c.row for c in self.cells}, "row"),
                                   (cols, {c.col for c in self.cells}, "column")):
            bad = sorted(set(wanted) - have)
            if bad:
                raise RegistryError(f"unknown {what} {bad[0]!r} in {self.name}; accepted: {', '.join(sorted(have))}")
        out_specs = []
        for cell in self.cells:
            if not cell.runnable or (rows and cell.row not in rows) or (cols and cell.col not in cols):
                continue
            if budget in self.budgets:  # a study's own budget: figure cells only (or all), fewer epochs
                if cell.in_table and self.budget_cells == "figure":
                    continue
                run = dataclasses.replace(cell.run, epochs=min(cell.run.epochs, self.budgets[budget] or 0))
            else:
                run = budget_run(cell.run, budget)
            for seed in self.seeds if budget == "full" else (0,):
                spec = dataclasses.replace(run, seed=seed, out=str(out / "runs"), **(run_fields or {}))
                out_specs.append((cell, spec))
        return out_specs


def budget_run(run: RunSpec, budget: str) -> RunSpec:
    """A cell's run at a budget: the paper's settings (full), or one epoch of SMOKE_BATCHES small batches with
    the rule's own smoke settings (smoke; the angle, when the cell measures it, after every batch)."""
    if budget == "full":
        return run
    return dataclasses.replace(
        run, epochs=1, batch_size=SMOKE_BATCH_SIZE, max_batches=SMOKE_BATCHES,
        overrides={**run.overrides, **get_algorithm(run.algo).smoke},
        val_size=40 if run.task in GENERATED_TASKS else run.val_size, angle_every=1 if run.angle_every else 0)


PAPERS: dict[str, Paper] = {}


def register_paper(paper: Paper) -> Paper:
    """Register a study under its name (a duplicate name is an error, as for rules)."""
    add_entry(PAPERS, "paper", paper.name, paper)
    return paper


_loaded = False


def load_all() -> None:
    """Import every study module of this package (once)."""
    global _loaded
    if not _loaded:
        _loaded = True
        for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            if not mod.name.startswith("_"):
                importlib.import_module(f"{__name__}.{mod.name}")


def get_paper(name: str) -> Paper:
    load_all()
    if name not in PAPERS:
        from bioplaus_bench.registry import suggest

        raise RegistryError(f"unknown paper {name!r}; accepted: {', '.join(sorted(PAPERS))}{suggest(name, PAPERS)}")
    return PAPERS[name]


def prepare_data(specs: list[tuple[Cell, RunSpec]], out: Path, budget: str) -> list[tuple[Cell, RunSpec]]:
    """Smoke budget: CIFAR and ImageNet32 cells run on generated stand-ins in the official formats (written
    once into ``<out>/generated-data``), never on (or by downloading) the real files. Returns the specs to run."""
    from bioplaus_bench import generated

    if budget != "smoke":
        return specs
    gen_root = out / "generated-data"
    for task in sorted({s.task for _, s in specs if s.task in GENERATED_TASKS}):
        done = gen_root / f".{task}.written"
        if not done.exists():
            log.info("%s: writing generated stand-ins in the official format to %s", task, gen_root)
            generated.write(gen_root, task)
            done.touch()
    return [(c, dataclasses.replace(s, data_dir=str(gen_root)) if s.task in GENERATED_TASKS else s) for c, s in specs]


# ------------------------------------------------------------------------------------------- rendering

def _metric(rec: dict[str, Any], metric: str) -> float:
    f = rec.get("final", {})
    if metric == "error":
        return 100 * (1 - f.get("test_acc", math.nan))
    if metric == "acc":
        return 100 * f.get("test_acc", math.nan)
    if metric == "top5":
        return 100 * f.get("test_top5", math.nan)
    return f.get("test_loss", math.nan)


def _published_value(text: str | None) -> float:
    try:
        return float(str(text).split("±")[0].strip())
    except ValueError:
        return math.nan


def run(paper: Paper, budget: str, out: Path, opts: Any, run_fields: dict[str, Any] | None = None,
        render_only: bool = False, rows: tuple[str, ...] = (), cols: tuple[str, ...] = ()
        ) -> tuple[pd.DataFrame, list[Path], dict[str, Any]]:
    """Resolve the study, run what is missing through the grid machinery, render table and figures.
    ``rows``/``cols`` restrict what runs; the table always lists every cell (missing ones say so)."""
    from bioplaus_bench import grid as gridmod

    selected = paper.specs(budget, out, run_fields, rows, cols)
    if not render_only:
        selected = prepare_data(selected, out, budget)
    points, todo = gridmod.plan([s for _, s in selected])
    result = {} if render_only else gridmod.execute(points, todo, opts)
    df, cell_records = cell_table(paper, budget, out, run_fields)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    if budget in paper.budgets and paper.budget_cells == "figure":  # figure cells only: no table
        df = df.iloc[0:0]
    else:
        md, tex = out / f"table_{budget}.md", out / f"table_{budget}.tex"
        md.write_text(render_text(paper, budget, out, ".md", run_fields, (df, cell_records)))
        tex.write_text(render_text(paper, budget, out, ".tex", run_fields, (df, cell_records)))
        paths = [md, tex]
    paths += render_figures(paper, budget, out, out / f"figures_{budget}", cell_records, render_only,
                            getattr(opts, "max_parallel", 1) or 1, (run_fields or {}).get("data_dir"))
    return df, paths, result


def render_figures(paper: Paper, budget: str, out: Path, dest: Path,
                   cell_records: list[tuple[Cell, dict[str, Any]]] | None = None, render_only: bool = True,
                   workers: int = 1, data_dir: str | None = None) -> list[Path]:
    """The study's figures (and their markdown summaries) for a budget from the records in ``out``, into ``dest``;
    the study's experiment runs what it lacks unless ``render_only``."""
    if cell_records is None:
        cell_records = cell_table(paper, budget, out)[1]
    paths = []
    real = [r for _, r in cell_records if not r.get("data_generated")]  # figures show real data only
    if paper.figures is not None and real:
        paths += paper.figures(real, dest)
    if paper.experiment is not None:
        paths += paper.experiment(out, budget, render_only, workers, data_dir, dest)
    return paths


def cell_table(paper: Paper, budget: str, out: Path, run_fields: dict[str, Any] | None = None
               ) -> tuple[pd.DataFrame, list[tuple[Cell, dict[str, Any]]]]:
    """The table of every cell from the records in ``out/runs``, and (cell, record) for every record found
    (figure-only cells too)."""
    from bioplaus_bench.harness import resolve
    from bioplaus_bench.records import read_record

    resolved = [(cell, resolve(spec)) for cell, spec in paper.specs(budget, out, run_fields)]
    records, unreadable = [], []
    for cell, r in resolved:
        rec, why = read_record(r.path) if r.path.exists() else (None, None)
        if rec is not None:
            records.append((cell, rec))
        elif why:  # skipped, and counted in the cell's "excluded", like any record that is not a result
            log.warning("skipped %s: %s", r.path, why)
            unreadable.append((cell, why))
    return table(paper, records, budget, unreadable), records


def render_text(paper: Paper, budget: str, out: Path, suffix: str, run_fields: dict[str, Any] | None = None,
                computed: tuple[pd.DataFrame, list[tuple[Cell, dict[str, Any]]]] | None = None) -> str:
    """The table file's text (``.md`` or ``.tex``) as the records in ``out/runs`` give it now (``computed``: the
    ``cell_table`` result when the caller already has it)."""
    from bioplaus_bench.report import latex, markdown

    df, cell_records = computed or cell_table(paper, budget, out, run_fields)
    cmd = f"bench paper {paper.name} --budget {budget}"
    if suffix == ".tex":
        from bioplaus_bench.plots import conditions

        real = [r for _, r in cell_records if r.get("status") == "completed" and not r.get("data_generated")]
        where = f"; {conditions(real)}" if real else ""
        return f"% regenerate: {cmd}\n" + latex(df, f"{paper.title}; budget {budget}{where}")
    metric_names = {"error": "test error (%)", "acc": "test accuracy (%)", "top5": "top-5 accuracy (%)",
                    "mse": "test MSE"}
    head = (f"# {paper.title}\n\nBudget: **{budget}**"
            + (" (tiny: these numbers only prove the cells run; they are not results)" if budget == "smoke" else "")
            + f". Metrics: {', '.join(sorted({metric_names[m] for m in df.metric}))}. "
            "Measured: mean ± std over n seeds (± only for n >= 2); diverged and failed runs are excluded and "
            "counted. Difference = measured - published. 'stale' marks records made by code other than today's; "
            "'(loaded)' a time taken while other work shared the machine, '(k vs BP's m threads)' one taken with "
            "another number of torch threads than the table's BP cells (the ratio then compares unlike conditions). "
            f"Regenerate with `{cmd}`.\n\n" + (paper.notes + "\n\n" if paper.notes else ""))
    found = ""
    if paper.findings is not None and budget == "full":
        done: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for cell, rec in cell_records:
            if rec.get("status") == "completed" and not rec.get("data_generated"):
                done.setdefault((cell.row, cell.col), []).append(rec)
        found = paper.findings(done)
    return head + markdown(df) + "\n" + (f"\nFrom the records above: {found}\n" if found else "")


def _threads(recs: list[dict[str, Any]]) -> set[Any]:
    return {(r.get("env") or {}).get("torch_threads") for r in recs}


def table(paper: Paper, cell_records: list[tuple[Cell, dict[str, Any]]], budget: str,
          unreadable: list[tuple[Cell, str]] = ()) -> pd.DataFrame:
    """One row per cell: published, measured mean ± std (n seeds), difference, time per epoch vs BP."""
    from bioplaus_bench.records import RecordScan
    from bioplaus_bench.report import frame

    runs: dict[int, list[dict[str, Any]]] = {}  # id(cell) -> its completed records
    excluded: dict[int, list[str]] = {}
    for cell, rec in cell_records:
        # a run on generated data is never a result, whatever its status: the cell says so (below)
        if rec.get("status") == "completed" or (rec.get("data_generated") and rec.get("status") == "collapsed"):
            runs.setdefault(id(cell), []).append(rec)
        elif rec.get("status") in ("diverged", "collapsed", "failed", "interrupted"):
            excluded.setdefault(id(cell), []).append(rec["status"])
    for cell, why in unreadable:
        excluded.setdefault(id(cell), []).append(f"unreadable record ({why})")
    # the table's own BP per (task, arch): mean seconds per epoch, its torch threads, whether it was timed loaded
    bp: dict[tuple[str, str], tuple[float, set[Any], bool]] = {}
    for cell in paper.cells:
        recs = runs.get(id(cell), [])
        if cell.run.algo == "bp" and recs and cell.in_table:  # not a figure's BP runs
            bp[(cell.run.task, recs[0]["config"]["arch"])] = (
                float(np.mean([r["final"]["epoch_seconds"] for r in recs])), _threads(recs),
                bool(frame(RecordScan(records=recs)).contended.any()))
    rows = []
    for cell in paper.cells:
        if not cell.in_table:
            continue
        recs = runs.get(id(cell), [])
        pub = cell.published if cell.published is not None else "not published / not known"
        row = {"method": cell.row, "column": cell.col, "metric": cell.metric, "published": pub,
               "measured": "", "difference": "", "train acc (%)": "", "time vs BP": "", "note": cell.note}
        if not cell.runnable:
            row["measured"] = "not run"
        elif not recs:
            row["measured"] = "missing"
        elif any(r.get("data_generated") for r in recs):
            row["measured"] = "ran on generated data (not a result)"
        else:
            vals = np.array([_metric(r, cell.metric) for r in recs])
            fmt = ".3g" if cell.metric == "mse" else ".2f"
            row["measured"] = f"{vals.mean():{fmt}}" + (f" ± {vals.std(ddof=1):{fmt}}" if len(vals) > 1 else "") \
                + f" (n={len(vals)})"
            if budget != "full":
                row["measured"] += f" [{budget} budget]"
            scan = frame(RecordScan(records=recs))
            stale = int(scan.stale.sum())
            if stale:
                row["measured"] += f" [stale {stale}/{len(vals)}]"
            pv = _published_value(cell.published)
            if math.isfinite(pv) and budget == "full" and cell.comparable:  # a shorter run is not comparable
                row["difference"] = f"{vals.mean() - pv:+.2f}"
            train = [r["curves"]["train_acc"][-1] for r in recs if r.get("curves", {}).get("train_acc")]
            if train and all(t is not None for t in train):  # last epoch: tells underfitting from overfitting
                lo, hi = f"{100 * min(train):.1f}", f"{100 * max(train):.1f}"
                row["train acc (%)"] = lo if lo == hi else f"{lo}-{hi}"
            key = (cell.run.task, recs[0]["config"]["arch"])
            if key in bp:
                bp_seconds, bp_threads, bp_loaded = bp[key]
                row["time vs BP"] = f"{np.mean([r['final']['epoch_seconds'] for r in recs]) / bp_seconds:.2f}x"
                if scan.contended.any() or bp_loaded:
                    row["time vs BP"] += " (loaded)"  # timed while other work shared the machine
                threads = _threads(recs)
                if threads != bp_threads:  # not the same conditions: say so beside the ratio
                    row["time vs BP"] += (f" ({'/'.join(map(str, sorted(threads)))} vs BP's "
                                          f"{'/'.join(map(str, sorted(bp_threads)))} threads)")
        if excluded.get(id(cell)):
            row["measured"] += f" (excluded: {', '.join(excluded[id(cell)])})"
        rows.append(row)
    return pd.DataFrame(rows)
