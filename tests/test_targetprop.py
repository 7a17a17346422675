"""Defining equations of the target-propagation family (issue: TP, DTP, DRL, L-DRL, FW-DTP)."""

import types

import pytest
import torch
from helpers import make_rule
from torch import nn

from bioplaus_bench import get_algorithm, targetprop
from bioplaus_bench.config import resolve
from bioplaus_bench.harness import create_rule
from bioplaus_bench.measure import angles_to_bp
from bioplaus_bench.nets import MaxPoolIdx


def _rule(algo, model, input_shape, num_classes, **overrides):
    entry = get_algorithm(algo)
    cfg, _ = resolve(entry, None, {k: str(v) for k, v in overrides.items()})
    task = types.SimpleNamespace(input_shape=input_shape, num_classes=num_classes, loss="ce", name="toy")
    return create_rule(entry, cfg, model, task, 1)


@pytest.mark.parametrize("algo,arch", [("dtp", "mlp"), ("drl", "mlp"), ("l-drl", "mlp"), ("fw-dtp", "mlp"),
                                       ("dtp", "lenet"), ("drl", "lenet"), ("l-drl", "lenet")])
def test_beta_zero_targets_equal_activations(algo, arch):
    rule, _ = make_rule(algo, "mnist", arch, beta=0.0)
    x, y = torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))
    rule.step(x, y)  # train the feedback a little so G is not trivially anything
    rule.model.double()  # float64, so that s + G(s) - G(s) = s holds to 1e-10 even where G is large
    rule.feedback.double()
    x = x.double()
    s = targetprop.forward_blocks(rule.blocks, x)
    t = targetprop.propagate(rule.feedback, s, targetprop.output_target("ce", s[-1], y, 0.0))
    for layer in range(1, len(s)):
        # difference correction: s + G(s) - G(s) = s up to float rounding
        assert torch.allclose(t[layer], s[layer].detach(), atol=1e-10, rtol=0), layer


def test_tp_without_difference_does_not_reproduce_activations():
    rule, _ = make_rule("tp", "mnist", "mlp", beta=0.0)
    x, y = torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))
    s = targetprop.forward_blocks(rule.blocks, x)
    t = targetprop.propagate(rule.feedback, s, targetprop.output_target("ce", s[-1], y, 0.0), difference=False)
    assert torch.equal(t[-1], s[-1].detach()) and not torch.allclose(t[1], s[1])  # t_{l-1} = G(t_l) only


def _jacobian_error(f, g, x0):
    """||J_G - J_F^T||_F / ||J_F||_F at x0 (one sample), with exact autograd Jacobians."""
    jf = torch.autograd.functional.jacobian(lambda x: f(x.unsqueeze(0)).flatten(), x0)
    y0 = f(x0.unsqueeze(0)).detach()  # sets the pooling indices of x0 for G's unpooling
    jg = torch.autograd.functional.jacobian(lambda y: g(y.view_as(y0)).flatten(), y0.flatten())
    jf = jf.reshape(y0.numel(), x0.numel())
    return ((jg - jf.t()).norm() / jf.norm()).item()


@pytest.mark.parametrize("kind", ["linear", "conv+pool"])
def test_ldrl_feedback_learns_the_transpose_jacobian(kind):
    torch.manual_seed(0)
    lr, noise, iters = 0.05, 0.1, 1500
    if kind == "linear":
        shape, layer = (12,), nn.Sequential(nn.Linear(12, 8))
    else:
        shape, layer = (2, 6, 6), nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), MaxPoolIdx(2, 2))
    first = nn.Sequential(nn.Linear(12, 12)) if kind == "linear" else nn.Sequential(nn.Conv2d(2, 2, 1))
    model = nn.Sequential(first, layer)  # F stays frozen: only G_1's optimiser is stepped below
    rule = _rule("l-drl", model, shape, 8, fb_lr=lr, fb_noise=noise, fb_iterations=iters, fb_momentum=0.9)
    g = rule.feedback[1]
    x0 = torch.randn(*shape)
    before = _jacobian_error(layer, g, x0)
    x = torch.randn(64, *shape)
    with torch.no_grad():
        s = [x, first(x), layer(first(x))]
    for _ in range(iters):  # only G_1 trains: F is frozen
        rule.fb_opts[1].zero_grad()
        rule.feedback_loss(1, s).backward()
        rule.fb_opts[1].step()
    after = _jacobian_error(layer, g, x0)
    assert before > 0.5 and after < 0.1, (before, after)


def test_dtp_feedback_learns_to_invert_a_frozen_layer():
    torch.manual_seed(0)
    d = 10
    model = nn.Sequential(nn.Sequential(nn.Linear(d, d, bias=False)), nn.Sequential(nn.Linear(d, d, bias=False)))
    nn.init.orthogonal_(model[1][0].weight)  # F stays frozen: only G_1's optimiser is stepped below
    rule = _rule("dtp", model, (d,), d, fb_lr=0.05, fb_noise=0.3, fb_momentum=0.9)
    x = torch.randn(256, d)
    with torch.no_grad():
        s = [x, model[0](x), model(x)]
    for _ in range(1500):
        rule.fb_opts[1].zero_grad()
        rule.feedback_loss(1, s).backward()
        rule.fb_opts[1].step()
    h = s[1]
    rec = rule.feedback[1](model[1](h))
    assert ((rec - h).norm() / h.norm()).item() < 0.05


def test_fwdtp_feedback_is_fixed_and_forward_learns():
    rule, _ = make_rule("fw-dtp", "mnist", "mlp")
    fb = [p.clone() for p in rule.feedback.parameters()]
    w = [p.clone() for p in rule.model.parameters()]
    x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    for _ in range(3):
        rule.step(x, y)
    assert all(torch.equal(a, b) for a, b in zip(fb, rule.feedback.parameters(), strict=True))
    assert all(not torch.equal(a, b) for a, b in zip(w, rule.model.parameters(), strict=True))


def test_fwdtp_refuses_conv_nets():
    from bioplaus_bench.harness import RunSpec
    from bioplaus_bench.harness import resolve as resolve_run
    from bioplaus_bench.registry import RegistryError

    with pytest.raises(RegistryError, match="rule fw-dtp is not defined on architecture 'lenet'"):
        resolve_run(RunSpec(algo="fw-dtp", task="mnist", arch="lenet"))


def test_ldrl_update_matches_bp_in_a_deep_linear_network():
    torch.manual_seed(0)
    d = 16
    model = nn.Sequential(*[nn.Sequential(nn.Linear(d, d, bias=False)) for _ in range(4)])
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.orthogonal_(m.weight)
    rule = _rule("l-drl", model, (d,), d, beta=1e-3, fb_lr=0.05, fb_noise=0.1, fb_iterations=3000)
    x, y = torch.randn(64, d), torch.randint(0, d, (64,))
    targetprop.train_feedback(rule.blocks, rule.fb_opts, rule.iters, x, rule.feedback_loss)  # to convergence
    angles = angles_to_bp(rule, x, y)  # the copy trains 3000 more steps; the angle is of its update
    assert set(angles) == {f"{i}.0.weight" for i in range(4)}
    assert max(angles.values()) < 5.0, angles
