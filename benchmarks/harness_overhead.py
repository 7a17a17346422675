"""What the harness costs: BP through ``bench run``'s loop against a minimal PyTorch loop over the same tensors.

Both train the same network (the task's MLP, or ``--arch``) with SGD lr 0.05, momentum 0.9, on the same
in-memory MNIST split (already on the device, normalised per batch as the harness does), with the same batch
size. The minimal loop is the five lines every PyTorch tutorial has: forward, cross-entropy, zero_grad,
backward, step. The harness adds shuffling with its own generator, the divergence check (losses read once per
10 batches), per-epoch evaluation and the record; only training seconds are compared (evaluation excluded on
both sides). Epoch 1 is warm-up on both sides; the figure is the mean of the later epochs.

    python benchmarks/harness_overhead.py                   # CPU, MNIST MLP, batch 128
    python benchmarks/harness_overhead.py --device cuda     # on a GPU: there the loop's launches dominate

Prints the load average with the figures; nothing here is a test. Time only on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch
import torch.nn.functional as F

from bioplaus_bench import data as datamod
from bioplaus_bench import get_arch, get_task, load_all
from bioplaus_bench.harness import RunSpec, pick_device, train
from bioplaus_bench.records import load_average


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def minimal_epochs(arch: str, batch_size: int, epochs: int, device: torch.device, data_dir: str | None) -> list[float]:
    """Training seconds of each epoch of the plain loop."""
    task = get_task("mnist")
    splits = datamod.load_splits(task, datamod.data_root(data_dir), task.val_size, device)
    torch.manual_seed(0)
    model = get_arch(arch).build(task.input_shape, task.num_classes).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    batches = datamod.Batches(splits["train"], task, batch_size, train=True, generator=torch.Generator().manual_seed(0))
    times = []
    for _ in range(epochs):
        _sync(device)
        t0 = time.perf_counter()
        for x, y in batches:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="mlp", help="mlp or lenet")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per side (epoch 1 is warm-up)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    load_all()
    device = pick_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {os.cpu_count()} cores"
    print(f"load average at start {load_average()} ({name}); torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; MNIST {args.arch}, batch {args.batch_size}, "
          f"mean of epochs 2..{args.epochs}")
    plain = minimal_epochs(args.arch, args.batch_size, args.epochs, device, args.data_dir)
    with tempfile.TemporaryDirectory() as out:
        rec = train(RunSpec(algo="bp", task="mnist", arch=args.arch, epochs=args.epochs, device=args.device,
                            batch_size=args.batch_size, data_dir=args.data_dir, out=out, progress=False))
    harness = rec["curves"]["epoch_seconds"]
    p, h = sum(plain[1:]) / len(plain[1:]), sum(harness[1:]) / len(harness[1:])
    print(f"minimal loop  epoch s {p:7.3f}   (epoch 1 {plain[0]:.3f})")
    print(f"harness (bp)  epoch s {h:7.3f}   (epoch 1 {harness[0]:.3f}; test acc {rec['final']['test_acc']:.4f})")
    print(f"harness / minimal loop: {h / p:.3f}")
    print(f"load average at the end {load_average()}")


if __name__ == "__main__":
    main()
