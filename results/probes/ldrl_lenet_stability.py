"""Does L-DRL on LeNet/MNIST stay finite? Trains ~30 real batches with the ernoult2022-lenet preset plus
the given overrides and prints the training loss every 5 batches and the norm of each feedback layer.

    BIOPLAUS_DATA=../shared/data python results/probes/ldrl_lenet_stability.py fb_iterations=3
"""

import sys
import warnings

import torch

from bioplaus_bench import get_algorithm, get_arch, get_task
from bioplaus_bench.config import resolve
from bioplaus_bench.data import Batches, data_root, load_splits

warnings.filterwarnings("ignore")
entry, task = get_algorithm("l-drl"), get_task("mnist")
cfg, _ = resolve(entry, "ernoult2022-lenet", dict(a.split("=") for a in sys.argv[1:]))
torch.manual_seed(0)
rule = entry.cls(get_arch("lenet").build(task.input_shape, 10), cfg, task, 1)
splits = load_splits(task, data_root(None), 5000, torch.device("cpu"))
for i, (x, y) in enumerate(Batches(splits["train"], task, 256, True, torch.Generator().manual_seed(0))):
    loss = torch.nn.functional.cross_entropy(rule.step(x, y), y).item()
    if i % 5 == 0 or loss != loss:
        norms = [round(sum(p.norm().item() for p in g.parameters()), 1) for g in rule.feedback]
        print(f"{sys.argv[1:]} batch {i} loss {loss:.3f} feedback norms {norms}", flush=True)
    if loss != loss or i >= 30:
        break
