"""Small helpers shared by the tests."""

import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from bioplaus_bench import get_algorithm, get_arch, get_task
from bioplaus_bench.config import resolve
from bioplaus_bench.harness import create_rule


def make_rule(algo: str, task: str = "mnist", arch: str | None = None, epochs: int = 1, seed: int = 0,
              **overrides):
    """Build (rule, task spec) exactly as the harness does, on the CPU."""
    torch.manual_seed(seed)
    entry = get_algorithm(algo)
    spec = get_task(task)
    arch = arch or entry.task_defaults.get(task, {}).get("arch") or spec.default_arch
    cfg, _ = resolve(entry, None, {k: str(v) for k, v in overrides.items()}, arch)
    model = get_arch(arch).build(spec.input_shape, spec.num_classes)
    return create_rule(entry, cfg, model, spec, epochs), spec


# ---- grids: the bench CLI in a subprocess, records in a folder, polling

BENCH = [sys.executable, "-m", "bioplaus_bench"]


def bench(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run([*BENCH, *args], capture_output=True, text=True, timeout=600)
    if check and res.returncode != 0:
        raise AssertionError(f"bench {' '.join(args)} exited {res.returncode}:\n{res.stdout}\n{res.stderr}")
    return res


def records(folder: Path) -> dict[str, dict]:
    out = {}
    for p in folder.glob("*.json"):
        rec = json.loads(p.read_text())
        if "schema_version" in rec:
            out[p.stem] = rec
    return out


def wait_for(predicate, timeout: float, what: str) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
