"""Run records: one JSON file per run, written atomically, with everything needed to reproduce it.

Records are strict JSON: a non-finite float (a diverged loss, an undefined accuracy) is written as ``null``.
``read_records`` is the one reader every command uses: it never raises on a bad file, it skips and counts it.
``code_files`` / ``code_hash`` hash the source that trains a rule (its file, the suite modules it uses, the
harness); ``is_stale`` says when a record was made by code other than today's.
"""

from __future__ import annotations

import ast
import contextlib
import errno
import fcntl
import functools
import hashlib
import importlib
import inspect
import io
import json
import logging
import math
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 2: strict JSON, code hash, load average, status "diverged"
FINISHED = ("completed", "diverged", "collapsed")  # never overwritten without --force
FILE_MODE = 0o644  # records are read by the whole group on a shared cluster
# the modules besides the rule's own file whose source decides what a run computes
CORE_MODULES = ("bioplaus_bench.harness", "bioplaus_bench.rule", "bioplaus_bench.data", "bioplaus_bench.nets",
                "bioplaus_bench.measure")


def config_hash(config: dict[str, Any]) -> str:
    """Stable short hash of a resolved run config (keys sorted), used to name the record file."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:12]


def record_name(config: dict[str, Any]) -> str:
    task = config["task"]
    if task.startswith("folder:"):  # your own images: the folder's name (the hash tells folders apart)
        task = "folder-" + (Path(task[len("folder:"):]).expanduser().resolve().name or "root")
    task = re.sub(r"[^A-Za-z0-9._-]", "_", task)
    return f"{config['algo'].replace(':', '_').replace('.', '_')}__{task}__{config['arch']}" \
           f"__s{config['seed']}__{config_hash(config)}"


def strict(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None (JSON has no NaN or Infinity)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [strict(v) for v in obj]
    return obj


class DiskFull(OSError):
    """A record or checkpoint did not fit: the message names the folder and the space it needed."""


def _write_atomic(path: Path, data: bytes, what: str) -> None:
    """``data`` to ``path`` through a temp file in the same folder and an atomic rename; the temp file is removed
    on every failure, and a full disk is reported with the folder, the bytes needed and the bytes free."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            free = shutil.disk_usage(path.parent).free
            full = DiskFull(f"no space left in {path.parent}: writing {what} {path.name} needs {len(data):,} "
                            f"bytes, {free:,} free")
            full.errno = exc.errno
            raise full from None
        raise


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as strict JSON to ``path`` atomically (``_write_atomic``)."""
    text = json.dumps(strict(json.loads(json.dumps(obj, default=_json_default))), indent=1, allow_nan=False)
    _write_atomic(path, text.encode(), "the record")


def save_torch_atomic(obj: Any, path: Path, what: str = "the checkpoint") -> None:
    """``torch.save`` to ``path`` atomically: serialised in memory first, so a full disk leaves no partial file
    and the error can say how much space was needed."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    _write_atomic(path, buf.getvalue(), what)


def _json_default(o: Any) -> Any:
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, tuple | set):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


# ------------------------------------------------------------------------------------------- reading

@dataclass
class RecordScan:
    """What ``read_records`` found: the readable records and, for every other JSON file, why it was skipped."""

    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    recovered: list[str] = field(default_factory=list)  # finished records put back after a dead --force rerun


STATUSES = ("running", "completed", "diverged", "collapsed", "failed", "interrupted")
_NUM = (int, float)
# the typed schema of what commands read: key -> accepted types (None: JSON null); keys a record lacks are
# not checked here (each reader says what it needs), keys it has must have these types
CONFIG_TYPES: dict[str, tuple] = {
    "algo": (str,), "task": (str,), "arch": (str,), "seed": (int,), "preset": (str, None), "epochs": (int,),
    "batch_size": (int,), "val_size": (int,), "angle_every": (int,), "max_batches": (int, None),
    "hparams": (dict,), "compile": (bool,), "augment": (bool,), "folder_manifest": (str,),
    "defaults_from": (str,),
}
FINAL_DICTS = ("final_angles", "final_angles_last")  # {tensor name: degrees or null}
CURVE_DICTS = ("angles", "angles_last")  # per epoch: {tensor name: degrees or null}
TOP_TYPES: dict[str, tuple] = {
    "run_id": (str,), "started": _NUM, "finished": _NUM, "pid": (int, None), "env": (dict, None),
    "load_avg_start": (*_NUM, None), "load_avg_end": (*_NUM, None), "code_hash": (str, None),
    "data_generated": (bool,), "task_synthetic": (bool,), "error": (str, None), "epochs_done": (int,),
    "supersedes": (str, None), "repro": (dict,), "fingerprint": (dict, None), "num_classes": (int,),
}


def _is(value: Any, types: tuple) -> bool:
    if value is None:
        return None in types
    if isinstance(value, bool):  # JSON true is not a number
        return bool in types
    return isinstance(value, tuple(t for t in types if t is not None))


def _num_or_null(v: Any) -> bool:
    return _is(v, (*_NUM, None))


def check_record(rec: Any) -> str | None:
    """Why ``rec`` is not a usable run record (the first field of the wrong type, named), or None when it is."""
    if not isinstance(rec, dict):
        return "not a JSON object"
    if "schema_version" not in rec:
        return "no schema_version (not a run record)"
    cfg = rec.get("config")
    if not isinstance(cfg, dict) or not all(k in cfg for k in ("algo", "task", "arch", "seed")):
        return "no config with algo, task, arch and seed"
    for key, types in CONFIG_TYPES.items():
        if key in cfg and not _is(cfg[key], types):
            return f"config.{key} is {cfg[key]!r}, not {_names(types)}"
    if rec.get("status") not in STATUSES:
        return f"status {rec.get('status')!r} is not one of {', '.join(STATUSES)}"
    for key, types in TOP_TYPES.items():
        if key in rec and not _is(rec[key], types):
            return f"{key} is {rec[key]!r}, not {_names(types)}"
    final, curves = rec.get("final"), rec.get("curves")
    if rec["status"] == "completed" and not (isinstance(final, dict) and isinstance(curves, dict)):
        return "status completed but no final metrics or curves"
    if final is not None:
        if not isinstance(final, dict):
            return "final is not an object"
        for k, v in final.items():
            if k in FINAL_DICTS:
                if not (isinstance(v, dict) and all(_num_or_null(a) for a in v.values())):
                    return f"final.{k} is not an object of numbers"
            elif not _num_or_null(v):
                return f"final.{k} is {v!r}, not a number"
    if curves is not None:
        why = _check_curves(curves, completed=rec["status"] == "completed")
        if why:
            return why
    return None


def _check_curves(curves: Any, completed: bool) -> str | None:
    if not isinstance(curves, dict):
        return "curves is not an object"
    if "epoch" not in curves and (completed or curves):
        return "curves has no epoch list"
    n = None
    for k, v in curves.items():
        if not isinstance(v, list):
            return f"curves.{k} is not a list"
        ok = all(isinstance(a, dict) and all(_num_or_null(b) for b in a.values()) for a in v) if k in CURVE_DICTS \
            else all(_is(a, (int,)) for a in v) if k == "epoch" else all(_num_or_null(a) for a in v)
        if not ok:
            bad = next((a for a in v if not (isinstance(a, dict) if k in CURVE_DICTS else _num_or_null(a))), None)
            return f"curves.{k} holds {bad!r}, not " + ("objects of numbers" if k in CURVE_DICTS else "numbers")
        if n is None:
            n = len(curves.get("epoch", v))
        if len(v) != n:
            return f"curves.{k} has {len(v)} entries, curves.epoch {n}"
    if completed and not curves.get("epoch"):
        return "status completed but curves.epoch is empty"
    return None


def _names(types: tuple) -> str:
    return " or ".join("null" if t is None else {str: "a string", int: "an integer", float: "a number",
                                                  bool: "true/false", dict: "an object"}.get(t, t.__name__)
                       for t in dict.fromkeys(float if t is int and float in types else t for t in types))


def read_record(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(record, None), or (None, why it is unusable). Never raises. A completed record that collapsed (see
    ``collapsed``) comes back with status "collapsed" and the reason as its error."""
    try:
        rec = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return None, f"unreadable: {type(exc).__name__}"
    why = check_record(rec)
    if why:
        return None, why
    if rec["status"] == "completed" and (reason := collapsed(rec)):
        rec["status"], rec["error"] = "collapsed", reason
    return rec, None


NOT_RECORDS = ("grid.json", "fingerprints.json")  # manifests and caches beside the records


def read_records(folder: str | os.PathLike) -> RecordScan:
    """Every run record below ``folder`` (recursively); temp files and manifests are passed over, any other
    JSON file that is not a readable record is skipped and listed with the reason. First, a ``--force`` rerun
    that died is undone (``recover``): its finished predecessor is back before anything is read."""
    root = Path(folder)
    paths = [root] if root.is_file() else sorted(root.rglob("*.json"))
    paths = [p for p in paths if not p.name.startswith(".") and p.name not in NOT_RECORDS]
    links = [] if root.is_file() else [p.with_name(p.name[1:-len(".supersedes")] + ".json")
                                       for p in root.rglob(".*.supersedes")]
    candidates = sorted({*(p for p in paths if not is_set_aside(p) and _maybe_unfinished_rerun(p)), *links})
    recovered = [msg for p in candidates if (msg := recover(p))]
    if recovered:  # files moved: read the folder as it is now
        paths = [p for p in sorted(root.rglob("*.json")) if not p.name.startswith(".") and p.name not in NOT_RECORDS]
    scan = RecordScan(recovered=recovered)
    for p in paths:
        rec, why = read_record(p)
        if rec is None:
            scan.skipped.append((str(p), why or "?"))
            continue
        rec["_path"] = str(p)
        scan.records.append(rec)
    return scan


def _maybe_unfinished_rerun(path: Path) -> bool:
    """A cheap look for a record that set a predecessor aside: the harness writes ``supersedes`` at its top."""
    try:
        with open(path, "rb") as fh:
            return b'"supersedes"' in fh.read(512)
    except OSError:
        return False


def record_status(path: Path) -> str | None:
    rec, _ = read_record(path)
    return rec.get("status") if rec else None


# ------------------------------------------------------------------------------------------- collapse

COLLAPSE_MARGIN = 0.02  # "at chance": final test accuracy within 2 points of chance
COLLAPSE_FACTOR = 5.0  # "far above": final test loss over 5 x the loss at the start (first batch, else ln C)


def collapsed(rec: dict[str, Any]) -> str | None:
    """Why a completed classification run collapsed, or None: it ended at chance accuracy (within
    COLLAPSE_MARGIN) with a test loss above COLLAPSE_FACTOR x its first batch's loss (records from before that
    field: x ln(number of classes), the loss of a uniform prediction). Its loss blew up and came back below the
    divergence bound; it is excluded like a diverged run."""
    from bioplaus_bench.registry import RegistryError, get_task

    final = rec.get("final") or {}
    acc, loss = final.get("test_acc"), final.get("test_loss")
    if not (_is(acc, _NUM) and _is(loss, _NUM)):
        return None
    classes = rec.get("num_classes")  # written by the run; older records: their registered task's
    if not _is(classes, (int,)):
        if rec["config"]["task"].startswith("folder:"):  # never decode a folder to read a record
            return None
        try:
            task = get_task(rec["config"]["task"])
        except RegistryError:
            return None
        if task.loss != "ce":
            return None
        classes = task.num_classes
    chance = 1.0 / classes
    start = rec.get("first_batch_loss")
    start = start if _is(start, _NUM) and start > 0 else math.log(classes)
    if acc <= chance + COLLAPSE_MARGIN and loss > COLLAPSE_FACTOR * start:
        return (f"collapsed: test accuracy {acc:.4f} at chance ({chance:.2f}) with test loss {loss:.4g} > "
                f"{COLLAPSE_FACTOR:g} x the loss at the start ({start:.4g})")
    return None


# ------------------------------------------------------------------------------------------- reproducibility

def repro(rec: dict[str, Any]) -> dict[str, Any]:
    """What changes a run's numbers on one machine besides its config: torch threads, device type, deterministic
    mode (records from before the field: from their environment; every run so far was deterministic)."""
    if isinstance(rec.get("repro"), dict):
        return rec["repro"]
    env = rec.get("env") or {}
    return {"threads": env.get("torch_threads"), "device": "cuda" if env.get("gpu") else "cpu",
            "deterministic": True}


def repro_differs(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    """'1 vs 2 torch threads' (what differs), or None when the two would compute the same numbers."""
    bits = []
    if a.get("threads") is not None and b.get("threads") is not None and a["threads"] != b["threads"]:
        bits.append(f"{a['threads']} vs {b['threads']} torch threads")
    if a.get("device") != b.get("device"):
        bits.append(f"device {a.get('device')} vs {b.get('device')}")
    if a.get("deterministic", True) != b.get("deterministic", True):
        bits.append(f"deterministic {a.get('deterministic')} vs {b.get('deterministic')}")
    return ", ".join(bits) or None


# ------------------------------------------------------------------------------------------- set-asides

def supersede(path: Path, tag: str = "superseded") -> Path:
    """Move a record aside as ``<run id>.<tag>-<time>[-k].json`` (never over an earlier one); returns where."""
    stamp, n = time.strftime("%Y%m%dT%H%M%S"), 1
    dest = path.with_name(f"{path.stem}.{tag}-{stamp}.json")
    while dest.exists():  # twice within a second: a counter, so the first is never overwritten
        n += 1
        dest = path.with_name(f"{path.stem}.{tag}-{stamp}-{n}.json")
    os.replace(path, dest)
    return dest


def set_aside_for_rerun(path: Path) -> Path:
    """``supersede`` a finished record that is about to be rerun, leaving a link (``.<run id>.supersedes``) so
    that the rerun's record names it: if the rerun never finishes, ``recover`` puts it back."""
    kept = supersede(path)
    _link(path).write_text(kept.name)
    return kept


def set_aside_predecessor(path: Path) -> Path | None:
    """The finished record set aside for the run at ``path`` (``set_aside_for_rerun``), if it is still there."""
    try:
        kept = path.with_name(_link(path).read_text().strip())
    except OSError:
        return None
    return kept if kept.exists() else None


def drop_link(path: Path) -> None:
    _link(path).unlink(missing_ok=True)


def _link(path: Path) -> Path:
    return path.parent / f".{path.stem}.supersedes"


def is_set_aside(path: Path) -> bool:
    return ".superseded-" in path.name or ".unfinished-rerun-" in path.name


# ------------------------------------------------------------------------------------------- dead runs

LIVE_SLURM = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "RESIZING", "SUSPENDED"}


def slurm_state(job_id: str) -> str | None:
    """A SLURM job's state from squeue (live) or sacct (ended); None when neither answers."""
    for cmd in (["squeue", "-h", "-o", "%T", "-j", job_id], ["sacct", "-n", "-P", "-X", "-o", "State", "-j", job_id]):
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            continue
        state = (res.stdout.split() or [None])[0]
        if res.returncode == 0 and state:
            return state
    return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_is_dead(rec: dict[str, Any]) -> str | None:
    """Why the process that left ``rec`` "running" is known to be gone (its pid on this host, or its SLURM job),
    or None while it may be alive (another host without a job id: unknown, never assumed dead)."""
    env = rec.get("env") or {}
    job = env.get("slurm_job_id")
    if job:
        state = slurm_state(str(job))
        return None if state is None or state in LIVE_SLURM else f"SLURM job {job} ended {state}"
    pid = rec.get("pid")
    if env.get("hostname") == socket.gethostname() and isinstance(pid, int):
        return None if pid_alive(pid) else f"process {pid} is gone"
    return None


@contextlib.contextmanager
def record_lock(path: Path, wait: bool = False):
    """The lock a training process holds on its record for the whole run (``.<run id>.lock``). Yields True
    when it was taken; False (without ``wait``) when another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.stem}.lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def restore_predecessor(path: Path, rec: dict[str, Any]) -> str | None:
    """With the record's lock held: when ``rec`` (at ``path``) is a rerun that will not finish (left "running" by
    a process that is gone, or failed) and a finished record was set aside for it (``--force``, ``bench rebuild
    --rerun``), put that record back, byte for byte, and move the unfinished one to
    ``<run id>.unfinished-rerun-<time>.json``. Returns what was done, or None."""
    if rec.get("status") in ("failed", "interrupted"):
        why = rec["status"]
    elif rec.get("status") != "running" or not (why := run_is_dead(rec)):
        return None
    kept = path.with_name(rec["supersedes"]) if isinstance(rec.get("supersedes"), str) else None
    if kept is None or not kept.exists():
        return None
    old, _ = read_record(kept)
    if old is None or old["status"] not in FINISHED:
        return None
    aside = supersede(path, "unfinished-rerun")
    os.replace(kept, path)
    drop_link(path)
    return (f"{path.name}: its rerun did not finish ({why}); restored the finished record set aside for it "
            f"(the unfinished rerun is {aside.name})")


def recover(path: Path) -> str | None:
    """``restore_predecessor`` under the record's lock (nothing happens while a process trains it)."""
    if not path.exists():  # killed between setting its predecessor aside and writing its own record
        with record_lock(path) as locked:
            kept = set_aside_predecessor(path) if locked and not path.exists() else None
            if kept is None:
                return None
            os.replace(kept, path)
            drop_link(path)
        msg = f"{path.name}: its rerun died before it started; restored the finished record set aside for it"
        log.warning("%s", msg)
        return msg
    rec, _ = read_record(path)
    if rec is not None and rec.get("status") in FINISHED:  # the rerun finished: its predecessor stays aside
        drop_link(path)
        return None
    if rec is None or rec.get("status") not in ("running", "failed", "interrupted") or not rec.get("supersedes"):
        return None
    with record_lock(path) as locked:
        if not locked:
            return None
        rec, _ = read_record(path)
        msg = restore_predecessor(path, rec) if rec else None
    if msg:
        log.warning("%s", msg)
    return msg


# ------------------------------------------------------------------------------------------- provenance

def _sha(path: str) -> str:
    """Hash of a module's code without its docstrings and comments: editing prose never makes a record stale."""
    tree = ast.parse(Path(path).read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha1(ast.dump(tree).encode()).hexdigest()[:12]


def code_files(rule_cls: type) -> dict[str, str]:
    """{module name: sha1 of its source} for the rule's module, the suite modules it uses and the harness."""
    from bioplaus_bench.registry import ALGORITHMS, ARCHS

    mods = {rule_cls.__module__, *CORE_MODULES}
    names = {name for name, entry in ALGORITHMS.items() if entry.cls is rule_cls}
    for arch in ARCHS.values():  # a network outside nets.py that serves some rules only: their records hash it
        if arch.rules and names & set(arch.rules):
            mods.add(arch.build.__module__)
    module = sys.modules.get(rule_cls.__module__)
    for value in vars(module).values() if module else ():  # suite modules the rule file draws on
        name = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", None)
        if isinstance(name, str) and name.startswith("bioplaus_bench.") and name != "bioplaus_bench.registry":
            mods.add(name)
    out = {}
    for name in sorted(mods):
        mod = sys.modules.get(name) or (importlib.import_module(name) if name in CORE_MODULES else None)
        src = getattr(mod, "__file__", None) if mod else None
        if src and os.path.exists(src):
            out[name] = _sha(src)
    return out


def code_hash(files: dict[str, str]) -> str:
    return hashlib.sha1(json.dumps(files, sort_keys=True).encode()).hexdigest()[:12]


@functools.cache
def current_code_hash(algo: str) -> str | None:
    """The code hash a run of ``algo`` would record now; None when the rule no longer loads."""
    from bioplaus_bench.registry import get_algorithm

    try:
        return code_hash(code_files(get_algorithm(algo).cls))
    except Exception:  # a rule that no longer loads: freshness unknown
        return None


def is_stale(rec: dict[str, Any]) -> bool:
    """True when today's code would compute something else for the record's configuration: its code hash
    differs from today's and today's behavioural fingerprint of its config (``fingerprint``) does not reproduce
    the one it carries (a record without one, or whose rule no longer loads, is stale)."""
    current = current_code_hash(rec["config"]["algo"])
    if current is None:
        return True
    if rec.get("code_hash") == current:  # the same source: the same computation
        return False
    return not fingerprint_holds(rec, current)


def fingerprint_holds(rec: dict[str, Any], code: str | None = None) -> bool:
    """Whether today's code (hash ``code``) reproduces the fingerprint the record carries."""
    from bioplaus_bench import fingerprint

    code = code or current_code_hash(rec["config"]["algo"])
    stored = rec.get("fingerprint")
    if code is None or not isinstance(stored, dict):
        return False
    try:
        return fingerprint.same(stored, fingerprint.current(rec["config"], code))
    except Exception as exc:  # a config today's code cannot build: it would not run as it did
        log.debug("fingerprint of %s failed: %s", rec.get("run_id"), exc)
        return False


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> str | None:
    try:
        here = Path(__file__).resolve().parent
        return subprocess.run(["git", *args], cwd=here, capture_output=True, text=True, timeout=5,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def environment(device: torch.device) -> dict[str, Any]:
    # untracked files, and records and tables under results/ and runs/, are not code
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ":/", ":(top,exclude)results",
                  ":(top,exclude)runs")
    return {
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch_threads": torch.get_num_threads(),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }
