"""Grids of runs: expand a study into run specs, skip finished points, execute the rest, report status.

A grid lives in one output folder. Every point writes its own run record there, named by the hash of its
resolved config (``records.record_name``), so a re-run skips completed points and only executes what is
missing or failed. Each point checkpoints after every epoch (``RunSpec.checkpoint``) and resumes from that
checkpoint when it runs again, whether it was killed, cancelled or requeued after a SLURM timeout.

Executors:
* ``local`` (default): one subprocess per point, at most ``max_parallel`` at once, the cores split
  between them; a point that dies (even by SIGKILL) gets a failed record and the others go on.
* ``slurm``: one submitit job array; ``GridPoint.checkpoint`` is submitit's checkpointing hook, so a job
  that reaches its time limit or is preempted is requeued and resumes from its last epoch checkpoint.
* ``debug``: in this process, one point after another (for debuggers and tests).

``grid.json`` in the folder lists the points and the jobs that ran them; ``bench status`` reads it.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import fcntl
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bioplaus_bench.config import check_keys, read_toml
from bioplaus_bench.harness import Resolved, RunSpec, mark_failed, resolve, train
from bioplaus_bench.records import (
    FINISHED,
    LIVE_SLURM,
    is_stale,
    read_record,
    record_status,
    recover,
    repro,
    repro_differs,
    run_is_dead,
    write_json_atomic,
)
from bioplaus_bench.registry import RegistryError

log = logging.getLogger(__name__)

EXECUTORS = ("local", "slurm", "debug")
REPORT_EVERY = 60.0  # seconds between the local executor's "running: point epoch k/N" lines
MANIFEST = "grid.json"


@dataclass
class ExecutorOptions:
    name: str = "local"  # local (this machine) | slurm (one job array through submitit) | debug (in this process)
    partition: str | None = None  # SLURM partition (default: the cluster's)
    timeout_min: int = 60  # SLURM time limit per job, minutes; a timed-out job is requeued and resumes
    cpus_per_task: int | None = None  # CPU threads per point (default: local = cores / max parallel, slurm = 1)
    gpus_per_node: int = 0  # GPUs per SLURM job
    mem_gb: float | None = None  # memory per SLURM job in GB (default: the cluster's DefMemPerCPU)
    max_parallel: int = 1  # points running at once (local) / the job array's parallelism (slurm)
    wait: bool = True  # slurm: wait for the array to finish (local and debug always wait)

    def __post_init__(self) -> None:
        if self.name not in EXECUTORS:
            raise RegistryError(f"unknown executor {self.name!r}; accepted: {', '.join(EXECUTORS)}")
        if self.max_parallel < 1:
            raise RegistryError(f"max_parallel must be >= 1, got {self.max_parallel}")
        if self.cpus_per_task is not None and self.cpus_per_task < 1:
            raise RegistryError(f"cpus_per_task must be >= 1, got {self.cpus_per_task}")

    def point_threads(self) -> int:
        """The torch threads each point gets: SLURM its CPUs per task (default 1), local the cores split between
        the points running at once, debug this process's."""
        if self.name == "slurm":
            return self.cpus_per_task or 1
        if self.name == "local":
            return self.cpus_per_task or max(1, (os.cpu_count() or 1) // self.max_parallel)
        import torch

        return torch.get_num_threads()


# RunSpec fields a study fixes for every point (algo, task and seed vary per point; its [set] table is `overrides`)
STUDY_RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunSpec)
                         if f.name not in ("algo", "task", "seed", "overrides", "checkpoint", "progress"))


@dataclass
class Study:
    """A grid: one run description (``run``: RunSpec fields shared by every point) times algos x tasks x seeds x
    the product of the ``grid`` axes."""

    algos: list[str]
    tasks: list[str]
    seeds: list[int] = field(default_factory=lambda: [0])
    grid: dict[str, list[str]] = field(default_factory=dict)  # hyperparameter axes
    run: dict[str, Any] = field(default_factory=dict)  # RunSpec fields for every point; "overrides" = [set]
    name: str = "grid"
    # outputs written beside the study file after the grid: leaderboard = ["md", "csv", "latex"], figures = true
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def out(self) -> str:
        return self.run.get("out", "runs/grid")

    def specs(self) -> list[RunSpec]:
        axes = list(self.grid)
        fixed = {"out": self.out, **{k: v for k, v in self.run.items() if k != "overrides"}}
        out = []
        for algo, task, point, seed in itertools.product(self.algos, self.tasks,
                                                         itertools.product(*self.grid.values()), self.seeds):
            over = {**self.run.get("overrides", {}), **{k: str(v) for k, v in zip(axes, point, strict=True)}}
            out.append(RunSpec(algo=algo, task=task, seed=int(seed), overrides=over, **fixed))
        return out


STUDY_KEYS = {"algos", "tasks", "seeds", "grid", "name", "report", "set", "executor", *STUDY_RUN_FIELDS}


def load_study(path: str | os.PathLike) -> tuple[Study, dict[str, Any]]:
    """Read a study TOML file: ``algos``, ``tasks``, ``seeds``, ``name`` and any RunSpec field (``arch``,
    ``epochs``, ``device``, ...) at top level, and the ``[grid]``, ``[set]``, ``[report]`` and ``[executor]``
    tables. Returns the study and the executor table (CLI flags override it)."""
    p = Path(path)
    raw = read_toml(p, "study file")
    bad = sorted(set(raw) - STUDY_KEYS)
    if bad:
        raise RegistryError(f"unknown key(s) {', '.join(bad)} in {p}; accepted: {', '.join(sorted(STUDY_KEYS))}")
    executor = raw.pop("executor", {})
    if not isinstance(executor, dict):
        raise RegistryError(f"bad value {executor!r} for executor in {p}; accepted: a table [executor]")
    check_keys(executor, ExecutorOptions, f"[executor] of {p}")
    for key in ("algos", "tasks"):
        if key not in raw:
            raise RegistryError(f"study file {p} needs a {key!r} list")
    for key, one in (("algos", str), ("tasks", str), ("seeds", int)):  # a single value stands for a list of one
        if isinstance(raw.get(key), one) and not isinstance(raw[key], bool):
            raw[key] = [raw[key]]
        if raw.get(key) == []:
            raise RegistryError(f"{key} = [] in {p} leaves the grid empty; accepted: a list of at least one "
                                + ("integer" if key == "seeds" else "name"))
    for key, values in (raw.get("grid") or {}).items() if isinstance(raw.get("grid"), dict) else ():
        if values == []:
            raise RegistryError(f"grid axis {key} = [] in {p} leaves the grid empty; accepted: at least one value")
    _check_types({k: v for k, v in raw.items() if k not in STUDY_RUN_FIELDS}, p, Study)
    _check_types({k: v for k, v in raw.items() if k in STUDY_RUN_FIELDS}, p, RunSpec)
    _check_types(executor, p, ExecutorOptions, "[executor] ")
    from bioplaus_bench.report import REPORT_KEYS

    bad = sorted(set(raw.get("report", {})) - set(REPORT_KEYS))
    if bad:
        raise RegistryError(f"unknown [report] key(s) {', '.join(bad)} in {p}; accepted: {', '.join(REPORT_KEYS)}")
    run = {k: raw.pop(k) for k in STUDY_RUN_FIELDS if k in raw}
    run["overrides"] = {k: ",".join(map(str, v)) if isinstance(v, list) else str(v)
                        for k, v in raw.pop("set", {}).items()}
    raw["grid"] = {k: [str(v) for v in (vs if isinstance(vs, list) else [vs])] for k, vs in raw.get("grid", {}).items()}
    return Study(run=run, **raw), executor


_SCALAR = (str, int, float, bool)


def _check_types(raw: dict[str, Any], path: Path, cls: type | None = None, where: str = "") -> None:
    """Each study-file value against its field's type, before anything runs: one line naming the key."""
    hints = {f.name: str(f.type) for f in dataclasses.fields(cls or Study)} | {"set": "dict"}
    for key, value in raw.items():
        tp = hints.get(key, "")
        if tp.startswith("list[str]"):
            ok = isinstance(value, list) and all(isinstance(v, str) and v for v in value)
            want = "a list of names"
        elif tp.startswith("list[int]"):
            ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            want = "a list of integers"
        elif tp.startswith("dict"):
            ok = isinstance(value, dict) and all(isinstance(v, _SCALAR) or (isinstance(v, list) and v and all(
                isinstance(x, _SCALAR) for x in v)) for v in value.values())
            want = "a table of key = value (or list of values)"
        elif tp.startswith("int"):
            ok = (isinstance(value, int) and not isinstance(value, bool)) or (value is None and "None" in tp)
            want = "an integer"
        elif tp.startswith("float"):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            want = "a number"
        elif tp.startswith("bool"):
            ok, want = isinstance(value, bool), "true or false"
        elif tp.startswith("str"):
            ok, want = isinstance(value, str), "a string"
        else:
            continue
        if not ok:
            raise RegistryError(f"bad value {value!r} for {where}{key} in {path}; accepted: {want}")


# --------------------------------------------------------------------------------------------- planning

def plan(specs: list[RunSpec]) -> tuple[list[Resolved], list[Resolved]]:
    """Resolve every point first (a bad name or key fails the whole grid before any work), then split them
    into (all points, points still to run). Completed records are skipped; failed or missing ones rerun."""
    resolved, seen = [], set()
    for spec in specs:
        spec.checkpoint, spec.progress = True, False
        r = resolve(spec)
        if r.path in seen:  # the same config twice (e.g. a seed listed twice) runs once
            continue
        seen.add(r.path)
        resolved.append(r)
    todo = [r for r in resolved if record_status(r.path) not in FINISHED]
    return resolved, todo


def _spec_dict(spec: RunSpec) -> dict[str, Any]:
    return dataclasses.asdict(spec)


def _update_manifest(out: Path, points: list[Resolved], jobs: dict[str, dict[str, Any]]) -> None:
    path = out / MANIFEST
    manifest = _read_manifest(path) or {"points": {}, "jobs": {}}
    for r in points:
        manifest["points"][r.path.stem] = _spec_dict(r.spec)
    manifest["jobs"].update(jobs)
    write_json_atomic(path, manifest)


def _read_manifest(path: Path) -> dict[str, Any] | None:
    """The grid manifest, or None (with a warning) when it is missing or unreadable."""
    if not path.exists():
        return None
    try:
        m = json.loads(path.read_text())
        if isinstance(m, dict) and isinstance(m.get("points"), dict) and isinstance(m.get("jobs", {}), dict):
            return m
    except (OSError, UnicodeDecodeError, ValueError):
        pass
    log.warning("%s is unreadable; the grid's points are taken from the records in %s", path, path.parent)
    return None


# --------------------------------------------------------------------------------------------- execution

class GridLocked(RuntimeError):
    """Another grid is running on the same folder."""


@contextlib.contextmanager
def folder_lock(out: Path):
    """One grid at a time per output folder: a second one refuses at once, naming the holder."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / ".grid.lock"
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            raise GridLocked(f"another bench grid (pid {holder}) is running on {out}; wait for it to finish or "
                             "use another --out") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)


def _die_with_parent() -> None:  # runs in the worker before exec: SIGTERM it when the grid process dies
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1

class Terminated(Exception):
    """SIGTERM reached a grid point: scancel, preemption or shutdown."""


_PARENT = os.getppid()  # the process that started this one (the local grid, for its workers)


def _on_sigterm(signum: int, frame: Any) -> None:
    if os.getppid() != _PARENT and not os.environ.get("SLURM_JOB_ID"):  # the death signal of our grid
        raise Terminated("the bench grid that started this point ended (killed or interrupted); rerun the grid to "
                         "resume from the last epoch checkpoint")
    raise Terminated("received SIGTERM (scancel, preemption or shutdown); rerun the grid to resume from the "
                     "last epoch checkpoint")


class GridPoint:
    """The callable a SLURM job runs. ``checkpoint`` is submitit's hook, called on timeout (USR2 before the
    time limit): it requeues the same point, which resumes from the epoch checkpoint on disk."""

    def __call__(self, spec: dict[str, Any]) -> str:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        # submitit ignores SIGTERM; we stop at once instead, writing a failed record, so that a cancelled
        # job never keeps training (and writing checkpoints) beside the rerun that resumes it
        signal.signal(signal.SIGTERM, _on_sigterm)
        rec = train(RunSpec(**spec))
        return rec["status"]

    def checkpoint(self, spec: dict[str, Any]) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(GridPoint(), spec)


def execute(points: list[Resolved], todo: list[Resolved], opts: ExecutorOptions) -> dict[str, Any]:
    """Run ``todo`` with the chosen executor and return {run_id: status}. Never raises for a failing point."""
    if not points:
        return {}
    out = points[0].path.parent
    with folder_lock(out):
        todo = [r for r in todo if record_status(r.path) not in FINISHED]  # finished while we waited to start
        _update_manifest(out, points, {})
        if not todo:
            log.info("all %d grid points are finished; nothing to run", len(points))
            return {}
        check_reproducible(points, todo, opts)
        cores = os.cpu_count() or 1
        if opts.name == "local" and opts.max_parallel > cores:
            log.warning("--max-parallel %d on %d cores: the points share the cores (1 thread each) and their "
                        "timings are taken under load", opts.max_parallel, cores)
        log.info("%d of %d grid points to run (%s executor)", len(todo), len(points), opts.name)
        if opts.name == "debug":
            return _run_debug(todo)
        if opts.name == "local":
            return _run_local(out, todo, opts)
        return _run_slurm(out, todo, opts)


def check_reproducible(points: list[Resolved], todo: list[Resolved], opts: ExecutorOptions) -> None:
    """Refuse, before any work, a grid whose finished points were made with other torch threads or on another
    device than this executor gives its points: their numbers are not what these points would compute, and
    the grid would present both as one study."""
    from bioplaus_bench.harness import pick_device

    want = {"threads": opts.point_threads(), "device": None, "deterministic": True}
    bad: dict[str, list[str]] = {}
    for r in points:
        if r in todo:
            continue
        rec = read_record(r.path)[0]
        if rec is None:
            continue
        want["device"] = pick_device(r.spec.device).type
        differs = repro_differs(repro(rec), want)
        if differs:
            bad.setdefault(differs, []).append(r.path.stem)
    if bad:
        what, ids = next(iter(bad.items()))
        n = sum(len(v) for v in bad.values())
        hint = (f"--cpus-per-task {what.split()[0]} (or the --max-parallel they were made with) extends them"
                if "threads" in what else "--device as they were made extends them")
        raise RegistryError(
            f"{n} finished point(s) in {points[0].path.parent} were made with other settings than this grid gives "
            f"its points ({what}, e.g. {ids[0]}): numbers differ with them; {hint}, or use another --out")


class Tally:
    """The grid's progress line: k/N done, failed f, diverged d, elapsed and ETA (from the mean wall time per
    finished point and the points still to come), logged as each point ends."""

    def __init__(self, total: int) -> None:
        self.total, self.t0 = total, time.time()
        self.counts: dict[str, int] = {}

    def done(self, run_id: str, status: str, log_path: str = "") -> None:
        self.counts[status] = self.counts.get(status, 0) + 1
        k = sum(self.counts.values())
        elapsed = time.time() - self.t0
        eta = elapsed / k * (self.total - k)
        extra = "".join(f", {v} {s}" for s, v in sorted(self.counts.items()) if s != "completed")
        log.info("%d/%d done%s; %s elapsed, ETA %s | %s: %s%s", k, self.total, extra, _hms(elapsed), _hms(eta),
                 run_id, status, f" (log: {log_path})" if log_path else "")


def _hms(secs: float) -> str:
    secs = int(secs)
    return f"{secs // 3600}:{secs % 3600 // 60:02d}:{secs % 60:02d}"


def _run_debug(todo: list[Resolved]) -> dict[str, Any]:
    result, tally = {}, Tally(len(todo))
    for r in todo:
        try:
            result[r.path.stem] = train(r.spec, r)["status"]
        except Exception as exc:  # the harness wrote the failed record; the grid goes on
            log.warning("%s failed: %s", r.path.stem, exc)
            result[r.path.stem] = "failed"
        _say_discarded_checkpoint(r)
        tally.done(r.path.stem, result[r.path.stem])
    return result


def _say_discarded_checkpoint(r: Resolved) -> None:
    """On the grid's console, not only in the point's log: the point's checkpoint was unreadable and it started over."""
    rec = read_record(r.path)[0] or {}
    if rec.get("checkpoint_discarded"):
        log.warning("%s: %s; the point started over", r.path.stem, rec["checkpoint_discarded"])


def _run_local(out: Path, todo: list[Resolved], opts: ExecutorOptions) -> dict[str, Any]:
    threads = opts.cpus_per_task or max(1, (os.cpu_count() or 1) // opts.max_parallel)
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    env = {**os.environ, "BIOPLAUS_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    queue, running, result = list(todo), {}, {}
    jobs: dict[str, dict[str, Any]] = {}
    tally, last_report = Tally(len(todo)), time.time()
    while queue or running:
        while queue and len(running) < opts.max_parallel:
            r = queue.pop(0)
            logf = open(logs / f"{r.path.stem}.log", "a")  # noqa: SIM115 (closed when the process ends)
            proc = subprocess.Popen([sys.executable, "-m", "bioplaus_bench.grid", json.dumps(_spec_dict(r.spec))],
                                    stdout=logf, stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent)
            running[r.path.stem] = (r, proc, logf)
            jobs[r.path.stem] = {"executor": "local", "pid": proc.pid, "host": os.uname().nodename,
                                 "submitted": time.time(), "log": str(logs / f"{r.path.stem}.log")}
            _update_manifest(out, [], jobs)
            log.info("started %s (pid %d, %d threads; per-epoch progress in %s)", r.path.stem, proc.pid, threads,
                     logs / f"{r.path.stem}.log")
        time.sleep(0.2)
        if time.time() - last_report > REPORT_EVERY and running:  # long points: their epochs, now and then
            last_report = time.time()
            now = ", ".join(f"{run_id} epoch {(read_record(r.path)[0] or {}).get('epochs_done', 0)}/"
                            f"{r.config['epochs']}" for run_id, (r, _, _) in running.items())
            log.info("%d/%d done; running: %s", sum(tally.counts.values()), tally.total, now)
        for run_id, (r, proc, logf) in list(running.items()):
            code = proc.poll()
            if code is None:
                continue
            logf.close()
            del running[run_id]
            status = record_status(r.path)
            if code != 0 and status not in ("failed", *FINISHED):  # died without writing its failure (SIGKILL)
                why = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
                mark_failed(r, f"process {why}")
                status = "failed"
            result[run_id] = status or "failed"
            _say_discarded_checkpoint(r)
            tally.done(run_id, result[run_id], str(logs / f"{run_id}.log"))
    return result


def _run_slurm(out: Path, todo: list[Resolved], opts: ExecutorOptions) -> dict[str, Any]:
    import submitit

    executor = submitit.AutoExecutor(folder=out / "slurm" / "%j", cluster="slurm")
    params: dict[str, Any] = {"timeout_min": opts.timeout_min, "cpus_per_task": opts.cpus_per_task or 1,
                              "slurm_array_parallelism": opts.max_parallel, "name": "bench-grid"}
    if opts.partition:
        params["slurm_partition"] = opts.partition
    if opts.gpus_per_node:
        params["gpus_per_node"] = opts.gpus_per_node
    if opts.mem_gb:
        params["mem_gb"] = opts.mem_gb
    executor.update_parameters(**params)
    specs = [_spec_dict(r.spec) for r in todo]
    jobs_list = executor.map_array(GridPoint(), specs)
    jobs = {r.path.stem: {"executor": "slurm", "job_id": j.job_id, "folder": str(out / "slurm"),
                          "submitted": time.time()} for r, j in zip(todo, jobs_list, strict=True)}
    _update_manifest(out, [], jobs)
    log.info("submitted job array %s (%d tasks)", jobs_list[0].job_id.split("_")[0], len(jobs_list))
    if not opts.wait:
        return {k: "submitted" for k in jobs}
    result, tally = {}, Tally(len(todo))
    for r, job in zip(todo, jobs_list, strict=True):
        try:
            job.result()
        except Exception as exc:  # a failed job: the record says why (or gets marked here)
            log.warning("%s (job %s) failed: %s", r.path.stem, job.job_id, str(exc).strip().splitlines()[-1:])
        status = record_status(r.path)
        if status not in ("failed", *FINISHED):
            mark_failed(r, f"SLURM job {job.job_id} ended in state {job.state}")
            status = "failed"
        result[r.path.stem] = status
        tally.done(r.path.stem, status or "failed", str(out / "slurm" / str(job.job_id)))
    return result


# --------------------------------------------------------------------------------------------- status

def _slurm_states(job_ids: list[str]) -> dict[str, str]:
    """job id -> SLURM state, from sacct (accounting) and squeue (live), without submitit's caching."""
    if not job_ids:
        return {}
    states: dict[str, str] = {}
    arrays = sorted({j.split("_")[0] for j in job_ids})
    try:
        res = subprocess.run(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(arrays)],
                             capture_output=True, text=True, timeout=30)
        for line in res.stdout.splitlines():
            jid, _, state = line.partition("|")
            states[jid] = state.split()[0] if state else "UNKNOWN"
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        res = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(arrays)],
                             capture_output=True, text=True, timeout=30)
        for line in res.stdout.splitlines():
            jid, _, state = line.partition("|")
            if state != "COMPLETING" or jid not in states:  # sacct already knows how a completing job ended
                states[jid] = state
    except (OSError, subprocess.SubprocessError):
        pass
    return states


def status(out: str | os.PathLike) -> list[dict[str, Any]]:
    """One row per grid point: run_id, algo, task, seed, overrides, state (done | running | pending | failed |
    missing) and detail (progress, or the last line of the error)."""
    out = Path(out)
    path = out / MANIFEST
    if not path.exists():
        raise RegistryError(f"no grid in {out} (no {MANIFEST}); start one with `bench grid --out {out}`")
    manifest = _read_manifest(path)
    if manifest is None:  # rebuilt from the records themselves
        manifest = {"points": {}, "jobs": {}}
        for p in sorted(out.glob("*.json")):
            rec, _ = read_record(p) if p.name != MANIFEST else (None, None)
            if rec is not None:
                manifest["points"][p.stem] = {**rec["config"], "overrides": {}}
    jobs = manifest.get("jobs", {})
    slurm = _slurm_states([j["job_id"] for j in jobs.values() if j.get("executor") == "slurm"])
    rows = []
    for run_id, spec in manifest["points"].items():
        path = out / f"{run_id}.json"
        restored = recover(path) if path.exists() else None
        rec, unreadable = read_record(path) if path.exists() else (None, None)
        rec = rec or {}
        job = jobs.get(run_id, {})
        st = rec.get("status")
        job_state = slurm.get(str(job.get("job_id")), "UNKNOWN") if job.get("executor") == "slurm" else ""
        epochs = f"epoch {rec.get('epochs_done', 0)}/{spec.get('epochs') or '?'} done"
        if st == "completed":
            acc, loss = rec["final"].get("test_acc"), rec["final"].get("test_loss")
            state, detail = "done", (f"test acc {acc:.4f}" if acc is not None else
                                     f"test loss {loss:.4g}" if loss is not None else "no test metrics")
            if is_stale(rec):
                detail += (" (stale: today's code computes something else for it (its fingerprint no longer "
                           "holds); `bench rebuild --refresh-stale` or `bench run --force` reruns it)")
        elif st in ("diverged", "collapsed"):
            state, detail = st, (rec.get("error") or "").strip()
        elif job_state in LIVE_SLURM:  # submitted (again) and not finished yet
            state = "pending" if job_state == "PENDING" else "running"
            detail = f"job {job['job_id']} {job_state}" + (f", {epochs}" if st == "running" else "")
        elif st in ("failed", "interrupted"):
            state, detail = "failed", ((rec.get("error") or "").strip().splitlines() or [""])[-1]
            if job_state:
                detail += f" (job {job['job_id']} {job_state})"
        elif st == "running":
            if job.get("executor") == "slurm":
                why = f"SLURM job {job['job_id']} ended {job_state}"
            else:
                why = run_is_dead(rec)
            state, detail = ("failed", f"{why} after {epochs}; rerun to resume") if why else ("running", epochs)
        elif unreadable:
            state, detail = "failed", f"record unreadable ({unreadable}); rerun the grid to replace it"
        else:
            state, detail = "missing", ""
        if restored:
            detail = f"{detail} [restored: {restored}]"
        rows.append({"run_id": run_id, "algo": spec["algo"], "task": spec["task"], "seed": spec["seed"],
                     "overrides": ",".join(([f"preset={spec['preset']}"] if spec.get("preset") else [])
                                           + [f"{k}={v}" for k, v in spec.get("overrides", {}).items()]),
                     "state": state, "job": job.get("job_id", job.get("pid", "")), "detail": detail})
    return rows


def main() -> None:  # the local executor's worker: python -m bioplaus_bench.grid '<spec json>'
    _die_with_parent()  # in case this process was started by something other than _run_local
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    signal.signal(signal.SIGTERM, _on_sigterm)
    spec = RunSpec(**json.loads(sys.argv[1]))
    try:
        train(spec)
    except Exception:  # the harness wrote the failed record with its traceback
        sys.exit(1)


if __name__ == "__main__":
    main()
