"""DNI / cDNI: the synthetic-gradient modules regress onto the true gradient; blocks follow them."""

from types import SimpleNamespace

import pytest
import torch
from helpers import make_rule
from torch import nn

from bioplaus_bench import get_algorithm
from bioplaus_bench.config import resolve
from bioplaus_bench.harness import create_rule


def linear_rule(algo: str, sizes=(12, 12, 5), **overrides):
    """A rule on a linear net with MSE loss, built as the harness builds rules."""
    torch.manual_seed(0)
    blocks = [nn.Sequential(nn.Linear(a, b, bias=False)) for a, b in zip(sizes[:-1], sizes[1:], strict=False)]
    task = SimpleNamespace(loss="mse", num_classes=sizes[-1], input_shape=(sizes[0],))
    entry = get_algorithm(algo)
    cfg, _ = resolve(entry, None, {k: str(v) for k, v in overrides.items()})
    return create_rule(entry, cfg, nn.Sequential(*blocks), task, 1)


@pytest.mark.parametrize("algo", ["dni", "cdni"])
def test_synthetic_gradient_converges_to_the_true_gradient_on_a_fixed_linear_layer(algo):
    # forward weights fixed (lr 0); targets y = A x, so dL/dh_1 = V^T (V h_1 - A W^-1 h_1) is linear in h_1
    rule = linear_rule(algo, lr=0.0, sg_lr=0.01)
    w0 = [p.detach().clone() for p in rule.model.parameters()]
    g = torch.Generator().manual_seed(1)
    teacher = torch.randn(5, 12, generator=g) / 12**0.5
    for _ in range(1500):
        x = torch.randn(64, 12, generator=g)
        rule.step(x, x @ teacher.T)
    assert all(torch.equal(a, b) for a, b in zip(w0, rule.model.parameters(), strict=True))  # fixed layer
    x = torch.randn(512, 12, generator=g)
    y = x @ teacher.T
    h = rule.blocks[0](x)
    out = rule.blocks[1](h.detach().requires_grad_(True))
    true = torch.autograd.grad(0.5 * (out - y).pow(2).sum(), out, retain_graph=True)[0] @ rule.blocks[1][0].weight
    pred = rule.synthetic(0, h, y).detach()
    rel = ((pred - true).norm() / true.norm()).item()
    assert rel < 0.1, rel


def test_hidden_blocks_follow_the_synthetic_gradient_and_modules_bootstrap():
    rule = linear_rule("dni", sizes=(6, 5, 4, 3), sg_lr=0.05)
    x, y = torch.randn(16, 6), torch.randn(16, 3)
    for _ in range(5):  # move the zero-initialised modules away from zero
        rule.step(x, y)
    h1 = rule.blocks[0](x)
    h2 = rule.blocks[1](h1)
    d1, d2 = rule.synthetic(0, h1, y).detach(), rule.synthetic(1, h2, y).detach()
    m1 = [p.detach().clone() for p in rule.feedback_net[0].parameters()]
    w_before = [b[0].weight.detach().clone() for b in rule.blocks]
    for o in rule.optimizers:  # inspect the grads of one step without moving anything
        for grp in o.param_groups:
            grp["lr"] = 0.0
    rule.step(x, y)
    # block 1 (0-based 0): dW = (1/B) dhat_1^T x; block 2: dW = (1/B) dhat_2^T h_1
    assert torch.allclose(rule.blocks[0][0].weight.grad, d1.T @ x / 16, atol=1e-5)
    assert torch.allclose(rule.blocks[1][0].weight.grad, d2.T @ h1.detach() / 16, atol=1e-5)
    # M_1's regression target is the synthetic gradient of block 2 backpropagated through it: W_2^T dhat_2
    target = d2 @ w_before[1]
    inp = h1.detach()
    grad_m1 = 2 * (d1 - target).T @ inp / 16  # d/dM of mean_b ||M h - target||^2 for the linear module
    assert torch.allclose(rule.feedback_net[0].weight.grad, grad_m1, atol=1e-5)
    assert all(torch.equal(a, b) for a, b in zip(m1, rule.feedback_net[0].parameters(), strict=True))


def test_modules_start_at_zero_so_hidden_blocks_start_still():
    rule = linear_rule("dni", sizes=(6, 5, 4, 3))
    rule.step(torch.randn(8, 6), torch.randn(8, 3))
    assert rule.blocks[0][0].weight.grad.abs().max() == 0 and rule.blocks[2][0].weight.grad.abs().max() > 0


def test_p_update_makes_each_block_update_with_that_probability():
    """Jaderberg Sec. 3.3: with p_update 0.5 the output block (always given its true gradient) changes on about
    half of the batches; with p_update 1 on every batch."""
    import torch
    from helpers import make_rule

    for p, low, high in ((0.5, 0.3, 0.7), (1.0, 1.0, 1.0)):
        rule, _ = make_rule("dni", p_update=p)
        torch.manual_seed(0)
        x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
        changed = 0
        for _ in range(60):
            before = rule.blocks[-1][0].weight.detach().clone()
            rule.step(x, y)
            changed += not torch.equal(before, rule.blocks[-1][0].weight)
        assert low <= changed / 60 <= high, (p, changed)


def test_building_dni_on_a_batchnorm_network_leaves_its_statistics_and_mode_alone():
    rule, _ = make_rule("dni", arch="fcn4", p_update=0.5)
    bns = [m for m in rule.model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(bns) == 3 and rule.model.training
    for bn in bns:
        assert int(bn.num_batches_tracked) == 0 and bn.running_mean.abs().max() == 0 and (bn.running_var == 1).all()
