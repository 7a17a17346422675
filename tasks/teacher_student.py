"""Linear teacher-student regression, Lillicrap et al. 2016 (Experiment 1, Fig. 2a).

A fixed random linear teacher T (10 x 30) maps x ~ N(0, I_30) to y = T x. A 3-layer linear student
30-20-10 (architecture ``linear3``) learns it with the loss 0.5 * ||y_hat - y||^2. The data are generated
from a fixed seed (there is no file); accuracy is meaningless, so records report the test MSE.
"""

from pathlib import Path

import torch

from bioplaus_bench.data import TaskSpec
from bioplaus_bench.registry import register_task

N_TRAIN, N_TEST, D_IN, D_OUT = 20000, 2000, 30, 10


def load(root: Path) -> dict[str, tuple]:
    g = torch.Generator().manual_seed(2016)
    teacher = torch.empty(D_OUT, D_IN).uniform_(-1, 1, generator=g)
    x = torch.randn(N_TRAIN + N_TEST, D_IN, generator=g)
    y = x @ teacher.t()
    return {"train": (x[:N_TRAIN], y[:N_TRAIN]), "test": (x[N_TRAIN:], y[N_TRAIN:])}


register_task(TaskSpec(
    name="teacher-student",
    description="Lillicrap 2016 Exp. 1: linear teacher 30->10, 3-layer linear student (MSE; synthetic)",
    load=load, input_shape=(D_IN,), num_classes=D_OUT,
    default_arch="linear3", archs=("linear3", "mlp"),
    loss="mse", epochs=5, batch_size=20, val_size=2000, synthetic=True, n_train=N_TRAIN,
))
