"""What the harness's determinism costs: the minimal PyTorch loop (BP, MNIST MLP, batch 128, SGD momentum 0.9) timed
in one of the harness's settings, one setting per process (cuBLAS reads its workspace setting once).

Modes (argv[1], combinable): ``plain``; ``sync`` reads the losses to the host once per 10 batches as the harness
does; ``nonone`` zeroes gradients in place (``zero_grad(set_to_none=False)``, as the rules do); ``det`` turns on
``torch.use_deterministic_algorithms`` as the harness does (run it with CUBLAS_WORKSPACE_CONFIG=:4096:8, which
the harness sets). Mean of epochs 2-3.

    for m in plain sync nonone; do python benchmarks/determinism_cost.py $m; done
    CUBLAS_WORKSPACE_CONFIG=:4096:8 python benchmarks/determinism_cost.py det

Needs a GPU and the MNIST files (BIOPLAUS_DATA). Nothing here is a test.
"""

from __future__ import annotations

import os
import sys
import time

import torch
import torch.nn.functional as F

from bioplaus_bench import data as datamod
from bioplaus_bench import get_arch, get_task, load_all


def main() -> None:
    load_all()
    mode = sys.argv[1] if len(sys.argv) > 1 else "plain"
    dev = torch.device("cuda")
    if "det" in mode:
        torch.use_deterministic_algorithms(True, warn_only=True)
    task = get_task("mnist")
    splits = datamod.load_splits(task, datamod.data_root(None), task.val_size, dev)
    torch.manual_seed(0)
    model = get_arch("mlp").build(task.input_shape, task.num_classes).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    batches = datamod.Batches(splits["train"], task, 128, True, torch.Generator().manual_seed(0))
    times = []
    for _ in range(3):
        torch.cuda.synchronize()
        t0, pending = time.perf_counter(), []
        for x, y in batches:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none="nonone" not in mode)
            loss.backward()
            opt.step()
            if "sync" in mode:
                pending.append(loss.detach())
                if len(pending) == 10:
                    torch.stack(pending).tolist()
                    pending = []
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    print(f"{mode:<22} CUBLAS_WORKSPACE_CONFIG={os.environ.get('CUBLAS_WORKSPACE_CONFIG')!s:<8} "
          f"epoch s {sum(times[1:]) / 2:.3f}")


if __name__ == "__main__":
    main()
