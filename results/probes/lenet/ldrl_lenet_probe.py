"""L-DRL (or any rule) on MNIST LeNet, batch by batch: the loss, the angle to BP per parameter (every 5 batches)
and the forward weights' norms. Arguments: the rule, then key=value hyperparameters, plus the probe's own
bs= (batch size, 256), nb= (batches, 40), norm=1 (scalingDTP HEAD's (0.5, 0.5) MNIST normalisation instead of the
suite's), nobias=1 (a LeNet without biases, as scalingDTP's), nopad=1 (with nobias: pooling without padding and
a 2304-wide flatten, the tune-lenet branch's LeNet). Stops at NaN or a loss above 1000.

    python results/probes/lenet/ldrl_lenet_probe.py l-drl nb=30 lr=0.03618
"""

import sys

import torch
from torch import nn

from bioplaus_bench import data as datamod
from bioplaus_bench import get_algorithm, get_arch, get_task, load_all
from bioplaus_bench.config import resolve
from bioplaus_bench.harness import create_rule
from bioplaus_bench.measure import angles_to_bp

load_all()
algo, opts = sys.argv[1], dict(a.split("=") for a in sys.argv[2:])
norm, bs, nb = int(opts.pop("norm", 0)), int(opts.pop("bs", 256)), int(opts.pop("nb", 40))
nobias, nopad = int(opts.pop("nobias", 0)), int(opts.pop("nopad", 0))
entry, task = get_algorithm(algo), get_task("mnist")
cfg, _ = resolve(entry, None, opts, "lenet")
print(cfg)
torch.manual_seed(0)
if nopad:
    model = nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 32, 5, padding=2, bias=False), nn.ELU(), nn.MaxPool2d(3, 2)),
        nn.Sequential(nn.Conv2d(32, 64, 5, padding=2, bias=False), nn.ELU(), nn.MaxPool2d(3, 2)),
        nn.Sequential(nn.Flatten(), nn.Linear(64 * 6 * 6, 512, bias=False), nn.ELU()),
        nn.Sequential(nn.Linear(512, 10, bias=False)))
else:
    model = get_arch("lenet").build(task.input_shape, task.num_classes)
if nobias:
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            m.register_parameter("bias", None)
rule = create_rule(entry, cfg, model, task, 1)
splits = datamod.load_splits(task, datamod.data_root(None), 5000, torch.device("cpu"))
batches = datamod.Batches(splits["train"], task, bs, True, torch.Generator().manual_seed(0))
for i, (x, y) in enumerate(batches):
    if i % 5 == 0:
        angles = angles_to_bp(rule, x, y)
    if norm:
        x = (x * 0.3081 + 0.1307 - 0.5) / 0.5
    loss = torch.nn.functional.cross_entropy(rule.step(x, y), y).item()
    if i % 5 == 0:
        norms = [round(p.norm().item(), 2) for p in model.parameters() if p.dim() > 1]
        print(i, round(loss, 3), {k: round(v, 1) for k, v in angles.items()}, norms, flush=True)
    if i >= nb or loss != loss or loss > 1e3:
        break
