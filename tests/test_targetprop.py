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
    rule.feedback_net.double()
    x = x.double()
    s, pools = targetprop.forward_blocks(rule.blocks, x)
    t = targetprop.propagate(rule.feedback, s, pools, targetprop.output_target("ce", s[-1], y, 0.0))
    for layer in range(1, len(s)):
        # difference correction: s + G(s) - G(s) = s up to float rounding
        assert torch.allclose(t[layer], s[layer].detach(), atol=1e-10, rtol=0), layer


def test_tp_without_difference_does_not_reproduce_activations():
    rule, _ = make_rule("tp", "mnist", "mlp", beta=0.0)
    x, y = torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))
    s, pools = targetprop.forward_blocks(rule.blocks, x)
    t = targetprop.propagate(rule.feedback, s, pools, targetprop.output_target("ce", s[-1], y, 0.0),
                             difference=False)
    assert torch.equal(t[-1], s[-1].detach()) and not torch.allclose(t[1], s[1])  # t_{l-1} = G(t_l) only


def _jacobian_error(f, g, x0):
    """||J_G - J_F^T||_F / ||J_F||_F at x0 (one sample), with exact autograd Jacobians."""
    jf = torch.autograd.functional.jacobian(lambda x: f(x.unsqueeze(0)).flatten(), x0)
    y0, pools = targetprop.run_block(f, x0.unsqueeze(0))  # the pooling indices of x0 for G's unpooling
    y0 = y0.detach()
    jg = torch.autograd.functional.jacobian(lambda y: g(y.view_as(y0), pools).flatten(), y0.flatten())
    jf = jf.reshape(y0.numel(), x0.numel())
    return ((jg - jf.t()).norm() / jf.norm()).item()


@pytest.mark.parametrize("kind", ["linear", "conv+pool"])
def test_ldrl_feedback_learns_the_transpose_jacobian(kind):
    torch.manual_seed(0)
    lr, noise, iters = 0.05, 0.1, 1500
    if kind == "linear":
        shape, layer = (12,), nn.Sequential(nn.Linear(12, 8))
    else:
        shape, layer = (2, 6, 6), nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.MaxPool2d(2, 2))
    first = nn.Sequential(nn.Linear(12, 12)) if kind == "linear" else nn.Sequential(nn.Conv2d(2, 2, 1))
    model = nn.Sequential(first, layer)  # F stays frozen: only G_1's optimiser is stepped below
    # the clean-index convention: with scalingDTP's (the default), G(F(x + dx)) unpools at the noisy argmax, and
    # at this noise the index jumps keep J_G away from J_F^T (1.07 relative error after training, from 1.47)
    rule = _rule("l-drl", model, shape, 8, fb_lr=lr, fb_noise=noise, fb_iterations=iters, fb_momentum=0.9,
                 noisy_pool_indices=False)
    g, opt = rule.feedback[1].map, rule.feedback[1].opt
    x0 = torch.randn(*shape)
    before = _jacobian_error(layer, g, x0)
    x = torch.randn(64, *shape)
    with torch.no_grad():
        s, pools = targetprop.forward_blocks(model, x)
    for _ in range(iters):  # only G_1 trains: F is frozen
        opt.zero_grad()
        rule.feedback_loss(1, s, pools).backward()
        opt.step()
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
        s, pools = targetprop.forward_blocks(model, x)
    opt = rule.feedback[1].opt
    for _ in range(1500):
        opt.zero_grad()
        rule.feedback_loss(1, s, pools).backward()
        opt.step()
    h = s[1]
    rec = rule.feedback[1].map(model[1](h))
    assert ((rec - h).norm() / h.norm()).item() < 0.05


def test_fwdtp_feedback_is_fixed_and_forward_learns():
    rule, _ = make_rule("fw-dtp", "mnist", "mlp")
    fb = [p.clone() for p in rule.feedback_net.parameters()]
    w = [p.clone() for p in rule.model.parameters()]
    x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    for _ in range(3):
        rule.step(x, y)
    assert all(torch.equal(a, b) for a, b in zip(fb, rule.feedback_net.parameters(), strict=True))
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
    rule.train_feedback(*targetprop.clean_forward(rule.blocks, x))  # to convergence
    angles = angles_to_bp(rule, x, y)  # the copy trains 3000 more steps; the angle is of its update
    assert set(angles) == {f"{i}.0.weight" for i in range(4)}
    assert max(angles.values()) < 5.0, angles


@pytest.mark.parametrize("algo", ["dtp", "tp", "drl", "l-drl"])
@pytest.mark.parametrize("arch", ["mlp", "lenet"])
def test_feedback_is_one_list_indexed_by_block_and_no_module_keeps_forward_state(algo, arch):
    n = 5 if arch == "mlp" else 3  # trainable feedback layers: blocks 1..N-1
    iters = tuple(range(1, n + 1))
    rule, _ = make_rule(algo, "mnist", arch, fb_iterations=",".join(map(str, iters)))
    assert len(rule.feedback) == len(rule.blocks) and rule.feedback[0].opt is None
    assert tuple(fb.iterations for fb in rule.feedback[1:]) == iters  # feedback[i] <-> blocks[i], one index
    assert all(fb.map is m for fb, m in zip(rule.feedback, rule.feedback_net, strict=True))
    rule.step(torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,)))
    kept = [(name, k) for name, m in [*rule.model.named_modules(), *rule.feedback_net.named_modules()]
            for k, v in vars(m).items() if isinstance(v, torch.Tensor)]
    assert kept == []  # a forward pass leaves no tensor on a module (pooling indices are passed, not stored)


# ---- the cached / shared computations of issue 15 agree with the computation they replace


def _ldrl_loss_uncached(rule, i, s, pools, noisy_indices):
    """L-DRL's loss as written in the paper: three evaluations of the whole map G per iteration."""
    f, g, sigma = rule.blocks[i], rule.feedback[i].map, rule.feedback[i].noise
    x, y = s[i], s[i + 1]
    dx = sigma * torch.randn_like(x)
    with torch.no_grad():
        y_noisy, noisy_pools = targetprop.run_block(f, x + dx)
    dy = sigma * torch.randn_like(y)
    r, r_y = g(y, pools[i]), g(y + dy, pools[i])
    r_noisy = g(y_noisy, noisy_pools if noisy_indices else pools[i])
    return (-2.0 * (dx * (r_noisy - r)).sum() + (r_y - r).pow(2).sum()) / x.shape[0]


@pytest.mark.parametrize("arch", ["mlp", "lenet"])
@pytest.mark.parametrize("noisy", [True, False])
def test_ldrl_linear_split_loss_equals_three_evaluations_of_g(arch, noisy):
    rule, _ = make_rule("l-drl", "mnist", arch, noisy_pool_indices=str(noisy))
    for p in rule.feedback_net.parameters():  # nonzero biases: they must cancel exactly
        torch.nn.init.uniform_(p, -0.1, 0.1)
    s, pools = targetprop.clean_forward(rule.blocks, torch.randn(8, 1, 28, 28))
    for i in range(1, len(rule.blocks)):
        params = list(rule.feedback[i].map.parameters())
        torch.manual_seed(i)
        new = rule.feedback_loss(i, s, pools)
        g_new = torch.autograd.grad(new, params, allow_unused=True)
        torch.manual_seed(i)
        old = _ldrl_loss_uncached(rule, i, s, pools, noisy)
        g_old = torch.autograd.grad(old, params)
        assert torch.allclose(new, old, rtol=1e-4, atol=1e-6), (i, new, old)
        scale = max(b.abs().max() for b in g_old)
        for a, b in zip(g_new, g_old, strict=True):
            if a is None:  # the bias cancels in every difference: its gradient is zero up to the old rounding
                assert b.abs().max() <= 1e-4 * scale, i
            else:
                assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * scale), i


def _old_step(rule, x, y):
    """The step before issue 15: feedback trained on its own forward pass, every loss term recomputed."""
    s, pools = targetprop.clean_forward(rule.blocks, x)
    for i, fb in enumerate(rule.feedback):
        if fb.opt is not None:
            targetprop.fit(fb, lambda i=i: rule.feedback_loss(i, s, pools))
    s, pools = targetprop.forward_blocks(rule.blocks, x)
    t = targetprop.propagate(rule.feedback, s, pools, targetprop.output_target("ce", s[-1], y, rule.cfg.beta))
    targetprop.local_forward_step(s, t, rule.opt, scale=0.5)


@pytest.mark.parametrize("algo,arch", [("dtp", "mlp"), ("drl", "mlp"), ("drl", "lenet"), ("l-drl", "mlp"),
                                       ("l-drl", "lenet")])
def test_one_forward_pass_and_cached_terms_give_the_same_weights(algo, arch):
    import copy

    rule, _ = make_rule(algo, "mnist", arch, fb_iterations=3, lr=0.01)
    twin = copy.deepcopy(rule)
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    for k in range(2):
        torch.manual_seed(k)
        rule.step(x, y)
        torch.manual_seed(k)
        _old_step(twin, x, y)
    pairs = [*zip(rule.model.parameters(), twin.model.parameters(), strict=True),
             *zip(rule.feedback_net.parameters(), twin.feedback_net.parameters(), strict=True)]
    for a, b in pairs:
        # DTP and DRL on LeNet: the same values, bit for bit; L-DRL and DRL's MLP step 4: float rounding of
        # L'(a - b) and of the closed-form gradients' sums
        exact = algo == "dtp" or (algo, arch) == ("drl", "lenet")
        assert torch.equal(a, b) if exact else torch.allclose(a, b, rtol=1e-4, atol=3e-7)


def _fast_and_reference_feedback(rule) -> tuple[list[tuple[str, torch.Tensor, torch.Tensor]], int, int]:
    """The rule's own feedback training (rule.train_feedback) and, on a copy, `iterations` steps of `fit` on
    rule.feedback_loss (one noise draw each), from the same seed on the same batch. Returns the (name, fast,
    reference) feedback parameters and how many weights and biases the fast path moved."""
    import copy

    twin, before = copy.deepcopy(rule), [p.clone() for p in rule.feedback_net.parameters()]
    s, pools = targetprop.clean_forward(rule.blocks, torch.randn(16, 1, 28, 28))
    torch.manual_seed(0)
    rule.train_feedback(s, pools)
    torch.manual_seed(0)
    for i, fb in enumerate(twin.feedback):
        if fb.opt is not None:
            targetprop.fit(fb, lambda i=i: twin.feedback_loss(i, s, pools))
    named = list(rule.feedback_net.named_parameters())
    moved = [n for (n, a), b in zip(named, before, strict=True) if not torch.equal(a, b)]
    pairs = [(n, a, b) for (n, a), b in zip(named, twin.feedback_net.parameters(), strict=True)]
    return pairs, sum(n.endswith("weight") for n in moved), sum(n.endswith("bias") for n in moved)


@pytest.mark.parametrize("arch", ["mlp", "lenet"])
@pytest.mark.parametrize("noisy", [True, False])
@pytest.mark.parametrize("chunk", [2**23, 1])
def test_ldrl_closed_form_batched_feedback_training_equals_autograd_iterations(arch, noisy, chunk, monkeypatch):
    """fit_feedback (all iterations' noise in one draw, F and P batched, dL/dW in closed form, in chunks of
    iterations) gives the weights of `iterations` autograd steps on Eq. L-DRL (feedback_loss), one draw each."""
    from bioplaus_bench.algorithms import ldrl

    monkeypatch.setattr(ldrl, "CHUNK_VALUES", chunk)  # 1: one iteration per chunk, so chunk boundaries are crossed
    rule, _ = make_rule("l-drl", "mnist", arch, fb_iterations=4, noisy_pool_indices=str(noisy))
    for p in rule.feedback_net.parameters():  # nonzero biases: they cancel, and stay untouched
        torch.nn.init.uniform_(p, -0.1, 0.1)
    pairs, weights, biases = _fast_and_reference_feedback(rule)
    for name, a, b in pairs:
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6), name
    assert (weights, biases) == (len(rule.feedback) - 1, 0)  # every trained map's weight moved, no bias did


@pytest.mark.parametrize("arch", ["mlp", "lenet"])
@pytest.mark.parametrize("chunk", [2**23, 1])
def test_drl_batched_paths_feedback_training_equals_one_iteration_at_a_time(arch, chunk, monkeypatch):
    """fit_feedback (the clean upper terms once per batch, the corrupted paths of all iterations as one batch and one
    noise draw, in chunks of iterations; on the MLP step 4's gradient in closed form) gives the weights of
    `iterations` autograd steps on Eq. DRL (feedback_loss), one draw and one path each."""
    from bioplaus_bench.algorithms import dtp

    monkeypatch.setattr(dtp, "CHUNK_VALUES", chunk)  # 1: one iteration per chunk, so chunk boundaries are crossed
    rule, _ = make_rule("drl", "mnist", arch, fb_iterations=3)
    pairs, weights, _biases = _fast_and_reference_feedback(rule)
    for name, a, b in pairs:
        if arch == "lenet":  # autograd on both sides: the batched paths give the same values, bit for bit
            assert torch.equal(a, b), name
        else:  # the closed form sums the gradient in another order: equal to float rounding
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-6), name
    assert weights == len(rule.feedback) - 1  # every trained map's weight moved, G of block 0's did not


@pytest.mark.parametrize("arch", ["mlp", "lenet"])
@pytest.mark.parametrize("chunk", [2**23, 1])
def test_dtp_batched_closed_form_feedback_training_equals_autograd_iterations(arch, chunk, monkeypatch):
    """DTP's fit_feedback (the iterations' noise in one draw and F on all of them at once, in chunks of iterations;
    the Lee maps' gradient in closed form) gives the weights of `iterations` autograd steps on Lee Eq. 16."""
    from bioplaus_bench.algorithms import dtp

    monkeypatch.setattr(dtp, "CHUNK_VALUES", chunk)
    rule, _ = make_rule("dtp", "mnist", arch, fb_iterations=3)
    for p in rule.feedback_net.parameters():
        torch.nn.init.uniform_(p, -0.1, 0.1)
    pairs, weights, biases = _fast_and_reference_feedback(rule)
    for name, a, b in pairs:
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6), name
    assert weights == biases == len(rule.feedback) - 1  # every trained map's weight and bias moved


@pytest.mark.parametrize("act", [nn.Tanh(), nn.Sigmoid(), nn.ReLU(), nn.ELU(), nn.Identity()])
def test_act_backward_is_autograds_gradient_through_the_activation(act):
    from bioplaus_bench.algorithms.dtp import act_backward

    torch.manual_seed(0)
    pre, grad = torch.randn(64, 32, requires_grad=True), torch.randn(64, 32)
    out = act(pre)
    (expected,) = torch.autograd.grad(out, pre, grad)
    assert torch.equal(act_backward(act, grad, pre.detach(), out.detach()), expected)


def test_fwdtp_bn_targets_are_standardised_fixed_feedback_and_beta_zero_gives_the_activations():
    from bioplaus_bench.algorithms.fwdtp_bn import standardize

    rule, _ = make_rule("fw-dtp-bn", "mnist", "mlp", beta=0.0)
    fb = [p.clone() for p in rule.feedback_net.parameters()]
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    s, _ = targetprop.forward_blocks(rule.blocks, x)
    for h in s[1:]:  # every block's output, the logits included, is standardised over the batch
        assert torch.allclose(h.mean(0), torch.zeros(h.shape[1]), atol=1e-5)
        assert torch.allclose(h.std(0), torch.ones(h.shape[1]), atol=1e-4)
    t = rule.targets(s, targetprop.output_target("ce", s[-1], y, 0.0))
    for i in range(1, len(s)):  # BN(g(s) + s - g(s)) = BN(s) = s: the difference correction, re-standardised
        assert torch.allclose(t[i], s[i].detach(), atol=1e-4), i
    t = rule.targets(s, targetprop.output_target("ce", s[-1], y, 1.0))
    assert torch.allclose(t[2], standardize(t[2]), atol=1e-5)  # a propagated target is standardised too
    w = [p.clone() for p in rule.model.parameters()]
    rule.cfg = type(rule.cfg)(beta=0.04)
    for _ in range(3):
        rule.step(x, y)
    assert all(torch.equal(a, b) for a, b in zip(fb, rule.feedback_net.parameters(), strict=True))
    assert all(not torch.equal(a, b) for a, b in zip(w, rule.model.parameters(), strict=True))


def test_half_squared_error_at_twice_the_lr_takes_the_full_squared_error_step():
    """The Shibuya sensitivity grid's DTP cells (papers/shibuya2023.py, DTP_LR_FACTOR): one SGD step (momentum 0)
    on sum 1/2 ||s - t||^2 at lr 2 eta gives the same weights as one on sum ||s - t||^2 at lr eta (FW-DTP's loss)."""
    torch.manual_seed(0)
    weights = []
    for scale, lr in ((0.5, 0.8), (1.0, 0.4)):
        torch.manual_seed(0)
        layer = nn.Linear(6, 4)
        x = torch.randn(5, 6)
        s = [x, torch.tanh(layer(x))]
        t = [None, s[1].detach() + 0.1 * torch.randn(5, 4)]
        targetprop.local_forward_step(s, t, torch.optim.SGD(layer.parameters(), lr=lr, momentum=0.0), scale)
        weights.append(layer.weight.detach().clone())
    torch.testing.assert_close(weights[0], weights[1], rtol=1e-6, atol=1e-7)
