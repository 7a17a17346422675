"""Epoch time of each rule at an earlier commit and now, side by side in one run (issue 15's speed targets).

Both trees are checked out into a temporary folder and imported from there (``PYTHONPATH``), and every rule is
timed in the old tree, then in the new one, alternately, each in a fresh process with the same threads, batch
and data. Also times one L-DRL step on LeNet (batch 256, 5 feedback iterations per layer) in both trees.

    python benchmarks/side_by_side.py --old 370e6b8                     # BP, FA, FW-DTP, DTP, DRL, L-DRL
    python benchmarks/side_by_side.py --old 370e6b8 --algos l-drl --epochs 3

Prints a table with the load average before and after; nothing here is a test. Time only on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bioplaus_bench.records import load_average

EPOCH = """
import json, sys, tempfile
from bioplaus_bench.harness import RunSpec, train
with tempfile.TemporaryDirectory() as out:
    rec = train(RunSpec(algo=sys.argv[1], task="mnist", arch="mlp", epochs=int(sys.argv[2]), batch_size=128,
                        out=out, progress=False))
print(json.dumps({"epoch_seconds": rec["final"]["epoch_seconds"], "test_acc": rec["final"]["test_acc"]}))
"""
LENET_STEP = """
import json, time, torch
from bioplaus_bench import get_algorithm, get_arch, get_task
from bioplaus_bench.config import resolve
entry, task = get_algorithm("l-drl"), get_task("mnist")
cfg, _ = resolve(entry, None, {"fb_iterations": "5"})
torch.manual_seed(0)
rule = entry.cls(get_arch("lenet").build(task.input_shape, task.num_classes), cfg, task, 1)
x, y = torch.randn(256, 1, 28, 28), torch.randint(0, 10, (256,))
rule.step(x, y)
times = []
for _ in range(5):
    t0 = time.perf_counter(); rule.step(x, y); times.append(time.perf_counter() - t0)
print(json.dumps({"step_seconds": sorted(times)[2]}))
"""


def checkout(repo: Path, rev: str, where: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(repo), str(where)], check=True)
    subprocess.run(["git", "-C", str(where), "checkout", "-q", rev], check=True)
    for pkg in ("algorithms", "tasks"):  # the installed layout: bioplaus_bench.algorithms is ./algorithms
        (where / "bioplaus_bench" / pkg).symlink_to(where / pkg)
    return where


def measure(tree: Path, code: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    res = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=False,
                         cwd=tree)
    if res.returncode != 0:
        raise SystemExit(f"{tree}: {res.stderr.strip().splitlines()[-1:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", default="370e6b8", help="the earlier commit")
    ap.add_argument("--new", default="HEAD", help="the later commit")
    ap.add_argument("--algos", default="bp,fa,fw-dtp,dtp,drl,l-drl")
    ap.add_argument("--epochs", type=int, default=2, help="epochs per run (the harness reports the mean of 2..N)")
    args = ap.parse_args()
    repo = Path(__file__).resolve().parents[1]
    print(f"load average at start {load_average()} on {os.cpu_count()} cores; {args.old} vs {args.new}, MNIST MLP, "
          f"batch 128, mean of epochs 2..{args.epochs}, each rule old then new in fresh processes\n")
    print(f"{'rule':<8} {'old s':>7} {'new s':>7} {'speed-up':>8} {'old acc':>8} {'new acc':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        old, new = checkout(repo, args.old, Path(tmp) / "old"), checkout(repo, args.new, Path(tmp) / "new")
        for algo in args.algos.split(","):
            a, b = measure(old, EPOCH, algo, str(args.epochs)), measure(new, EPOCH, algo, str(args.epochs))
            print(f"{algo:<8} {a['epoch_seconds']:7.2f} {b['epoch_seconds']:7.2f} "
                  f"{a['epoch_seconds'] / b['epoch_seconds']:7.2f}x {a['test_acc']:8.4f} {b['test_acc']:8.4f}")
        a, b = measure(old, LENET_STEP), measure(new, LENET_STEP)
        print(f"\nL-DRL, LeNet, one step of batch 256 at 5 feedback iterations per layer (median of 5): "
              f"old {a['step_seconds']:.3f} s, new {b['step_seconds']:.3f} s, "
              f"{a['step_seconds'] / b['step_seconds']:.2f}x")
    print(f"\nload average at the end {load_average()}")


if __name__ == "__main__":
    main()
