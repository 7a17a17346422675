"""Per-epoch training time of each rule, against a FLOP bound measured at the shapes the rule actually uses.

For every rule it runs the harness for ``--epochs`` epochs (the first is warm-up; the figures are the mean of
the others) and reports: seconds per epoch, the share of it spent training feedback weights, the ratio to BP,
the FLOPs of one epoch (``torch.utils.flop_counter`` on a real ``rule.step``, scaled to the epoch), and the
ratio to a **FLOP bound at the measured shape rate**: every matmul and convolution one real step issues
(forward, backward and feedback training alike) is recorded with its shapes, each distinct call is timed alone
on random tensors of those shapes in this same run, and the bound is the sum over the step's calls, scaled to
the epoch. It is the time the step would take if it did nothing but its matmuls at the speed this machine
reaches on those exact shapes, so ``x bound`` is how far a rule is from its own arithmetic. It splits into two
factors: ``mm s`` times the same calls where they run, inside ten real steps (synchronised on a GPU), so
``mm/bnd`` is what the step's memory traffic costs the matmuls themselves (cold caches, fresh outputs) and
``ep/mm`` is everything else the epoch does (elementwise work, optimiser steps, autograd, Python). When BP is timed, a
last row (``bp plain``) times the five-line PyTorch loop of ``benchmarks/harness_overhead.py`` (forward,
cross-entropy, zero_grad, backward, step; no harness) against BP's bound: how far eager PyTorch itself stays
from the bound at these shapes.

    python benchmarks/epoch_time.py                                # every rule, MNIST MLP, batch 128
    python benchmarks/epoch_time.py --algos bp,dtp,l-drl,fw-dtp --arch lenet --device cuda

Prints a table with the load average before and after; nothing here is a test. Needs the MNIST files
(BIOPLAUS_DATA or --data-dir). Time only on a quiet machine.
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile
import time

import torch
from harness_overhead import minimal_epochs  # the plain PyTorch loop (this folder, on the script's path)
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from bioplaus_bench import get_algorithm, get_arch, get_task, load_all, registry
from bioplaus_bench.config import resolve
from bioplaus_bench.harness import RunSpec, create_rule, pick_device, train
from bioplaus_bench.records import load_average

DEFAULT_ALGOS = ("bp", "fa", "dfa", "usf", "frsf", "shallow", "dni", "cdni", "tp", "dtp", "drl", "l-drl", "fw-dtp",
                 "kp", "wm", "drtp", "pc", "np")
aten = torch.ops.aten
HEAVY = {aten.mm.default, aten.addmm.default, aten.bmm.default, aten.convolution.default,
         aten.convolution_backward.default}


def _spec(a):
    if isinstance(a, torch.Tensor):
        return ("T", tuple(a.shape), a.dtype, a.is_contiguous())
    if isinstance(a, list | tuple):
        return tuple(_spec(x) for x in a)
    return a


def _make(spec, device):
    if isinstance(spec, tuple) and spec and spec[0] == "T":
        t = torch.randn(*spec[1], dtype=spec[2], device=device)
        return t if spec[3] or t.dim() < 2 else t.t().contiguous().t()
    if isinstance(spec, tuple):
        return [_make(s, device) for s in spec]
    return spec


class HeavyOps(TorchDispatchMode):
    """Counts every matmul / convolution call of a step by (op, argument shapes), times each one where it runs
    (synchronised on a GPU), and counts the step's FLOPs with ``torch.utils.flop_counter``'s formulas
    (FlopCounterMode itself hooks modules, which breaks rules that call ``torch.autograd.grad`` inside their
    step, e.g. PC)."""

    def __init__(self, device: torch.device) -> None:
        super().__init__()
        self.device = device
        self.calls: collections.Counter = collections.Counter()
        self.flops = 0
        self.seconds = 0.0  # wall time of the matmuls / convolutions themselves, inside the real step

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        heavy = func in HEAVY
        if heavy:
            _sync(self.device)
            t0 = time.perf_counter()
        out = func(*args, **kwargs)
        if heavy:
            _sync(self.device)
            self.seconds += time.perf_counter() - t0
            self.calls[(func, _spec(args))] += 1
        if func.overloadpacket in flop_registry:
            self.flops += flop_registry[func.overloadpacket](*args, **kwargs, out_val=out)
        return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(func, spec, device: torch.device, min_seconds: float = 0.05) -> float:
    """Seconds per call of one recorded matmul / convolution, alone, on random tensors of its shapes."""
    args = _make(spec, device)
    for _ in range(2):
        func(*args)
    _sync(device)
    n, t0 = 0, time.perf_counter()
    while True:
        func(*args)
        n += 1
        if n % 5 == 0:
            _sync(device)
            if time.perf_counter() - t0 > min_seconds:
                return (time.perf_counter() - t0) / n


def step_profile(algo: str, arch: str, batch_size: int, device: torch.device, reps: int = 10) -> tuple[float, ...]:
    """(FLOPs, FLOP-bound seconds, in-step matmul seconds) of one rule.step on a random MNIST-shaped batch
    (feedback training included), each the mean over ``reps`` steps."""
    entry, task = get_algorithm(algo), get_task("mnist")
    cfg, _ = resolve(entry, None, {}, arch)
    torch.manual_seed(0)
    model = get_arch(arch).build(task.input_shape, task.num_classes).to(device)
    rule = create_rule(entry, cfg, model, task, 2)
    x = torch.randn(batch_size, *task.input_shape, device=device)
    y = torch.randint(0, 10, (batch_size,), device=device)
    rule.step(x, y)
    with HeavyOps(device) as ops:
        for _ in range(reps):
            rule.step(x, y)
    bound = sum(n * time_call(func, spec, device) for (func, spec), n in ops.calls.items())
    return ops.flops / reps, bound / reps, ops.seconds / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algos", default=",".join(DEFAULT_ALGOS), help="comma-separated rules (missing ones skipped)")
    ap.add_argument("--arch", default="mlp", help="mlp (784-256x5-10) or lenet")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per rule (epoch 1 is warm-up)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--compile", action="store_true", help="torch.compile each rule (RunSpec.compile)")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()

    load_all()
    device = pick_device(args.device)
    algos = [a for a in args.algos.split(",") if a in registry.ALGORITHMS]
    n_train = 55000
    steps = -(-n_train // args.batch_size)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {os.cpu_count()} cores"
    print(f"load average at start {load_average()} ({name}); torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    which = f"mean of epochs 2..{args.epochs}" if args.epochs > 1 else "epoch 1 (the only one)"
    print(f"MNIST {args.arch}, {n_train} training samples, batch {args.batch_size}, {which}"
          f"{', torch.compile (epoch 1 includes compiling)' if args.compile else ''}; "
          "bound = the step's matmuls/convolutions timed alone at their shapes, now; mm s = the same calls timed "
          "where they run inside real steps; x bound = mm/bnd x ep/mm\n")
    head = (f"{'rule':<8} {'epoch 1 s':>9} {'epoch s':>8} {'feedback':>8} {'x BP':>6} {'GFLOP/ep':>9} "
            f"{'bound s':>8} {'x bound':>8} {'GFLOP/s':>8} {'mm s':>8} {'mm/bnd':>7} {'ep/mm':>7} {'test acc':>8}")
    print(head)
    print("-" * len(head))
    bp_time, bp_work = None, None
    with tempfile.TemporaryDirectory() as out:
        for algo in algos:
            rec = train(RunSpec(algo=algo, task="mnist", arch=args.arch, epochs=args.epochs, device=args.device,
                                batch_size=args.batch_size, data_dir=args.data_dir, out=out, progress=False,
                                compile=args.compile))
            if rec["status"] != "completed":  # a diverged rule is a row of the table, not the end of it
                print(f"{algo:<8} {rec['status']}: {rec.get('error', '')}")
                continue
            f = rec["final"]
            flops, bound, in_step = (v * steps for v in step_profile(algo, args.arch, args.batch_size, device))
            if algo == "bp":
                bp_time, bp_work = f["epoch_seconds"], (flops, bound, in_step)
            vs_bp = f"{f['epoch_seconds'] / bp_time:6.2f}" if bp_time else f"{'-':>6}"
            print(f"{algo:<8} {f['first_epoch_seconds']:9.2f} {f['epoch_seconds']:8.2f} "
                  f"{f['feedback_seconds'] / f['epoch_seconds']:8.0%} {vs_bp} "
                  f"{flops / 1e9:9.1f} {bound:8.3f} {f['epoch_seconds'] / bound:8.2f} {flops / 1e9 / bound:8.0f} "
                  f"{in_step:8.3f} {in_step / bound:7.2f} {f['epoch_seconds'] / in_step:7.2f} {f['test_acc']:8.4f}")
    if bp_work is not None:  # the same matmuls as BP's step, without the harness
        times = minimal_epochs(args.arch, args.batch_size, args.epochs, device, args.data_dir)
        steady = times[1:] or times  # as the harness: epochs 2.., epoch 1 when it is the only one
        sec, (flops, bound, in_step) = sum(steady) / len(steady), bp_work
        print(f"{'bp plain':<8} {times[0]:9.2f} {sec:8.2f} {0:8.0%} {sec / bp_time:6.2f} {flops / 1e9:9.1f} "
              f"{bound:8.3f} {sec / bound:8.2f} {flops / 1e9 / bound:8.0f} {in_step:8.3f} {in_step / bound:7.2f} "
              f"{sec / in_step:7.2f} {'-':>8}")
    print(f"\nload average at the end {load_average()} (timings are comparable only when it stayed below the cores)")


if __name__ == "__main__":
    main()
