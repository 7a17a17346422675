"""uSF and frSF: the feedback follows W's signs at every step."""

import pytest
import torch
from helpers import make_rule


def test_usf_feedback_is_the_scaled_sign_of_w_at_every_step():
    rule, _ = make_rule("usf", "mnist", "lenet")
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    for _ in range(3):
        before = [m.weight.detach().clone() for m in rule.layers]
        rule.step(x, y)
        # the B this step used (it is not touched after the backward pass) is s * sign(W at the step)
        for m, s, w in zip(rule.layers, rule.scales, before, strict=True):
            assert torch.equal(m.feedback, s * torch.sign(w))
            assert s == pytest.approx(w.std().item(), rel=0.5)  # W's scale (its std at initialisation)
        assert any(not torch.equal(m.weight, w) for m, w in zip(rule.layers, before, strict=True))
    assert len(rule.layers) == 4


def test_usf_backward_uses_the_sign_feedback():
    rule, _ = make_rule("usf", "mnist", "mlp")
    lin = rule.layers[-1]  # B = s sign(W) from construction on, before any step
    h = torch.randn(4, lin.in_features, requires_grad=True)
    g = torch.randn(4, 10)
    lin(h).backward(g)
    assert torch.allclose(h.grad, g @ (rule.scales[-1] * torch.sign(lin.weight.detach())), atol=1e-6)


def test_frsf_magnitudes_are_fixed_and_signs_follow_w():
    rule, _ = make_rule("frsf", "mnist", "mlp")
    mags = [m.clone() for m in rule.magnitudes]
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    for _ in range(3):
        before = [m.weight.detach().clone() for m in rule.layers]
        rule.step(x, y)
        for m, mag, mag0, w in zip(rule.layers, rule.magnitudes, mags, before, strict=True):
            assert torch.equal(mag, mag0)
            assert torch.equal(m.feedback, mag * torch.sign(w))  # the B of this step: signs of W at the step
