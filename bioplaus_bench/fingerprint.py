"""Behavioural fingerprints: a record is judged by what its code computes, not by the text of that code.

For a record's resolved configuration, ``compute`` runs a short deterministic computation through the real
pieces of a run, on the CPU at one thread: the network built as the harness builds it, the rule built by
``harness.create_rule`` from the record's hyperparameters, its warm-up on two fixed batches, ``STEPS`` calls of
``rule.step`` on fixed seeded inputs at the record's architecture, ``end_epoch`` (the schedulers),
``harness.evaluate`` and, when the record measured angles, ``angles_to_bp``. It keeps the step losses, the
evaluation and each tensor of the rule's state (weights, feedback, optimiser buffers) as the change from its
initial value, summarised by its squared norm and a fixed random projection. The tensors are compared as a
sorted list, so renaming an attribute or reordering modules changes nothing. The data pipeline is
fingerprinted the same way: the first training batch of the record's task and seed (from the real files; none
when they are absent).

A record is stale when today's code computes a different fingerprint for its configuration: any number off by
more than ``RTOL`` relative (plus ``ATOL``). The tolerance absorbs summation order (thread count, SIMD width,
BLAS build: about 1e-7 relative per operation, under 1e-5 after these few steps) and nothing else: a changed
default, update or normalisation moves the numbers by 1e-3 or more.

Today's fingerprints are cached by the code hash (``records.code_hash``) they were computed at, in the
committed ``results/fingerprints.json`` (read) and the user cache (read and written), so a check recomputes
nothing while the code is unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

VERSION = 1  # the protocol below; a change of it needs a migration (fingerprints of other versions never match)
STEPS = 3  # rule steps per fingerprint
BATCH = 16  # inputs per step
RTOL, ATOL = 1e-4, 1e-7
COMMITTED = Path(__file__).resolve().parent.parent / "results" / "fingerprints.json"


def user_cache() -> Path:
    return Path(os.environ.get("BIOPLAUS_FINGERPRINT_CACHE")
                or Path.home() / ".cache" / "bioplaus_bench" / "fingerprints.json")


# ------------------------------------------------------------------------------------------- computing

def _summary(t: torch.Tensor) -> list[float]:
    """[numel, squared norm, projection on a fixed random tensor of the same shape] of a float tensor."""
    t = t.detach().double().cpu()
    r = torch.randn(t.shape, generator=torch.Generator().manual_seed(t.numel()), dtype=torch.double)
    return [float(t.numel()), float(t.pow(2).sum()), float((t * r).sum())]


def _tensors(obj: Any, out: list[torch.Tensor]) -> list[torch.Tensor]:
    """Every floating-point tensor inside a (nested) state dict, in traversal order."""
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point():
            out.append(obj.detach().clone())
    elif isinstance(obj, dict):
        for v in obj.values():
            _tensors(v, out)
    elif isinstance(obj, list | tuple):
        for v in obj:
            _tensors(v, out)
    return out


@contextlib.contextmanager
def _isolated():
    """One thread and forked RNGs: a fingerprint computed inside a run leaves the run exactly as it was."""
    threads = torch.get_num_threads()
    py, npy = random.getstate(), np.random.get_state()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.set_num_threads(threads)
        random.setstate(py)
        np.random.set_state(npy)


def step_fingerprint(config: dict[str, Any]) -> dict[str, Any]:
    """The rule's behaviour on fixed inputs (seed-independent): losses, evaluation and the state's changes."""
    from bioplaus_bench import config as cfgmod
    from bioplaus_bench import harness
    from bioplaus_bench.measure import angles_to_bp
    from bioplaus_bench.registry import get_algorithm, get_arch, get_task

    entry, task = get_algorithm(config["algo"]), get_task(config["task"])
    rule_cfg = cfgmod.build_config(entry.config, config.get("hparams") or {}, entry.name)
    with _isolated():
        harness.seed_everything(0)
        model = get_arch(config["arch"]).build(task.input_shape, task.num_classes)
        rule = harness.create_rule(entry, rule_cfg, model, task, config["epochs"])
        before = _tensors(rule.state_dict(), [])
        g = torch.Generator().manual_seed(1)
        batches = []
        for _ in range(2):
            x = torch.randn(BATCH, *task.input_shape, generator=g)
            y = torch.randn(BATCH, task.num_classes, generator=g) if task.loss == "mse" else \
                torch.randint(0, task.num_classes, (BATCH,), generator=g)
            batches.append((x, y))
        rule.warmup(batches)
        losses, angles = [], []
        for i in range(STEPS):
            x, y = batches[i % 2]
            if config.get("angle_every"):
                angles += [a for _, a in sorted(angles_to_bp(rule, x, y).items())]
            out = rule.step(x, y)
            losses.append(float(harness.task_loss(task.loss, out.detach(), y)))
        rule.end_epoch()
        ev = harness.evaluate(rule.model, batches, task.loss)
        after = _tensors(rule.state_dict(), [])
    deltas = [a - b if b is not None and b.shape == a.shape else a
              for a, b in zip(after, before + [None] * (len(after) - len(before)), strict=False)]
    return {"losses": losses, "eval": [ev["loss"], ev["acc"]], "angles": angles,
            "tensors": sorted(_summary(d) for d in deltas)}


def data_fingerprint(config: dict[str, Any], root: Path | None = None) -> list[float] | None:
    """The first training batch of the record's task and seed, as the harness makes it; None without the files."""
    import dataclasses

    from bioplaus_bench import data as datamod
    from bioplaus_bench.registry import RegistryError, get_task

    try:
        task = get_task(config["task"])
    except RegistryError:  # a folder task whose folder is not here
        return None
    if "augment" in config:
        task = dataclasses.replace(task, augment=config["augment"])
    try:
        splits = datamod.load_splits(task, datamod.data_root(root), config["val_size"], torch.device("cpu"))
    except (datamod.DataError, OSError):
        return None
    with _isolated():
        gen = torch.Generator().manual_seed(config["seed"])
        x, y = next(iter(datamod.Batches(splits["train"], task, config["batch_size"], train=True, generator=gen)))
        return _summary(x.float()) + _summary(y.double())


def compute(config: dict[str, Any], root: Path | None = None) -> dict[str, Any]:
    """The fingerprint a run of ``config`` carries: {"version", "step", "data"}."""
    return {"version": VERSION, "step": step_fingerprint(config), "data": data_fingerprint(config, root)}


# ------------------------------------------------------------------------------------------- comparing

def _close(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, int | float) and isinstance(b, int | float):
        if not (math.isfinite(a) and math.isfinite(b)):
            return (a != a and b != b) or a == b
        return abs(a - b) <= ATOL + RTOL * abs(b)
    return a is None and b is None or a == b


def same(stored: dict[str, Any] | None, now: dict[str, Any]) -> bool:
    """True when ``now`` reproduces ``stored`` within the tolerance. Where today's data files are absent, the
    data part cannot be judged and is passed over."""
    if not isinstance(stored, dict) or stored.get("version") != VERSION:
        return False
    data_ok = now.get("data") is None or _close(stored.get("data"), now["data"])
    return data_ok and _close(_nan(stored.get("step")), _nan(now["step"]))


def _nan(obj: Any) -> Any:
    """Records store non-finite numbers as null (strict JSON): compare them as NaN."""
    if obj is None:
        return float("nan")
    if isinstance(obj, list):
        return [_nan(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _nan(v) for k, v in obj.items()}
    return obj


# ------------------------------------------------------------------------------------------- caching

def _key(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def step_key(config: dict[str, Any]) -> str:
    """What the step fingerprint depends on: the config without the seed, the angle interval as on/off."""
    cfg = {k: v for k, v in config.items() if k not in ("seed", "angle_every", "compile")}
    return _key(cfg, bool(config.get("angle_every")))


def data_key(config: dict[str, Any]) -> str:
    return _key(config["task"], config["seed"], config["batch_size"], config["val_size"], config.get("augment"))


class Cache:
    """Today's fingerprints, by ``<code hash>:<key>``: the committed file (read) and the user cache (read/write)."""

    def __init__(self) -> None:
        self.entries: dict[str, Any] = {}
        for path in (COMMITTED, user_cache()):
            with contextlib.suppress(OSError, ValueError):
                self.entries.update(json.loads(path.read_text()).get("entries", {}))
        self.dirty = False

    def get(self, code: str, kind: str, key: str, make: Any) -> Any:
        name = f"{code}:{kind}:{key}"
        if name not in self.entries:
            self.entries[name] = make()
            self.dirty = True
        return self.entries[name]

    def save(self, path: Path | None = None, only: set[str] | None = None) -> Path:
        """Write the cache (``only``: these code hashes, e.g. today's, for the committed file)."""
        path = path or user_cache()
        keep = {k: v for k, v in sorted(self.entries.items()) if only is None or k.split(":")[0] in only}
        from bioplaus_bench.records import write_json_atomic

        write_json_atomic(path, {"version": VERSION, "entries": keep})
        self.dirty = False
        return path


_CACHE: Cache | None = None


def cache() -> Cache:
    global _CACHE
    if _CACHE is None:
        _CACHE = Cache()
    return _CACHE


def cached(code: str, kind: str, key: str, make: Any) -> Any:
    """``make()``, computed once per code hash and key and kept in the user cache."""
    c = cache()
    value = c.get(code, kind, key, make)
    if c.dirty:
        with contextlib.suppress(OSError):
            c.save()
    return value


def current(config: dict[str, Any], code: str) -> dict[str, Any]:
    """Today's fingerprint of ``config`` (code hash ``code``), from the cache or computed (and cached)."""
    step = cached(code, "step", step_key(config), lambda: step_fingerprint(config))
    data = cached(code, "data", data_key(config), lambda: data_fingerprint(config))
    return {"version": VERSION, "step": step, "data": data}
