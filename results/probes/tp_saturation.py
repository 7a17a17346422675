"""Why TP stays at chance on the MNIST MLP: every 50 batches, the training loss, the std of each block's
output and the relative distance of each target from its activation.

    BIOPLAUS_DATA=../shared/data python results/probes/tp_saturation.py
"""

import torch

from bioplaus_bench import get_algorithm, get_arch, get_task
from bioplaus_bench import targetprop as tp
from bioplaus_bench.config import resolve
from bioplaus_bench.data import Batches, data_root, load_splits

entry, task = get_algorithm("tp"), get_task("mnist")
cfg, _ = resolve(entry, None, {})
torch.manual_seed(0)
rule = entry.cls(get_arch("mlp").build(task.input_shape, 10), cfg, task, 1)
splits = load_splits(task, data_root(None), 5000, torch.device("cpu"))
for i, (x, y) in enumerate(Batches(splits["train"], task, 128, True, torch.Generator().manual_seed(0))):
    out = rule.step(x, y)
    if i % 50 == 0:
        s = tp.forward_blocks(rule.blocks, x)
        t = tp.propagate(rule.feedback, s, tp.output_target("ce", s[-1], y, cfg.beta), difference=False)
        print(f"batch {i} loss {torch.nn.functional.cross_entropy(out, y).item():.3f} "
              f"std {[round(h.std().item(), 3) for h in s[1:]]} "
              f"|t-s|/|s| {[round(((a - b).norm() / b.norm()).item(), 2) for a, b in zip(t[1:], s[1:], strict=True)]}")
    if i >= 150:
        break
