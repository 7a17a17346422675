"""Does each rule's CIFAR configuration run on natural images? A short probe on the CIFAR-10 JPEG stand-in.

For every registered rule (or ``--algos``), the configuration ``bench run --algo X --task cifar10`` resolves,
trained on ``../shared/data/cifar10-jpeg`` through the folder task (``--defaults-from cifar10``) for
``--batches`` batches, seed 0: whether it is refused (no CIFAR configuration), diverges, or runs, with its
seconds per batch extrapolated to an epoch of 352 batches and its validation accuracy (5,000 stand-in images).
Measured on the stand-in, not CIFAR-10; a few batches say which configurations fail at once, not which learn.

    python benchmarks/standin_probe.py --batches 20 [--algos bp,fa] [--skip ddtp]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

STANDIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--algos", default="", help="comma-separated rules (default: every registered rule)")
    ap.add_argument("--skip", default="", help="comma-separated rules to leave out")
    ap.add_argument("--folder", default=str(STANDIN))
    args = ap.parse_args()

    from bioplaus_bench import registry
    from bioplaus_bench.harness import RunSpec, resolve, train

    registry.load_all()
    algos = [a for a in (args.algos.split(",") if args.algos else sorted(registry.ALGORITHMS))
             if a not in args.skip.split(",")]
    print(f"load average {os.getloadavg()[0]:.2f}; {args.batches} batches per rule on {args.folder} (the stand-in)")
    out = tempfile.mkdtemp(prefix="standin-probe-")
    for algo in algos:
        spec = RunSpec(algo=algo, task=f"folder:{args.folder}", defaults_from="cifar10", epochs=1,
                       max_batches=args.batches, out=out, progress=False)
        try:
            r = resolve(spec)
        except registry.RegistryError as exc:
            print(f"{algo:10s} refused: {exc}")
            continue
        rec = train(spec, r)
        if rec["status"] != "completed":
            print(f"{algo:10s} {r.config['arch']:10s} {rec['status']}: {rec.get('error', '')}")
            continue
        sec = rec["curves"]["epoch_seconds"][0]
        print(f"{algo:10s} {r.config['arch']:10s} {sec / args.batches:.3f} s/batch (~{sec / args.batches * 352:.0f} "
              f"s/epoch, warm-up included); val acc {100 * rec['final']['val_acc']:.2f}%")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
