"""Small helpers shared by the tests."""

import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from bioplaus_bench import get_arch
from bioplaus_bench.harness import RunSpec, create_rule
from bioplaus_bench.harness import resolve as resolve_run


def make_rule(algo: str, task: str = "mnist", arch: str | None = None, epochs: int = 1, seed: int = 0,
              **overrides):
    """Build (rule, task spec) exactly as the harness does (``harness.resolve``, then ``create_rule``), on the CPU."""
    r = resolve_run(RunSpec(algo=algo, task=task, arch=arch, epochs=epochs,
                            overrides={k: str(v) for k, v in overrides.items()}))
    torch.manual_seed(seed)
    model = get_arch(r.config["arch"]).build(r.task.input_shape, r.task.num_classes)
    return create_rule(r.entry, r.rule_cfg, model, r.task, epochs), r.task


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
