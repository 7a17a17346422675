"""The one training loop. It owns seeding, data, timing, evaluation, checkpoints and run records.

Reader's path: ``bench run`` (cli.py) -> ``train`` (this file) -> ``rule.step`` (algorithms/<rule>.py).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bioplaus_bench import config as cfgmod
from bioplaus_bench import data as datamod
from bioplaus_bench.generated import is_generated
from bioplaus_bench.measure import angles_to_bp
from bioplaus_bench.records import (
    FINISHED,
    SCHEMA_VERSION,
    DiskFull,
    code_files,
    code_hash,
    collapsed,
    drop_link,
    environment,
    load_average,
    read_record,
    record_lock,
    record_name,
    repro,
    repro_differs,
    restore_predecessor,
    save_torch_atomic,
    set_aside_for_rerun,
    set_aside_predecessor,
    supersede,
    write_json_atomic,
)
from bioplaus_bench.registry import RegistryError, get_algorithm, get_arch, get_task
from bioplaus_bench.rule import task_loss

log = logging.getLogger(__name__)

# Divergence: a run stops with status "diverged" as soon as a batch loss is not finite, or the mean loss of the
# last DIVERGE_WINDOW batches exceeds DIVERGE_FACTOR x max(1, loss of the run's first batch).
DIVERGE_FACTOR = 100.0
DIVERGE_WINDOW = 10


class Diverged(Exception):
    """The training loss left the documented bound (see DIVERGE_FACTOR)."""


class RunLocked(RuntimeError):
    """Another process is training the same configuration into the same folder."""


class RunMismatch(RegistryError):
    """A finished record of the same config was made under settings that change its numbers (threads, device)."""


@dataclass
class RunSpec:
    """One run: the only place run-level fields and their defaults live. ``bench run``, ``grid``,
    ``sensitivity`` and ``paper`` build their options from these fields (``cli.run_options``), a study is one
    of these plus axes and seeds (``grid.Study``), a paper cell one plus its published value. Unset fields fall
    back to the rule's preset, then to the rule's defaults for the task (``task_defaults`` of its registration),
    then to the task's."""

    algo: str  # rule name from `bench list`, or package.module:Class
    task: str  # task name from `bench list`
    arch: str | None = None  # architecture (default: the preset's, else the task's)
    preset: str | None = None  # named paper configuration of the rule (`bench show RULE` lists them)
    epochs: int | None = None  # epoch budget (default: the preset's, else the task's)
    batch_size: int | None = None  # training batch size (default: the preset's, else the task's)
    seed: int = 0  # seed for initialisation, shuffling, augmentation and noise
    overrides: dict[str, str] = field(default_factory=dict)  # rule hyperparameters, --set key=value
    val_size: int | None = None  # training samples held out for validation, 0 = none (default: the task's)
    angle_every: int = 0  # measure the angle to BP every K training batches; 0 = off
    device: str = "auto"  # auto | cpu | cuda
    data_dir: str | None = None  # data root (default: $BIOPLAUS_DATA, else ~/.cache/bioplaus_bench)
    out: str = "runs"  # folder for the run record (one JSON per run)
    max_batches: int | None = None  # train on at most this many batches per epoch (smoke budgets)
    augment: bool | None = None  # random crop + flip of training batches (default: the task's; CIFAR on)
    defaults_from: str | None = None  # a registered task whose run defaults a folder task takes (e.g. cifar10)
    compile: bool = False  # torch.compile the network's blocks and feedback maps (the first steps pay the compile)
    checkpoint: bool = False  # save a resumable checkpoint after every epoch (grids turn it on)
    progress: bool | None = None  # progress bar; None = only on a terminal


@dataclass
class Resolved:
    spec: RunSpec
    entry: Any
    rule_cfg: Any
    task: datamod.TaskSpec
    config: dict[str, Any]  # the resolved, hashable run config written into the record
    path: Path  # where the record goes


def resolve(spec: RunSpec) -> Resolved:
    """Check every name and hyperparameter before any work; errors are one line naming accepted values."""
    entry = get_algorithm(spec.algo)
    task = get_task(spec.task)
    like = task  # whose defaults: the task's own, or (a folder standing in for it) a registered task's
    if spec.defaults_from is not None:
        like = get_task(spec.defaults_from)
        if like.input_shape != task.input_shape or like.loss != task.loss:
            raise RegistryError(f"--defaults-from {like.name} needs inputs of shape {like.input_shape}; "
                                f"{task.name} has {task.input_shape}")
    _, preset_run = cfgmod.preset_settings(entry, spec.preset)
    run_defaults = {"arch": like.default_arch, "epochs": like.epochs, "batch_size": like.batch_size,
                    "val_size": task.val_size, **entry.task_defaults.get(like.name, {}), **preset_run}
    arch = spec.arch or run_defaults["arch"]
    get_arch(arch)
    rule_cfg, _ = cfgmod.resolve(entry, spec.preset, spec.overrides, arch)
    if arch not in task.archs:
        raise RegistryError(f"architecture {arch!r} does not fit task {task.name}; accepted: {', '.join(task.archs)}")
    if entry.supports is not None and not entry.supports(arch):
        ok = [a for a in task.archs if entry.supports(a)]
        raise RegistryError(f"rule {entry.name} is not defined on architecture {arch!r}; accepted for task "
                            f"{task.name}: {', '.join(ok) or 'none'} (--arch)")
    epochs = spec.epochs if spec.epochs is not None else run_defaults["epochs"]
    batch = spec.batch_size if spec.batch_size is not None else run_defaults["batch_size"]
    val = spec.val_size if spec.val_size is not None else run_defaults["val_size"]
    for name, value, low in (("epochs", epochs, 1), ("batch size", batch, 1), ("val size", val, 0),
                             ("angle interval", spec.angle_every, 0), ("seed", spec.seed, 0),
                             ("max batches", 1 if spec.max_batches is None else spec.max_batches, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise RegistryError(f"bad {name} {value!r}; accepted: an integer >= {low}")
    if task.n_train is not None and val >= task.n_train:
        raise RegistryError(f"bad val size {val}: {task.name} has {task.n_train} training samples; accepted: "
                            f"0 to {task.n_train - 1}")
    datamod.check_data_dir(spec.data_dir)
    pick_device(spec.device)
    check_rule(entry, rule_cfg, arch, task, epochs)
    config = {
        "algo": spec.algo, "task": task.name, "arch": arch, "preset": spec.preset, "seed": spec.seed,
        "epochs": epochs, "batch_size": batch, "val_size": val, "angle_every": spec.angle_every,
        "hparams": dataclasses.asdict(rule_cfg),
    }
    if spec.defaults_from is not None:  # only when set, so that other hashes stay as they were
        config["defaults_from"] = like.name
    if task.manifest is not None:  # a folder of images: its contents are part of what the run is
        config["folder_manifest"] = task.manifest
    if spec.max_batches is not None:  # only when set, so that full-budget hashes stay as they were
        config["max_batches"] = spec.max_batches
    if spec.compile:  # compiled kernels may round differently: a separate configuration
        config["compile"] = True
    if spec.augment is not None and spec.augment != task.augment:  # likewise: only a change from the task's
        config["augment"] = spec.augment
        task = dataclasses.replace(task, augment=spec.augment)
    path = Path(spec.out) / f"{record_name(config)}.json"
    return Resolved(spec, entry, rule_cfg, task, config, path)


def create_rule(entry: Any, rule_cfg: Any, model: torch.nn.Module, task: datamod.TaskSpec, epochs: int) -> Any:
    """The one way a rule is built (harness, tests, benchmarks): ``Rule(model, cfg, task, epochs)``."""
    return entry.cls(model, rule_cfg, task, epochs)


def check_rule(entry: Any, rule_cfg: Any, arch: str, task: datamod.TaskSpec, epochs: int) -> None:
    """Build the rule on a network on the ``meta`` device (no memory, no data): a setting that the rule's
    constructor rejects (a per-layer list of the wrong length, an unknown init) fails here, before any work."""
    with torch.device("meta"):
        model = get_arch(arch).build(task.input_shape, task.num_classes)
    try:
        create_rule(entry, rule_cfg, model, task, epochs)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise RegistryError(f"invalid hyperparameters for {entry.name} on {arch}: {exc}") from None


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise RegistryError(f"unknown device {name!r}; accepted: auto, cpu, cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise RegistryError("device 'cuda' requested but no GPU is visible to torch")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches: datamod.Batches, loss: str) -> dict[str, float]:
    model.eval()
    n, total_loss, top1, top5 = 0, 0.0, 0, 0
    for x, y in batches:
        out = model(x)
        total_loss += task_loss(loss, out, y, reduction="sum").item()
        if loss == "ce":
            k = min(5, out.shape[1])
            pred = out.topk(k, dim=1).indices
            top1 += (pred[:, 0] == y).sum().item()
            top5 += (pred == y[:, None]).any(1).sum().item()
        n += len(y)
    model.train()
    nan = float("nan")
    return {"loss": total_loss / n, "acc": top1 / n if loss == "ce" else nan,
            "top5": top5 / n if loss == "ce" else nan}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_threads() -> int:
    """The torch threads a run started now gets: the SLURM job's CPUs, the local grid's share, else torch's."""
    threads = os.environ.get("SLURM_CPUS_PER_TASK") or os.environ.get("BIOPLAUS_THREADS")
    return int(threads) if threads else torch.get_num_threads()


def run_repro(spec: RunSpec) -> dict[str, Any]:
    """What, besides the config, decides a run's numbers (``records.repro``): the record keeps it."""
    return {"threads": run_threads(), "device": pick_device(spec.device).type, "deterministic": True}


def train(spec: RunSpec, resolved: Resolved | None = None, force: bool = False) -> dict[str, Any]:
    """Run one (rule, task, seed) and write its record; returns the record. A crash writes a failed record.

    A finished (completed, diverged or collapsed) record of the same config is never overwritten: it is
    returned as it is (``skipped``), or with ``force`` moved aside to ``<run id>.superseded-<time>.json`` before
    the new run; if the rerun does not finish, even by SIGKILL, the finished record goes back in place (here,
    or by the next command that reads the folder). A finished record made with other torch threads or on
    another device is not this run's result: the run refuses (``RunMismatch``) unless ``force``.
    An unfinished run resumes from its epoch checkpoint when ``spec.checkpoint`` is set."""
    r = resolved or resolve(spec)
    with record_lock(r.path) as locked:
        if not locked:
            raise RunLocked(f"another process is training {r.path.stem} into {r.path.parent}; wait for it")
        old, _ = read_record(r.path) if r.path.exists() else (None, None)
        if old is not None and (msg := restore_predecessor(r.path, old)):
            log.warning("%s", msg)
            old, _ = read_record(r.path)
        kept = None
        if old is not None and old["status"] in FINISHED:
            if not force:
                differs = repro_differs(repro(old), run_repro(spec))
                if differs:
                    raise RunMismatch(
                        f"{r.path} is finished but was made with other settings ({differs}: numbers differ "
                        f"with them), so it is not this run's result; BIOPLAUS_THREADS={repro(old)['threads']} "
                        "(on its device) reproduces it, --force reruns here and keeps it")
                log.info("%s already %s: %s (--force reruns it and keeps this record beside the new one)",
                         r.path.stem, old["status"], r.path)
                return {**old, "skipped": True}
            kept = set_aside_for_rerun(r.path)
            log.info("kept the earlier %s record as %s", old["status"], kept)
        else:  # a rerun whose predecessor was set aside earlier (bench rebuild --rerun), or a resumed --force
            kept = set_aside_predecessor(r.path)
        try:
            rec = _train_locked(spec, r, kept.name if kept else None)
        except BaseException:
            if kept is not None:  # the rerun did not finish: the finished record goes back in its place
                if r.path.exists():
                    supersede(r.path, "unfinished-rerun")
                os.replace(kept, r.path)
                drop_link(r.path)
                log.info("the rerun did not finish; %s is the earlier finished record again", r.path)
            raise
        drop_link(r.path)
        return rec


def _train_locked(spec: RunSpec, r: Resolved, supersedes: str | None = None) -> dict[str, Any]:
    device = pick_device(spec.device)
    torch.set_num_threads(run_threads())  # the job's CPU allocation (SLURM) or the local grid's share of the cores
    files = code_files(r.entry.cls)
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "run_id": r.path.stem, "status": "running",
        **({"supersedes": supersedes} if supersedes else {}),  # near the top: readers look for it cheaply
        "config": r.config, "task_synthetic": r.task.synthetic, "started": time.time(),
        **({"num_classes": r.task.num_classes} if r.task.loss == "ce" else {}),  # chance, without the task
        "command": " ".join(sys.argv) if sys.argv and sys.argv[0].endswith("bench") else None,
        "env": environment(device), "pid": os.getpid(), "code_hash": code_hash(files), "code_files": files,
        "repro": run_repro(spec), "load_avg_start": load_average(),
    }
    ckpt_path = r.path.with_suffix(".ckpt.pt")
    write_json_atomic(r.path, record)  # a "running" record, so `bench status` can see the run
    weights = None
    try:
        weights = _train(r, device, record, ckpt_path)
        record["status"] = "completed"
        if why := collapsed(record):
            record["status"], record["error"] = "collapsed", why
            log.warning("%s %s", r.path.stem, why)
    except Diverged as exc:
        record["status"], record["error"] = "diverged", str(exc)
        log.warning("%s diverged: %s", r.path.stem, exc)
    except KeyboardInterrupt:
        record["status"], record["error"] = "interrupted", "KeyboardInterrupt"
        _write_last(r.path, record)
        raise
    except Exception as exc:
        record["status"] = "failed"
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc()
        record["load_avg_end"] = load_average()
        _write_last(r.path, record)
        raise
    record["finished"] = time.time()
    record["load_avg_end"] = load_average()
    # generated data and smoke budgets (max_batches) are never results: no fingerprint to keep (they count as
    # stale once the code changes)
    if not record.get("data_generated") and r.config.get("max_batches") is None:
        record["fingerprint"] = _fingerprint(r.config, spec.data_dir)
    write_json_atomic(r.path, record)  # the result first: a checkpoint or weights file that does not fit loses nothing
    ckpt_path.unlink(missing_ok=True)
    if weights is not None:  # the final weights, for bit-for-bit comparisons of resumed runs
        try:
            save_torch_atomic(weights, r.path.with_suffix(".weights.pt"), "the final weights")
        except DiskFull as exc:
            log.warning("%s finished and its record is written, but its final weights were not: %s", r.path.stem, exc)
    return record


def _fingerprint(config: dict[str, Any], data_dir: str | None) -> dict[str, Any] | None:
    """The record's behavioural fingerprint (``fingerprint.compute``); a failure to make one never fails a run."""
    from bioplaus_bench import fingerprint

    try:
        return fingerprint.compute(config, Path(data_dir) if data_dir else None)
    except Exception as exc:
        log.warning("no fingerprint for %s (%s: %s): the record counts as stale once the code changes",
                    config.get("algo"), type(exc).__name__, exc)
        return None


def _write_last(path: Path, record: dict[str, Any]) -> None:
    """Write a failed or interrupted record; if even that does not fit, say so instead of hiding the first error."""
    try:
        write_json_atomic(path, record)
    except OSError as exc:
        log.error("could not write the %s record %s: %s", record["status"], path, exc)


def _load_checkpoint(path: Path, device: torch.device, record: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint's state, or None after moving an unreadable one aside (the run then starts over; the
    record's ``checkpoint_discarded`` says so, for the grid's console)."""
    try:
        state = torch.load(path, map_location=device, weights_only=False)
        if not isinstance(state, dict) or not {"rule", "gen", "curves", "epoch"} <= set(state):
            raise ValueError("not a bench checkpoint")
        return state
    except Exception as exc:  # truncated, corrupt or foreign: never a reason to fail every rerun
        bad = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        os.replace(path, bad)
        why = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}" if str(exc) else type(exc).__name__
        record["checkpoint_discarded"] = f"checkpoint {path.name} was unreadable ({why}); moved to {bad.name}"
        log.warning("checkpoint %s is unreadable (%s); moved it to %s and starting the run over", path, why,
                    bad.name)
        return None


def _train(r: Resolved, device: torch.device, record: dict[str, Any], ckpt_path: Path) -> dict[str, Any] | None:
    """The epochs; fills ``record``. Returns the final weights to save (with ``spec.checkpoint``) or None."""
    cfg, task, spec = r.config, r.task, r.spec
    seed_everything(cfg["seed"])
    root = datamod.data_root(spec.data_dir)
    splits = datamod.load_splits(task, root, cfg["val_size"], device)
    record["data_generated"] = is_generated(root) and not task.synthetic  # stand-in files: not a result
    state = _load_checkpoint(ckpt_path, device, record) if spec.checkpoint and ckpt_path.exists() else None
    model = get_arch(cfg["arch"]).build(task.input_shape, task.num_classes).to(device)
    rule = create_rule(r.entry, r.rule_cfg, model, task, cfg["epochs"])
    if spec.compile:
        rule.compile()
    record["n_params"] = sum(p.numel() for p in model.parameters())
    gen = torch.Generator().manual_seed(cfg["seed"])  # shuffling and augmentation
    train_b = datamod.Batches(splits["train"], task, cfg["batch_size"], train=True, generator=gen)
    eval_bs = max(cfg["batch_size"], 1000)
    evals = {k: datamod.Batches(splits[k], task, eval_bs, train=False) for k in ("val", "test") if k in splits}
    curves: dict[str, list] = {k: [] for k in (
        "epoch", "train_loss", "train_acc", "val_acc", "val_top5", "val_loss", "test_acc", "test_top5",
        "test_loss", "epoch_seconds", "feedback_seconds", "eval_seconds", "angles", "angles_last")}
    start_epoch, warmup_s, warmup_fb = 0, 0.0, 0.0
    first_loss: float | None = None
    recent: list[float] = []

    if state is not None:
        rule.load_state_dict(state["rule"])
        gen.set_state(state["gen"])
        torch.set_rng_state(state["torch_rng"])
        random.setstate(state["py_rng"])
        np.random.set_state(state["np_rng"])
        curves, start_epoch = state["curves"], state["epoch"]
        curves.setdefault("angles_last", [{} for _ in curves["angles"]])  # a checkpoint from before the field
        warmup_s, warmup_fb = state["warmup"]
        first_loss = state.get("first_loss")
        record["resumed_from_epoch"] = start_epoch
        log.info("resuming %s from its checkpoint after epoch %d", r.path.stem, start_epoch)
    else:
        _sync(device)
        t0 = time.perf_counter()
        rule.warmup(train_b)  # feedback-only pre-training epochs (counted in epoch 1's time)
        _sync(device)
        warmup_s, warmup_fb = time.perf_counter() - t0, rule.feedback_seconds

    show = sys.stderr.isatty() if spec.progress is None else spec.progress
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeElapsedColumn(), TextColumn("{task.fields[info]}"))
    with Progress(*columns, disable=not show, transient=False) as bar:
        n_batches = min(len(train_b), cfg.get("max_batches") or len(train_b))
        ptask = bar.add_task(f"{cfg['algo']} {cfg['task']}", total=cfg["epochs"] * n_batches,
                             completed=start_epoch * n_batches, info="")
        tick = max(1, n_batches // 10)
        for epoch in range(start_epoch, cfg["epochs"]):
            rule.feedback_seconds = 0.0
            loss_sum, seen, angle_s = 0.0, 0, 0.0
            pending: list[tuple[int, torch.Tensor, int]] = []  # (batch index, summed loss on the device, size)
            correct_dev = torch.zeros((), dtype=torch.long, device=device)
            angle_acc: dict[str, list[float]] = {}
            _sync(device)
            t0 = last_log = time.perf_counter()
            for i, (x, y) in enumerate(train_b):
                if cfg.get("max_batches") is not None and i >= cfg["max_batches"]:
                    break
                if spec.angle_every and i % spec.angle_every == 0:
                    _sync(device)
                    ta = time.perf_counter()
                    fb_before = rule.feedback_seconds
                    for name, a in angles_to_bp(rule, x, y).items():
                        angle_acc.setdefault(name, []).append(a)
                    rule.feedback_seconds = fb_before  # the copy's feedback training is not ours
                    _sync(device)
                    angle_s += time.perf_counter() - ta
                out = rule.step(x, y)
                with torch.no_grad():  # kept on the device and read once per DIVERGE_WINDOW batches: no host sync
                    pending.append((i, task_loss(task.loss, out, y, reduction="sum"), len(y)))
                    if task.loss == "ce":
                        correct_dev += (out.argmax(1) == y).sum()
                seen += len(y)
                if len(pending) == DIVERGE_WINDOW:
                    loss_sum, first_loss = _read_losses(pending, loss_sum, first_loss, recent, epoch, record, curves)
                bar.advance(ptask)
                # batch jobs: a line per 10% of an epoch, at most one per 10 s
                if not show and (i + 1) % tick == 0 and i + 1 < n_batches and time.perf_counter() - last_log > 10:
                    last_log = time.perf_counter()
                    log.info("%s epoch %d: %d/%d batches, %.0fs", r.path.stem, epoch + 1, i + 1, n_batches,
                             time.perf_counter() - t0)
            loss_sum, first_loss = _read_losses(pending, loss_sum, first_loss, recent, epoch, record, curves)
            correct = int(correct_dev)
            _sync(device)
            seconds = time.perf_counter() - t0 - angle_s
            fb = rule.feedback_seconds
            if epoch == 0:
                seconds, fb = seconds + warmup_s, fb + warmup_fb
            rule.end_epoch()
            te = time.perf_counter()
            metrics = {k: evaluate(rule.model, b, task.loss) for k, b in evals.items()}
            curves["eval_seconds"].append(time.perf_counter() - te)
            curves["epoch"].append(epoch + 1)
            curves["train_loss"].append(loss_sum / seen)
            curves["train_acc"].append(correct / seen if task.loss == "ce" else float("nan"))
            for k in ("val", "test"):
                m = metrics.get(k, {"acc": float("nan"), "top5": float("nan"), "loss": float("nan")})
                curves[f"{k}_acc"].append(m["acc"])
                curves[f"{k}_top5"].append(m["top5"])
                curves[f"{k}_loss"].append(m["loss"])
            curves["epoch_seconds"].append(seconds)
            curves["feedback_seconds"].append(fb)
            curves["angles"].append({k: float(np.nanmean(v)) for k, v in angle_acc.items()})  # the epoch's mean
            curves["angles_last"].append({k: v[-1] for k, v in angle_acc.items()})  # its last measurement
            msg = (f"epoch {epoch + 1}/{cfg['epochs']} loss {curves['train_loss'][-1]:.4f} "
                   f"train {curves['train_acc'][-1]:.4f} val {curves['val_acc'][-1]:.4f} "
                   f"test {curves['test_acc'][-1]:.4f} {seconds:.1f}s")
            if task.loss == "mse":
                msg += f" test_mse {curves['test_loss'][-1]:.4g}"
            bar.update(ptask, info=msg.split(" ", 2)[2])
            log.info("%s %s", r.path.stem, msg)
            record["first_batch_loss"] = first_loss
            if spec.checkpoint and epoch + 1 < cfg["epochs"]:  # after the last epoch the record itself is next
                save_torch_atomic({"rule": rule.state_dict(), "gen": gen.get_state(),
                                   "torch_rng": torch.get_rng_state(), "py_rng": random.getstate(),
                                   "np_rng": np.random.get_state(), "curves": curves, "epoch": epoch + 1,
                                   "warmup": (warmup_s, warmup_fb), "first_loss": first_loss}, ckpt_path)
            write_json_atomic(r.path, {**record, "curves": curves, "epochs_done": epoch + 1})

    record["curves"] = curves
    record["final"] = final_metrics(curves, warmup_s, warmup_fb)
    return rule.model.state_dict() if spec.checkpoint else None


def _read_losses(pending: list[tuple[int, torch.Tensor, int]], loss_sum: float, first: float | None,
                 recent: list[float], epoch: int, record: dict[str, Any], curves: dict[str, list]
                 ) -> tuple[float, float | None]:
    """Read the pending batch losses in one transfer, add them to the epoch's sum and check each, in order, for
    divergence (the first bad batch is named exactly, though up to DIVERGE_WINDOW - 1 later steps already ran)."""
    if pending:
        values = torch.stack([loss for _, loss, _ in pending]).tolist()
        for (i, _, n), v in zip(pending, values, strict=True):
            loss_sum += v
            first = _check_divergence(v / n, first, recent, epoch, i, record, curves)
        pending.clear()
    return loss_sum, first


def _check_divergence(loss: float, first: float | None, recent: list[float], epoch: int, batch: int,
                      record: dict[str, Any], curves: dict[str, list]) -> float:
    """Raise Diverged (keeping the curves of the finished epochs) when the batch loss leaves the bound."""
    first = loss if first is None else first
    recent.append(loss)
    del recent[:-DIVERGE_WINDOW]
    bound = DIVERGE_FACTOR * max(1.0, first)
    window = sum(recent) / len(recent)
    if not math.isfinite(loss) or (len(recent) == DIVERGE_WINDOW and window > bound):
        record["curves"] = curves
        record["diverged_at"] = {"epoch": epoch + 1, "batch": batch + 1, "loss": loss, "bound": bound}
        what = f"batch loss {loss:.4g}" if not math.isfinite(loss) else \
            f"mean loss of the last {DIVERGE_WINDOW} batches {window:.4g} > {DIVERGE_FACTOR:g} x max(1, first batch)"
        raise Diverged(f"{what} at epoch {epoch + 1}, batch {batch + 1} (bound {bound:.4g})")
    return first


def mark_failed(r: Resolved, error: str) -> None:
    """Record a run that died without writing its own failure (SIGKILL, scancel, out of memory).
    A completed record is never overwritten."""
    old = (read_record(r.path)[0] if r.path.exists() else None) or {}
    if old.get("status") in FINISHED:
        return
    rec = {"schema_version": SCHEMA_VERSION, "run_id": r.path.stem, "config": r.config,
           "task_synthetic": r.task.synthetic, **old, "status": "failed", "error": error, "finished": time.time()}
    write_json_atomic(r.path, rec)


def final_metrics(c: dict[str, list], warmup_s: float, warmup_fb: float) -> dict[str, Any]:
    val = np.array(c["val_acc"], dtype=float)
    best = int(np.nanargmax(val)) if np.isfinite(val).any() else len(val) - 1
    steady = c["epoch_seconds"][1:] or c["epoch_seconds"]
    steady_fb = c["feedback_seconds"][1:] or c["feedback_seconds"]
    return {
        "test_acc": c["test_acc"][-1], "test_top5": c["test_top5"][-1], "test_loss": c["test_loss"][-1],
        "val_acc": c["val_acc"][-1], "best_val_acc": c["val_acc"][best], "best_val_epoch": best + 1,
        "test_acc_at_best_val": c["test_acc"][best], "train_loss": c["train_loss"][-1],
        "first_epoch_seconds": c["epoch_seconds"][0],
        "epoch_seconds": float(np.mean(steady)),  # mean over epochs 2.. (epoch 1 is warm-up)
        "feedback_seconds": float(np.mean(steady_fb)),
        "warmup_seconds": warmup_s, "warmup_feedback_seconds": warmup_fb,
        "train_seconds_total": float(np.sum(c["epoch_seconds"])),
        "final_angles": c["angles"][-1] if c["angles"] else {},  # mean over the last epoch's measurements
        "final_angles_last": c["angles_last"][-1] if c["angles_last"] else {},  # the last measurement
    }
