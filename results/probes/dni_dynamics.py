"""DNI on the MNIST MLP (784-256x5-10, tanh): every 50 batches, per hidden block, the fraction of saturated
units (|h| > 0.99), the cosine between the synthetic gradient dhat_l and the true BP gradient dL/dh_l,
and their norm ratio; then the validation accuracy. Overrides as key=value; NB batches of size BS.

    BIOPLAUS_DATA=../shared/data python results/probes/dni_dynamics.py lr=0.01 NB=400
"""

import sys
import warnings

import torch
import torch.nn.functional as F

from bioplaus_bench import get_algorithm, get_arch, get_task
from bioplaus_bench.config import resolve
from bioplaus_bench.data import Batches, data_root, load_splits
from bioplaus_bench.harness import evaluate

warnings.filterwarnings("ignore")
args = dict(a.split("=") for a in sys.argv[1:])
NB, BS = int(args.pop("NB", 400)), int(args.pop("BS", 128))
algo = args.pop("algo", "dni")
entry, task = get_algorithm(algo), get_task("mnist")
cfg, _ = resolve(entry, None, args)
torch.manual_seed(0)
rule = entry.cls(get_arch("mlp").build(task.input_shape, 10), cfg, task, 1)
splits = load_splits(task, data_root(None), 5000, torch.device("cpu"))
batches = Batches(splits["train"], task, BS, True, torch.Generator().manual_seed(0))
for i, (x, y) in enumerate(batches):
    if i == NB:
        break
    if i % 50 == 0:
        hs, h = [], x
        for block in rule.blocks:
            h = block(h)
            h.retain_grad()
            hs.append(h)
        F.cross_entropy(hs[-1], y, reduction="sum").backward()
        rows = []
        for layer in range(len(rule.blocks) - 1):
            dhat = rule.synthetic(layer, hs[layer], y).detach().flatten(1)
            true = hs[layer].grad.flatten(1)
            cos = F.cosine_similarity(dhat, true, dim=1).mean().item()
            ratio = (dhat.norm() / true.norm()).item()
            sat = (hs[layer].abs() > 0.99).float().mean().item()
            rows.append(f"L{layer + 1} sat {sat:.2f} cos {cos:+.2f} |sg|/|g| {ratio:.2f}")
        rule.model.zero_grad()
        print(f"batch {i:4d} loss {F.cross_entropy(hs[-1], y).item():.3f} | " + " | ".join(rows), flush=True)
    rule.step(x, y)
print("val", evaluate(rule.model, Batches(splits["val"], task, 1000, False), "ce"), flush=True)
