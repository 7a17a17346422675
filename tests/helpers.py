"""Small helpers shared by the tests."""

import torch

from bioplaus_bench import get_algorithm, get_arch, get_task
from bioplaus_bench.config import resolve


def make_rule(algo: str, task: str = "mnist", arch: str | None = None, epochs: int = 1, seed: int = 0,
              **overrides):
    """Build (rule, task spec) exactly as the harness does, on the CPU."""
    torch.manual_seed(seed)
    entry = get_algorithm(algo)
    spec = get_task(task)
    cfg, _ = resolve(entry, None, {k: str(v) for k, v in overrides.items()})
    model = get_arch(arch or spec.default_arch).build(spec.input_shape, spec.num_classes)
    return entry.cls(model, cfg, spec, epochs), spec
