"""L-DRL on LeNet/MNIST with feedback-only warm-up batches: W warm-up batches of WI feedback iterations,
then NB training batches with the ernoult2022-lenet preset and the given overrides; prints the training loss
every 5 batches and the validation accuracy at the end.

    BIOPLAUS_DATA=../shared/data python results/probes/ldrl_lenet_warmup.py W=20 WI=5 fb_iterations=5 NB=40 lr=0.01
"""

import sys
import time
import warnings

import torch

from bioplaus_bench import get_algorithm, get_arch, get_task
from bioplaus_bench import targetprop as tp
from bioplaus_bench.config import resolve
from bioplaus_bench.data import Batches, data_root, load_splits
from bioplaus_bench.harness import evaluate

warnings.filterwarnings("ignore")
args = dict(a.split("=") for a in sys.argv[1:])
W, WI, NB = int(args.pop("W", 0)), int(args.pop("WI", 5)), int(args.pop("NB", 30))
entry, task = get_algorithm("l-drl"), get_task("mnist")
cfg, _ = resolve(entry, "ernoult2022-lenet", args)
torch.manual_seed(0)
rule = entry.cls(get_arch("lenet").build(task.input_shape, 10), cfg, task, 1)
splits = load_splits(task, data_root(None), 5000, torch.device("cpu"))
it = iter(Batches(splits["train"], task, 256, True, torch.Generator().manual_seed(0)))
t0 = time.time()
for _ in range(W):
    x, y = next(it)
    tp.train_feedback(rule.blocks, rule.fb_opts, (WI,) * len(rule.iters), x, rule.feedback_loss)
print("warmup", W, WI, round(time.time() - t0, 1), flush=True)
for i in range(NB):
    x, y = next(it)
    loss = torch.nn.functional.cross_entropy(rule.step(x, y), y).item()
    if i % 5 == 0 or loss != loss:
        print(sys.argv[1:], "batch", i, "loss", round(loss, 3), round(time.time() - t0, 1), flush=True)
    if loss != loss:
        break
print("val", evaluate(rule.model, Batches(splits["val"], task, 1000, False), "ce"), flush=True)
