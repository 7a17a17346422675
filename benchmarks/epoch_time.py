"""Per-epoch training time of each rule on the MNIST MLP (784-256x5-10), against the FLOP limit.

For every rule it runs the harness for ``--epochs`` epochs (the first is warm-up; the figure is the mean of
the others), counts the FLOPs of one real ``rule.step`` with ``torch.utils.flop_counter.FlopCounterMode``
(matmuls/convolutions, forward, backward and feedback training alike), scales that to one epoch, and
divides the measured time by the time those FLOPs take at the matmul peak: ``x limit`` uses
``--peak-gflops`` (400, the figure quoted for these machines), ``x meas`` the peak measured by this script.

    python benchmarks/epoch_time.py                       # BP, FA, DFA and every TP-family rule present
    python benchmarks/epoch_time.py --algos bp,fa --batch-size 256 --peak-gflops 400

Prints a table; nothing here is a test. Needs the MNIST files (BIOPLAUS_DATA or --data-dir).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from bioplaus_bench import get_algorithm, get_arch, get_task, load_all, registry
from bioplaus_bench.config import resolve
from bioplaus_bench.harness import RunSpec, create_rule, train
from bioplaus_bench.records import load_average

DEFAULT_ALGOS = ("bp", "fa", "dfa", "usf", "frsf", "shallow", "dni", "cdni", "tp", "dtp", "drl", "l-drl", "fw-dtp")


def measured_peak_gflops(n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def step_flops(algo: str, preset: str | None, batch_size: int) -> int:
    """FLOPs of one rule.step on a random MNIST-shaped batch (feedback training included)."""
    entry, task = get_algorithm(algo), get_task("mnist")
    cfg, run = resolve(entry, preset, {})
    torch.manual_seed(0)
    model = get_arch(run.get("arch", "mlp")).build(task.input_shape, task.num_classes)
    rule = create_rule(entry, cfg, model, task, 2)
    x, y = torch.randn(batch_size, *task.input_shape), torch.randint(0, 10, (batch_size,))
    rule.step(x, y)
    with FlopCounterMode(display=False) as fc:
        rule.step(x, y)
    return fc.get_total_flops()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algos", default=",".join(DEFAULT_ALGOS), help="comma-separated rules (missing ones skipped)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per rule (epoch 1 is warm-up)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--peak-gflops", type=float, default=400.0, help="matmul peak used as the physical limit")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()

    load_all()
    algos = [a for a in args.algos.split(",") if a in registry.ALGORITHMS]
    measured = measured_peak_gflops()
    n_train = 55000
    print(f"load average at start {load_average()} on {__import__('os').cpu_count()} cores")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; matmul peak measured now "
          f"{measured:.0f} GFLOP/s, limit used {args.peak_gflops:.0f} GFLOP/s")
    print(f"MNIST MLP 784-256x5-10, {n_train} training samples, batch {args.batch_size}, "
          f"mean of epochs 2..{args.epochs}\n")
    head = (f"{'rule':<8} {'epoch s':>8} {'forward s':>9} {'feedback s':>10} {'GFLOP/epoch':>12} {'limit s':>8} "
            f"{'x limit':>8} {'x meas':>7} {'x BP':>6} {'test acc':>8}")
    print(head)
    print("-" * len(head))
    bp_time = None
    with tempfile.TemporaryDirectory() as out:
        for algo in algos:
            rec = train(RunSpec(algo=algo, task="mnist", arch="mlp", epochs=args.epochs,
                                batch_size=args.batch_size, data_dir=args.data_dir, out=out, progress=False))
            f = rec["final"]
            flops = step_flops(algo, None, args.batch_size) * -(-n_train // args.batch_size)
            limit = flops / (args.peak_gflops * 1e9)
            bp_time = f["epoch_seconds"] if algo == "bp" else bp_time
            vs_bp = f"{f['epoch_seconds'] / bp_time:6.2f}" if bp_time else f"{'-':>6}"
            print(f"{algo:<8} {f['epoch_seconds']:8.2f} {f['epoch_seconds'] - f['feedback_seconds']:9.2f} "
                  f"{f['feedback_seconds']:10.2f} {flops / 1e9:12.1f} "
                  f"{limit:8.3f} {f['epoch_seconds'] / limit:8.2f} {f['epoch_seconds'] * measured * 1e9 / flops:7.2f} "
                  f"{vs_bp} {f['test_acc']:8.4f}")
    print(f"\nload average at the end {load_average()} (timings are comparable only when it stayed below the cores)")


if __name__ == "__main__":
    main()
