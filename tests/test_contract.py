"""The rule contract, for every registered rule on every architecture it accepts (timm's pattern): one step
gives a finite output and moves the weights; a state_dict round trip gives an identical next step; every tensor
the rule holds sits on the model's device; an architecture the rule does not accept is a one-line error."""

import copy

import pytest
import torch
from torch import nn

from bioplaus_bench import registry
from bioplaus_bench.config import resolve as resolve_cfg
from bioplaus_bench.harness import RunSpec, create_rule, resolve

registry.load_all()


def _task_for(arch: str):
    for name in sorted(registry.TASKS):
        if arch in registry.TASKS[name].archs:
            return registry.TASKS[name]
    return None


CASES = [(algo, arch) for algo, entry in sorted(registry.ALGORITHMS.items()) for arch in sorted(registry.ARCHS)
         if _task_for(arch) is not None and (entry.supports is None or entry.supports(arch))]
UNSUPPORTED = [(algo, arch) for algo, entry in sorted(registry.ALGORITHMS.items()) for arch in sorted(registry.ARCHS)
               if _task_for(arch) is not None and entry.supports is not None and not entry.supports(arch)]


def _build(algo: str, arch: str, device: str = "cpu"):
    entry, task = registry.get_algorithm(algo), _task_for(arch)
    cfg, _ = resolve_cfg(entry, None, {}, arch)  # the arch's defaults, as the harness resolves them
    torch.manual_seed(0)
    if device == "meta":
        with torch.device("meta"):
            model = registry.get_arch(arch).build(task.input_shape, task.num_classes)
    else:
        model = registry.get_arch(arch).build(task.input_shape, task.num_classes).to(device)
    return create_rule(entry, cfg, model, task, 2), task


def _batch(task, n: int = 4):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, *task.input_shape, generator=g)
    y = torch.randint(0, task.num_classes, (n,), generator=g) if task.loss == "ce" else \
        torch.randn(n, task.num_classes, generator=g)
    return x, y


def test_the_contract_covers_every_rule():
    assert {a for a, _ in CASES} == set(registry.ALGORITHMS) and len(CASES) >= 40


@pytest.mark.parametrize("algo,arch", CASES)
def test_one_step_is_finite_and_moves_the_weights(algo, arch):
    rule, task = _build(algo, arch)
    before = [p.detach().clone() for p in rule.model.parameters()]
    x, y = _batch(task)
    out = rule.step(x, y)
    assert out.shape[0] == len(x) and torch.isfinite(out).all()
    assert any(not torch.equal(a, p) for a, p in zip(before, rule.model.parameters(), strict=True))
    assert all(torch.isfinite(p).all() for p in rule.model.parameters())


@pytest.mark.parametrize("algo,arch", CASES)
def test_state_dict_round_trip_gives_an_identical_next_step(algo, arch):
    a, task = _build(algo, arch)
    x, y = _batch(task)
    a.step(x, y)
    state = copy.deepcopy(a.state_dict())
    b, _ = _build(algo, arch)
    b.load_state_dict(state)
    x2, y2 = _batch(task, 6)
    for rule in (a, b):
        torch.manual_seed(7)
        rule.step(x2, y2)
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        # bit for bit; NaN == NaN here (DTP with its MLP defaults blows up VGG6 by the second step)
        torch.testing.assert_close(pa, pb, rtol=0, atol=0, equal_nan=True)


def _tensors(obj, seen: set, path: str = "rule"):
    """Every tensor reachable from the rule's attributes (modules, optimisers' params, lists, dicts)."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        yield path, obj
    elif isinstance(obj, nn.Module):
        for name, t in [*obj.named_parameters(), *obj.named_buffers()]:
            yield f"{path}.{name}", t
    elif isinstance(obj, torch.optim.Optimizer):
        for i, group in enumerate(obj.param_groups):
            for j, p in enumerate(group["params"]):
                yield f"{path}.param_groups[{i}][{j}]", p
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            yield from _tensors(v, seen, f"{path}[{i}]")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _tensors(v, seen, f"{path}[{k!r}]")
    elif hasattr(obj, "__dict__") and type(obj).__module__.startswith("bioplaus_bench"):
        for k, v in vars(obj).items():
            if k != "task":
                yield from _tensors(v, seen, f"{path}.{k}")


@pytest.mark.parametrize("algo,arch", CASES)
def test_every_tensor_of_the_rule_sits_on_the_models_device(algo, arch):
    # the model on `meta` stands in for a GPU: a tensor the rule makes on the CPU by default shows up here
    rule, _ = _build(algo, arch, device="meta")
    off = [name for name, t in _tensors(rule, set()) if t.device.type != "meta"]
    assert not off, f"{algo} on {arch}: tensors off the model's device: {off[:5]}"


@pytest.mark.parametrize("algo,arch", UNSUPPORTED)
def test_an_unsupported_architecture_is_a_one_line_error(algo, arch):
    task = _task_for(arch)
    with pytest.raises(registry.RegistryError) as err:
        resolve(RunSpec(algo=algo, task=task.name, arch=arch))
    msg = str(err.value)
    assert "\n" not in msg and f"not defined on architecture {arch!r}; accepted for task {task.name}:" in msg


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (benchmarks/gpu_check.sh runs it on one)")
@pytest.mark.parametrize("algo,arch", CASES)
def test_one_step_on_cuda_keeps_every_tensor_on_the_gpu(algo, arch):
    rule, task = _build(algo, arch, device="cuda")
    x, y = _batch(task)
    out = rule.step(x.cuda(), y.cuda())
    assert out.is_cuda and torch.isfinite(out).all()
    off = [name for name, t in _tensors(rule, set()) if not t.is_cuda]
    assert not off, f"{algo} on {arch}: tensors off the GPU: {off[:5]}"
