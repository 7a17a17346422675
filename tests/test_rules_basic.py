"""Defining properties of BP, FA and DFA."""

import copy

import pytest
import torch
import torch.nn.functional as F
from helpers import make_rule

from bioplaus_bench import targetprop as tp


def test_bp_step_equals_autograd_sgd():
    rule, _ = make_rule("bp", "mnist", momentum=0.0, lr=0.1)
    ref = copy.deepcopy(rule.model)
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    F.cross_entropy(ref(x), y).backward()
    rule.step(x, y)
    for p, q in zip(rule.model.parameters(), ref.parameters(), strict=True):
        assert torch.allclose(p, q.detach() - 0.1 * q.grad, atol=1e-6)


@pytest.mark.parametrize("arch,task", [("mlp", "mnist"), ("lenet", "mnist")])
def test_fa_feedback_matrices_never_change_and_replace_wT(arch, task):
    rule, _ = make_rule("fa", task, arch)
    fbs = {n: b.clone() for n, b in rule.model.named_buffers() if n.endswith("feedback")}
    assert len(fbs) == (6 if arch == "mlp" else 4)
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    for _ in range(3):
        rule.step(x, y)
    for n, b in rule.model.named_buffers():
        if n.endswith("feedback"):
            assert torch.equal(b, fbs[n]), n
    # FA equation: the error below a Linear layer is delta B, not delta W
    lin = rule.model[-1][0]
    h = torch.randn(4, lin.in_features, requires_grad=True)
    g = torch.randn(4, 10)
    lin.weight.grad = None
    lin(h).backward(g)
    assert torch.allclose(h.grad, g @ lin.feedback, atol=1e-6)
    assert not torch.allclose(h.grad, g @ lin.weight.detach(), atol=1e-3)
    assert torch.allclose(lin.weight.grad, g.t() @ h.detach(), atol=1e-6)  # dW = delta^T h


def test_fa_conv_input_gradient_uses_feedback_kernel():
    rule, _ = make_rule("fa", "mnist", "lenet")
    conv = rule.model[1][0]
    x = torch.randn(2, 32, 14, 14, requires_grad=True)
    out = conv(x)
    g = torch.randn_like(out)
    out.backward(g)
    expect = torch.nn.grad.conv2d_input(x.shape, conv.feedback, g, conv.stride, conv.padding)
    assert torch.allclose(x.grad, expect, atol=1e-5)


def test_dfa_hidden_updates_use_only_the_output_error():
    rule, spec = make_rule("dfa", "mnist", momentum=0.0)
    x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    blocks = rule.blocks
    with torch.no_grad():
        hs, h = [], x
        for b in blocks:
            h = b(h)
            hs.append(h)
    out = hs[-1].clone().requires_grad_(True)
    e = torch.autograd.grad(F.cross_entropy(out, y), out)[0]
    rule.step(x, y)
    # delta_l = (e B_l) * tanh'(a_l) = (e B_l) * (1 - h_l^2); dW_l = delta_l^T h_{l-1}
    for i in range(1, len(blocks) - 1):
        delta = (e @ rule.feedback[i]) * (1 - hs[i] ** 2)
        assert torch.allclose(blocks[i][0].weight.grad, delta.t() @ hs[i - 1], atol=1e-5), i
    # the last block learns from e itself (dW_N = e^T h_{N-1}), exactly as BP does there
    assert torch.allclose(blocks[-1][0].weight.grad, e.t() @ hs[-2], atol=1e-6)
    # B is fixed by the seed and not a parameter: the optimiser never sees it
    opt_params = {id(p) for g in rule.opt.param_groups for p in g["params"]}
    assert all(id(b) not in opt_params for b in rule.feedback)


def test_bp_step_schedule_is_distributed_dtps_imagenet32_steplr():
    """The ImageNet32 baseline's lr: 0.01 for epochs 0-29, 1e-3 for 30-59, 1e-4 for 60-89 (StepLR(30, 0.1))."""
    from bioplaus_bench import get_algorithm
    from bioplaus_bench.config import preset_settings

    values, run = preset_settings(get_algorithm("bp"), "ernoult2022-vgg-imagenet32")
    assert {k: values[k] for k in ("lr", "lr_step_every", "lr_step_gamma", "scheduler")} == \
        {"lr": 0.01, "lr_step_every": 30, "lr_step_gamma": 0.1, "scheduler": "none"}
    assert run["batch_size"] == 256
    rule, _ = make_rule("bp", lr=0.01, lr_step_every=30, epochs=90)
    lrs = []
    for _ in range(90):
        lrs.append(rule.opt.param_groups[0]["lr"])
        rule.opt.step()  # no gradients: no change; keeps the scheduler's optimizer-step-first order
        rule.end_epoch()
    assert lrs[:30] == pytest.approx([0.01] * 30) and lrs[30:60] == pytest.approx([1e-3] * 30)
    assert lrs[60:] == pytest.approx([1e-4] * 30)
    with pytest.raises(ValueError, match="one schedule"):
        make_rule("bp", lr_step_every=30, scheduler="cosine")


def test_drl_feedback_weight_decay_joins_the_feedback_sgd_step():
    """One feedback step (momentum buffer empty) with decay lambda moves G's weights by exactly -lr * lambda * V
    more than the same step without decay, on the same batch and noise."""
    x = torch.randn(16, 1, 28, 28)
    after = {}
    for wd in (0.0, 0.5):
        rule, _ = make_rule("drl", fb_iterations=1, fb_lr=0.01, fb_weight_decay=wd)
        before = [p.detach().clone() for p in rule.feedback[1].map.parameters()]
        torch.manual_seed(1)
        s, pools = tp.clean_forward(rule.blocks, x)
        rule.train_feedback(s, pools)
        after[wd] = [p.detach().clone() for p in rule.feedback[1].map.parameters()]
    for v0, a0, a1 in zip(before, after[0.0], after[0.5], strict=True):
        torch.testing.assert_close(a1 - a0, -0.01 * 0.5 * v0, rtol=1e-4, atol=1e-7)
