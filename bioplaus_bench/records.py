"""Run records: one JSON file per run, written atomically, with everything needed to reproduce it.

Records are strict JSON: a non-finite float (a diverged loss, an undefined accuracy) is written as ``null``.
``read_records`` is the one reader every command uses: it never raises on a bad file, it skips and counts it.
``code_files`` / ``code_hash`` hash the source that trains a rule (its file, the suite modules it uses, the
harness); ``is_stale`` says when a record was made by code other than today's.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import inspect
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

SCHEMA_VERSION = 2  # 2: strict JSON, code hash, load average, status "diverged"
FINISHED = ("completed", "diverged")  # a record in one of these states is never overwritten without --force
FILE_MODE = 0o644  # records are read by the whole group on a shared cluster
# the modules besides the rule's own file whose source decides what a run computes
CORE_MODULES = ("bioplaus_bench.harness", "bioplaus_bench.rule", "bioplaus_bench.data", "bioplaus_bench.nets",
                "bioplaus_bench.measure")


def config_hash(config: dict[str, Any]) -> str:
    """Stable short hash of a resolved run config (keys sorted), used to name the record file."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:12]


def record_name(config: dict[str, Any]) -> str:
    return f"{config['algo'].replace(':', '_').replace('.', '_')}__{config['task']}__{config['arch']}" \
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


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as strict JSON to ``path`` through a temp file in the same folder and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(strict(json.loads(json.dumps(obj, default=_json_default))), f, indent=1, allow_nan=False)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def check_record(rec: Any) -> str | None:
    """Why ``rec`` is not a usable run record, or None when it is."""
    if not isinstance(rec, dict):
        return "not a JSON object"
    if "schema_version" not in rec:
        return "no schema_version (not a run record)"
    cfg = rec.get("config")
    if not isinstance(cfg, dict) or not all(k in cfg for k in ("algo", "task", "arch", "seed")):
        return "no config with algo, task, arch and seed"
    if not isinstance(rec.get("status"), str):
        return "no status"
    if rec["status"] == "completed" and not (isinstance(rec.get("final"), dict) and isinstance(rec.get("curves"),
                                                                                               dict)):
        return "status completed but no final metrics or curves"
    return None


def read_record(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(record, None), or (None, why it is unreadable). Never raises."""
    try:
        rec = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return None, f"unreadable: {type(exc).__name__}"
    why = check_record(rec)
    return (None, why) if why else (rec, None)


def read_records(folder: str | os.PathLike) -> RecordScan:
    """Every run record below ``folder`` (recursively); temp files and manifests are passed over, any other
    JSON file that is not a readable record is skipped and listed with the reason."""
    scan = RecordScan()
    root = Path(folder)
    paths = [root] if root.is_file() else sorted(root.rglob("*.json"))
    for p in paths:
        if p.name.startswith(".") or p.name == "grid.json":
            continue
        rec, why = read_record(p)
        if rec is None:
            scan.skipped.append((str(p), why or "?"))
            continue
        rec["_path"] = str(p)
        scan.records.append(rec)
    return scan


def record_status(path: Path) -> str | None:
    rec, _ = read_record(path)
    return rec.get("status") if rec else None


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
    """True when the record was made by code other than today's (or today's code for it is unknown)."""
    current = current_code_hash(rec["config"]["algo"])
    return current is None or rec.get("code_hash") != current


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
