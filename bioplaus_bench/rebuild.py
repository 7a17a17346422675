"""``bench rebuild``: every artefact under results/ from its committed study file, in one command.

``results/rebuild.toml`` lists the steps in order. Each ``[[step]]`` has a ``name`` and one of:

* ``study = "path/study.toml"``: ``bench grid --study`` (finished points skipped) and the study's report;
* ``paper = "NAME"`` with ``budget`` (and optional ``rows`` / ``cols``): ``bench paper``;
* ``command = "..."`` with ``output``: a benchmark script whose standard output becomes ``output``
  (timings: run it on a quiet machine);
* ``claims = true``: the claims index (``bench claims``).

A step with ``quiet = true`` measures time: before it starts, the rebuild waits until the one-minute load average
is below ``QUIET_LOAD`` (what the steps before it left behind decays within a minute or two), for at most
``QUIET_TIMEOUT_S``; if the machine stays busy it goes on with a warning, and the step's output records its load.

``--dry-run`` lists each step's finished and missing runs, with an estimate of the time the missing ones take:
epochs x the mean epoch time of completed records of the same rule, task, architecture and batch size
anywhere under results/ (counted as unknown where there is none), divided by the step's ``max_parallel``;
evaluation and start-up are not counted.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bioplaus_bench.config import check_keys, read_toml
from bioplaus_bench.registry import RegistryError

log = logging.getLogger(__name__)

QUIET_LOAD = 0.5  # one-minute load average under which a timing step starts (2 cores here: a quarter of them)
QUIET_TIMEOUT_S = 600.0  # longest wait for it


@dataclass
class Step:
    name: str
    study: str = ""  # a study TOML file
    paper: str = ""  # a paper study's name
    budget: str = "full"
    rows: list[str] = field(default_factory=list)
    cols: list[str] = field(default_factory=list)
    max_parallel: int = 1
    command: str = ""  # a script whose stdout is written to ``output``
    output: str = ""
    claims: bool = False
    note: str = ""  # shown by --dry-run (e.g. "needs a GPU")
    quiet: bool = False  # a timing step: wait for a quiet machine (load average below QUIET_LOAD) before it


def load(path: Path) -> list[Step]:
    steps = []
    for i, item in enumerate(read_toml(path, "rebuild plan").get("step", []), 1):
        check_keys(item, Step, f"step {i} of {path}")
        if "name" not in item:
            raise RegistryError(f"step {i} of {path} needs a name")
        step = Step(**item)
        if sum(bool(x) for x in (step.study, step.paper, step.command, step.claims)) != 1:
            raise RegistryError(f"step {step.name!r} of {path}: give exactly one of study, paper, command, claims")
        steps.append(step)
    return steps


def _specs(step: Step) -> list[Any]:
    from bioplaus_bench import grid as gridmod
    from bioplaus_bench import papers

    if step.study:
        return gridmod.load_study(step.study)[0].specs()
    paper = papers.get_paper(step.paper)
    return [s for _, s in paper.specs(step.budget, Path("results/papers") / step.paper, None, tuple(step.rows),
                                      tuple(step.cols))]


def _epoch_times() -> dict[tuple, float]:
    from bioplaus_bench.report import load_records, usable

    df = load_records("results")
    if df.empty:
        return {}
    ok = df[usable(df)]
    return ok.groupby(["algo", "task", "arch", "batch_size"]).epoch_seconds.mean().to_dict()


def describe(steps: list[Step], scratch: bool = False) -> list[str]:
    """One line per step: what it runs, how many runs are finished (and of those, made by older code) and
    missing, and the estimated time of the missing ones (of all of them with ``scratch``)."""
    from bioplaus_bench import grid as gridmod
    from bioplaus_bench.records import is_stale, read_record

    times = _epoch_times()
    lines, total, unknown = [], 0.0, 0
    for step in steps:
        waits = f"; waits for load < {QUIET_LOAD}" if step.quiet else ""
        if step.command or step.claims:
            what = step.command or "bench claims"
            lines.append(f"{step.name}: {what}" + (f" > {step.output}" if step.output else "")
                         + (f" ({step.note})" if step.note else "") + waits)
            continue
        points, todo = gridmod.plan(_specs(step))
        done = [rec for r in points if r not in todo and (rec := read_record(r.path)[0])]
        stale = sum(is_stale(rec) for rec in done)
        secs, missing = 0.0, 0
        for r in points if scratch else todo:
            c = r.config
            t = times.get((c["algo"], c["task"], c["arch"], c["batch_size"]))
            if t is None:
                missing += 1
            else:
                secs += t * c["epochs"]
        secs /= step.max_parallel  # runs side by side (each was timed that way, too)
        total += secs
        unknown += missing
        est = f"~{_dur(secs)}" + (f" + {missing} run(s) of unknown time" if missing else "")
        lines.append(f"{step.name}: {len(points)} runs, {len(points) - len(todo)} finished ({stale} by older code), "
                     f"{len(todo)} to run; {'all' if scratch else 'missing'}: {est}"
                     + (f"; {step.note}" if step.note else "") + waits)
    lines.append(f"total for the {'all' if scratch else 'missing'} runs: ~{_dur(total)} of training at the "
                 "recorded epoch times" + (f", plus {unknown} run(s) of unknown time" if unknown else ""))
    return lines


def _dur(secs: float) -> str:
    return f"{secs / 3600:.1f} h" if secs >= 3600 else f"{secs / 60:.0f} min"


def set_aside_stale(step: Step, every: bool = False) -> int:
    """Move the step's finished records that other code made (with ``every``: all its finished records) to
    ``<run id>.superseded-<time>.json`` (kept, and never averaged), so that the step reruns them with today's
    code. Returns how many."""
    from bioplaus_bench import grid as gridmod
    from bioplaus_bench.records import FINISHED, is_stale, read_record, set_aside_for_rerun

    moved = 0
    for r in gridmod.plan(_specs(step))[0]:
        rec = read_record(r.path)[0] if r.path.exists() else None
        if rec and rec["status"] in FINISHED and (every or is_stale(rec)):
            set_aside_for_rerun(r.path)  # linked: a rerun that dies puts it back
            moved += 1
    return moved


def wait_for_quiet(limit: float = QUIET_LOAD, timeout_s: float = QUIET_TIMEOUT_S, poll_s: float = 10.0) -> bool:
    """Wait until the one-minute load average is below ``limit``; False (after a warning) when it is still not
    after ``timeout_s``, or when the platform has no load average."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            load = os.getloadavg()[0]
        except OSError:
            log.warning("no load average on this platform: the timing step starts without waiting for quiet")
            return False
        if load < limit:
            return True
        if time.monotonic() >= deadline:
            log.warning("load average still %.2f (>= %.2f) after %.0f s: timing on a busy machine", load, limit,
                        timeout_s)
            return False
        log.info("waiting for a quiet machine: load average %.2f, starting below %.2f", load, limit)
        time.sleep(poll_s)


def execute(steps: list[Step], refresh_stale: bool = False, rerun: bool = False) -> None:
    """Run the steps in order. ``refresh_stale`` reruns the finished records that other code made; ``rerun``
    reruns every finished record (one sitting, e.g. to retime a leaderboard whose records were timed on
    different days); either keeps each old record as ``<run id>.superseded-<time>.json``."""
    from bioplaus_bench import grid as gridmod
    from bioplaus_bench import papers

    for step in steps:
        log.info("rebuild step %s", step.name)
        if step.quiet:
            wait_for_quiet()
        if (refresh_stale or rerun) and (step.study or step.paper):
            log.info("%s: %d record(s) %sset aside to be rerun", step.name, set_aside_stale(step, rerun),
                     "" if rerun else "made by other code ")
        if step.study:
            study, ex = gridmod.load_study(step.study)
            points, todo = gridmod.plan(study.specs())
            gridmod.execute(points, todo, gridmod.ExecutorOptions(**ex))
            if study.report:
                from bioplaus_bench.report import write_study_report

                write_study_report(study, Path(step.study))
        elif step.paper:
            opts = gridmod.ExecutorOptions(max_parallel=step.max_parallel)
            papers.run(papers.get_paper(step.paper), step.budget, Path("results/papers") / step.paper, opts,
                       rows=tuple(step.rows), cols=tuple(step.cols))
        elif step.command:
            res = subprocess.run([sys.executable, *shlex.split(step.command)[1:]] if step.command.startswith(
                "python ") else shlex.split(step.command), capture_output=True, text=True, check=False)
            if res.returncode != 0:
                raise RegistryError(f"step {step.name}: `{step.command}` exited {res.returncode}: "
                                    f"{res.stderr.strip().splitlines()[-1:]}")
            Path(step.output).write_text(f"$ {step.command}\n{res.stdout}")
        else:
            from bioplaus_bench import claims

            Path("results/CLAIMS.md").write_text(claims.markdown_index(claims.check()))
