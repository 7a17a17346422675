"""Defining properties of the rule families beyond BP, FA and TP: KP, WM, DRTP, PC, node perturbation, PEPITA,
Forward-Forward and equilibrium propagation."""

import math

import torch
import torch.nn.functional as F
from helpers import make_rule


def _angle(a: torch.Tensor, b: torch.Tensor) -> float:
    cos = F.cosine_similarity(a.flatten(), b.flatten(), dim=0).clamp(-1, 1)
    return math.degrees(math.acos(cos.item()))


def _data(n: int = 32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_kp_difference_between_w_and_b_decays_exactly_geometrically():
    """Plain SGD: W_t - B_t = (1 - eta lambda)^t (W_0 - B_0), on any data (Akrout et al. eqs. 16-17)."""
    lr, lam, steps = 0.05, 0.2, 20
    rule, _ = make_rule("kp", momentum=0.0, lr=lr, weight_decay=lam)
    d0 = [(m.weight - m.feedback).detach().clone() for m in rule.layers]
    for t in range(steps):
        rule.step(*_data(seed=t))
    for m, d in zip(rule.layers, d0, strict=True):
        torch.testing.assert_close(m.weight - m.feedback, (1 - lr * lam) ** steps * d, rtol=1e-4, atol=1e-6)


def test_kp_aligns_the_feedback_with_the_forward_weights():
    """On the teacher-student regression (the suite's linear3 network), with momentum and decay, every B_l goes
    from its random start (about 90 degrees from W_l) to within 10 degrees of W_l."""
    rule, task = make_rule("kp", "teacher-student", "linear3", lr=0.05, weight_decay=0.05)
    assert all(_angle(m.weight, m.feedback) > 60 for m in rule.layers)
    g = torch.Generator().manual_seed(0)
    teacher = torch.randn(task.num_classes, *task.input_shape, generator=g) / 5
    for _ in range(300):
        x = torch.randn(64, *task.input_shape, generator=g)
        rule.step(x, x @ teacher.t())
    assert max(_angle(m.weight, m.feedback) for m in rule.layers) < 10


def test_kp_backward_pass_uses_b_not_w():
    rule, _ = make_rule("kp")
    lin = rule.layers[-1]
    h = torch.randn(4, lin.in_features, requires_grad=True)
    g = torch.randn(4, 10)
    lin(h).backward(g)
    torch.testing.assert_close(h.grad, g @ lin.feedback.detach())


def test_wm_mirror_mode_drives_b_to_the_scaled_forward_weights():
    """With W fixed, mirror steps take B to (eta_B sigma^2 / lambda_B) W, whatever B was: the angle goes from
    about 90 degrees to a few, and the scale matches the fixed point."""
    rule, _ = make_rule("wm", mirror_lr=0.02, mirror_decay=0.01, mirror_noise=1.0, mirror_batch=256)
    assert all(_angle(m.weight, m.feedback) > 80 for m in rule.layers)
    for _ in range(1500):
        rule.mirror()
    for m in rule.layers:
        assert _angle(m.weight, m.feedback) < 10
        ratio = (m.feedback.norm() / m.weight.norm()).item()
        assert abs(ratio - 2.0) < 0.2, ratio  # eta_B sigma^2 / lambda_B = 0.02 / 0.01


def test_wm_engaged_mode_is_fa_through_the_current_feedback():
    rule, _ = make_rule("wm", momentum=0.0)
    lin = rule.layers[-1]
    h = torch.randn(4, lin.in_features, requires_grad=True)
    g = torch.randn(4, 10)
    lin(h).backward(g)
    torch.testing.assert_close(h.grad, g @ lin.feedback)


def test_drtp_hidden_updates_depend_only_on_the_target():
    """Changing the output weights changes the output error but no hidden update; the hidden update of block 0
    is (y* B_0 / n) pulled back through that block alone."""
    x, y = _data()
    a, _ = make_rule("drtp", momentum=0.0)
    b, _ = make_rule("drtp", momentum=0.0)
    with torch.no_grad():
        b.model[-1][0].weight.mul_(-3.0)  # a different output layer, hence a different error e
    a.step(x, y)
    b.step(x, y)
    ga = [p.grad.clone() for p in a.model.parameters()]
    gb = [p.grad.clone() for p in b.model.parameters()]
    n_out = len(list(a.model[-1].parameters()))
    for u, v in zip(ga[:-n_out], gb[:-n_out], strict=True):
        torch.testing.assert_close(u, v)
    assert not torch.allclose(ga[-1], gb[-1])
    # Eq. DRTP for the first block, by hand
    c, _ = make_rule("drtp", momentum=0.0)
    block = c.model[0]
    h = block(x)
    w = next(block.parameters())
    expect = torch.autograd.grad(h, w, F.one_hot(y, 10).float() @ c.feedback[0] / len(y))[0]
    torch.testing.assert_close(ga[0], expect)


def _bp_grads(rule, x, y):
    import copy

    ref = copy.deepcopy(rule.model)
    F.cross_entropy(ref(x), y).backward()
    return [p.grad for p in ref.parameters()]


def test_pc_with_fixed_predictions_reproduces_backprop_exactly():
    """Millidge et al.: fixed predictions, gamma = 1 and T >= depth - 1 relaxation steps give BP's update."""
    rule, _ = make_rule("pc", fixed_prediction=True, inference_rate=1.0, inference_steps=6)
    x, y = _data()
    bp = _bp_grads(rule, x, y)
    rule.step(x, y)
    for p, g in zip(rule.model.parameters(), bp, strict=True):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-7)
        assert _angle(p.grad, g) < 1


def test_pc_too_few_relaxation_steps_leave_the_lowest_layers_without_error():
    """The error spreads one layer per step: with T = 2 the first block receives no update at all."""
    rule, _ = make_rule("pc", fixed_prediction=True, inference_rate=1.0, inference_steps=2)
    rule.step(*_data())
    assert next(rule.model[0].parameters()).grad.abs().max() == 0


def test_pc_strict_relaxation_lowers_the_energy_and_approaches_backprop():
    """Whittington & Bogacz: every relaxation step lowers E; at a small output error (weak nudging, beta 0.01)
    every layer's update is within a few degrees of BP's."""
    rule, _ = make_rule("pc", inference_rate=0.2, inference_steps=100, beta=0.01)
    x, y = _data()
    with torch.no_grad():
        v, h = [], x
        for block in rule.blocks[:-1]:
            h = block(h)
            v.append(h.clone())
    energies = []
    for _ in range(30):
        v = [n.detach().requires_grad_() for n in v]
        e = rule.energy(x, v, y)
        energies.append(e.item())
        g = torch.autograd.grad(e, v)
        v = [n - 0.2 * d for n, d in zip(v, g, strict=True)]
    assert all(b <= a + 1e-6 for a, b in zip(energies, energies[1:], strict=False))
    bp = _bp_grads(rule, x, y)
    rule.step(x, y)
    angles = [_angle(p.grad, g) for p, g in zip(rule.model.parameters(), bp, strict=True)]
    assert max(angles) < 5, angles


def test_node_perturbation_estimate_averages_to_the_gradient():
    """Williams: E[(L~ - L) xi / sigma^2] -> dL/da as sigma -> 0; averaged over many noise draws the update's
    cosine to the BP gradient exceeds 0.9 in every layer (linear teacher-student network, one batch)."""
    rule, task = make_rule("np", "teacher-student", "linear3", lr=0.0, momentum=0.0, sigma=1e-3)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20, *task.input_shape, generator=g)
    y = torch.randn(20, task.num_classes, generator=g)
    import copy

    ref = copy.deepcopy(rule.model)
    (0.5 * (ref(x) - y).pow(2).sum(1).mean()).backward()
    total = [torch.zeros_like(p) for p in rule.model.parameters()]
    for _ in range(3000):
        rule.step(x, y)
        for t, p in zip(total, rule.model.parameters(), strict=True):
            t += p.grad
    for t, p in zip(total, ref.parameters(), strict=True):
        assert F.cosine_similarity(t.flatten(), p.grad.flatten(), dim=0) > 0.9



# ---- PEPITA


def test_pepita_runs_no_backward_pass():
    """No autograd call at all during a step, and the same update with every parameter's requires_grad off (the
    reference's check that the rule uses no graph)."""
    x, y = _data()
    a, _ = make_rule("pepita", dropout=0.0)
    b, _ = make_rule("pepita", dropout=0.0)
    for p in b.model.parameters():
        p.requires_grad_(False)

    def forbidden(*args, **kwargs):
        raise AssertionError("PEPITA called autograd")

    saved = torch.autograd.backward, torch.autograd.grad
    torch.autograd.backward, torch.autograd.grad = forbidden, forbidden
    try:
        a.step(x, y)
        b.step(x, y)
    finally:
        torch.autograd.backward, torch.autograd.grad = saved
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=0)


def test_pepita_update_is_the_modulated_minus_clean_activity_difference():
    """dW_1 = (h_1 - h_1^err)^T (x + F e) / n and dW_2 = e_err^T h_1^err / n, computed here by hand; to first order
    in F e, h_1 - h_1^err = -f'(a_1) * (W_1 F e) (feedback alignment through W_1 F)."""
    x, y = _data()
    rule, _ = make_rule("pepita", dropout=0.0)
    w1, w2 = (lin.weight.detach().clone() for lin in rule.linears)
    f = rule.feedback
    x0 = x.flatten(1)
    h1 = torch.relu(x0 @ w1.t())
    e = (h1 @ w2.t()).softmax(1) - F.one_hot(y, 10).float()
    xm = x0 + e @ f.t()
    h1m = torch.relu(xm @ w1.t())
    em = (h1m @ w2.t()).softmax(1) - F.one_hot(y, 10).float()
    rule.step(x, y)
    torch.testing.assert_close(rule.linears[0].weight.grad, (h1 - h1m).t() @ xm / len(x))
    torch.testing.assert_close(rule.linears[1].weight.grad, em.t() @ h1m / len(x))
    x0, w1, e, small = x0.double(), w1.double(), e.double(), 1e-3 * f.double()  # Taylor, a tiny projection
    a1 = x0 @ w1.t()
    diff = torch.relu(a1) - torch.relu((x0 + e @ small.t()) @ w1.t())
    first_order = -(a1 > 0).double() * (e @ small.t() @ w1.t())
    assert (diff - first_order).norm() / first_order.norm() < 1e-3


# ---- Forward-Forward


def test_ff_layers_receive_no_gradient_from_the_layers_above():
    """Changing the top layer changes nothing in the updates of the layers below it (same data, same negatives)."""
    x, y = _data()
    a, _ = make_rule("ff")
    b, _ = make_rule("ff")
    with torch.no_grad():
        b.model.layers[-1].weight.mul_(-2.0)
    for rule in (a, b):
        torch.manual_seed(3)  # the same wrong labels
        rule.step(x, y)
    for la, lb in zip(a.model.layers[:-1], b.model.layers[:-1], strict=True):
        torch.testing.assert_close(la.weight.grad, lb.weight.grad, rtol=0, atol=0)
    assert not torch.allclose(a.model.layers[-1].weight.grad, b.model.layers[-1].weight.grad)


def test_ff_length_normalisation_hides_the_previous_layers_scale():
    """Scaling a layer's input by c > 0 leaves its output unchanged."""
    from bioplaus_bench.algorithms.ff import length_normalise

    rule, _ = make_rule("ff")
    lin = rule.model.layers[1]
    h = torch.rand(8, lin.in_features)
    torch.testing.assert_close(lin(length_normalise(7.5 * h)), lin(length_normalise(h)))


def test_ff_updates_raise_positive_and_lower_negative_goodness():
    """Updates on one batch push the first layer's mean positive goodness per unit above theta = 1 and the negative
    below it (the first layer reads the label pixels directly; the layers above must find the label in its
    normalised activity pattern, which takes hundreds of MNIST batches), and open the gap in the second."""
    x, y = _data(64)
    rule, _ = make_rule("ff", lr=0.003, temperature=100.0, peer_norm=0.0)
    net = rule.model
    torch.manual_seed(0)  # the wrong labels every step below draws
    wrong = (y + torch.randint(1, 10, y.shape)) % 10

    def gaps():
        with torch.no_grad():
            pos, neg = net.activities(net.embed(x, y)), net.activities(net.embed(x, wrong))
        return [(p.pow(2).mean().item(), n.pow(2).mean().item()) for p, n in zip(pos, neg, strict=True)]

    before = gaps()
    for _ in range(100):
        torch.manual_seed(0)
        rule.step(x, y)
    after = gaps()
    assert after[0][0] > 1.1 and after[0][1] < 0.9
    assert after[1][0] - after[1][1] > before[1][0] - before[1][1] + 1e-3  # the second layer starts to separate


# ---- equilibrium propagation


def _tiny_eqprop(beta: float, symmetric: bool):
    """A 6-5-4 energy network in float64 relaxed to convergence (400 free steps, 400 nudged), CE cost."""
    import dataclasses

    from bioplaus_bench.algorithms.eqprop import Config, EnergyNet, EqProp

    from bioplaus_bench import get_task

    torch.manual_seed(0)
    net = EnergyNet([6, 5, 4], steps=400).double()
    with torch.no_grad():
        for lin in net.layers:
            lin.bias.uniform_(0.2, 0.4)  # states inside (0, 1), where the hard sigmoid has a gradient
    task = dataclasses.replace(get_task("mnist"), input_shape=(6,), num_classes=4)
    cfg = Config(lr=0.0, layer_lrs=(), beta=beta, nudged_steps=400, symmetric=symmetric, random_sign=False,
                 cost="ce")
    g = torch.Generator().manual_seed(1)
    x = torch.rand(16, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (16,), generator=g)
    return EqProp(net, cfg, task, 1), x, y


def test_eqprop_update_approaches_recurrent_backprop_as_beta_vanishes():
    """Scellier & Bengio's theorem: as beta -> 0 the contrastive update is the gradient of the cost at the free fixed
    point, i.e. what backpropagation through the (converged) free relaxation gives. Cosine > 0.99 at small beta;
    the one-sided error shrinks about linearly in beta, the symmetric one (Laborieux et al.) about quadratically."""
    import copy

    rule, x, y = _tiny_eqprop(0.01, False)
    ref = copy.deepcopy(rule.model)
    F.cross_entropy(ref(x), y).backward()
    bptt = torch.cat([p.grad.flatten() for p in ref.parameters()])

    def error(beta: float, symmetric: bool) -> tuple[float, float]:
        r, _, _ = _tiny_eqprop(beta, symmetric)
        r.step(x, y)
        ep = torch.cat([p.grad.flatten() for p in r.model.parameters()])
        return F.cosine_similarity(ep, bptt, dim=0).item(), ((ep - bptt).norm() / bptt.norm()).item()

    cos, err_small = error(0.01, False)
    assert cos > 0.99
    _, err_big = error(0.1, False)
    assert 5 < err_big / err_small < 20  # O(beta)
    cos_s, sym_small = error(0.01, True)
    _, sym_big = error(0.1, True)
    assert cos_s > 0.999 and sym_small < err_small and sym_big / sym_small > 50  # O(beta^2)


def test_eqprop_free_phase_is_the_networks_forward_pass_and_a_fixed_point():
    """The rule's free phase and evaluation read the same relaxation; at its end the states no longer move."""
    rule, x, y = _tiny_eqprop(0.01, False)
    net = rule.model
    with torch.no_grad():
        free = net.relax(x, net.zeros(x), net.steps)
        torch.testing.assert_close(net(x), free[-1])
        again = net.relax(x, free, 1)
    for a, b in zip(free, again, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
