"""Time of one BP training step (forward, backward, SGD momentum) of the Ernoult et al. LeNet on a batch of 256
MNIST-shaped inputs, at 1 and 2 torch threads; the basis of the full-budget time estimate for `bench paper
ernoult2022` (90 epochs of 55,000 training images).

    python results/probes/lenet_bp_batch_time.py
"""

import time

import torch
import torch.nn.functional as F

from bioplaus_bench import get_arch

for threads in (1, 2):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = get_arch("lenet").build((1, 28, 28), 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(256, 1, 28, 28), torch.randint(0, 10, (256,))
    for i in range(22):
        if i == 2:  # two warm-up steps
            t0 = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    per_batch = (time.perf_counter() - t0) / 20
    epoch = per_batch * 55000 / 256
    print(f"{threads} thread(s): {per_batch * 1000:.0f} ms per batch of 256, {epoch:.0f} s per epoch, "
          f"{90 * epoch / 3600:.2f} h for 90 epochs")
