"""DDTP (algorithms/ddtp.py): the direct difference reconstruction loss and the targets it leads to."""

import torch
from torch import nn

from bioplaus_bench import get_algorithm, get_task
from bioplaus_bench import targetprop as tp
from bioplaus_bench.config import resolve
from bioplaus_bench.harness import create_rule


def _frozen_linear_rule(**overrides):
    """DDTP on a 30-16-12-10 linear network (no bias, frozen, orthogonal rows so J_l is well conditioned):
    J_l = da/ds_l is the same for every input."""
    torch.manual_seed(0)
    entry, task = get_algorithm("ddtp"), get_task("teacher-student")
    cfg, _ = resolve(entry, None, {k: str(v) for k, v in overrides.items()}, "linear3")
    model = nn.Sequential(*(nn.Sequential(nn.Linear(i, o, bias=False)) for i, o in ((30, 16), (16, 12), (12, 10))))
    for p in model.parameters():
        nn.init.orthogonal_(p)
        p.requires_grad_(False)
    return create_rule(entry, cfg, model, task, 1), model


def test_direct_feedback_reaches_the_drl_minimum_and_gives_gauss_newton_targets():
    """Trained on a frozen linear network, each Q_l minimises L_l = ||(Q_l J_l - I) e||^2 / sigma^2, whose unique
    minimiser is the pseudo-inverse J_l^+ and whose minimum is (n_l - rank J_l) / n_l per sample (the loss is a
    mean over units): 6/16 + 2/12 summed over the two hidden blocks. Then every hidden target is the
    Gauss-Newton-style (minimum-norm) one, t_l - s_l = J_l^+ (t_N - a): carried through the frozen layers above
    it, it reproduces the output target (J_l (t_l - s_l) = t_N - a), and it has no component in the null space
    of J_l."""
    rule, model = _frozen_linear_rule(fb_lr=1e-2, fb_betas=(0.9, 0.999), fb_weight_decay=0, fb_iterations=1,
                                      fb_noise=0.1, beta=0.1)
    x = torch.randn(1024, 30)
    s, _ = tp.clean_forward(rule.blocks, x)
    for lr in (1e-2, 1e-3, 1e-4):  # Adam's steps jitter at the scale of lr: anneal
        for group in rule.fb_opt.param_groups:
            group["lr"] = lr
        for _ in range(600):
            rule.train_feedback(s)
    w1, w2, w3 = (b[0].weight for b in rule.blocks)
    jacobians = [w3 @ w2, w3]  # da/ds_1, da/ds_2
    for q, j in zip(rule.feedback_net, jacobians, strict=True):
        pinv = torch.linalg.pinv(j)
        assert (q.weight - pinv).norm() / pinv.norm() < 0.02
    with torch.no_grad():
        loss = torch.stack([rule.feedback_loss(s) for _ in range(20)]).mean()
    assert abs(loss.item() - (6 / 16 + 2 / 12)) < 0.02
    y = torch.randn(1024, 10)
    t = rule.targets([h.clone() for h in s], y)
    for k, j in enumerate(jacobians, start=1):
        step = t[k] - s[k]
        out_step = t[-1] - s[-1]
        assert (step @ j.T - out_step).norm() < 0.02 * out_step.norm()
        null = torch.eye(j.shape[1]) - torch.linalg.pinv(j) @ j  # projector onto the null space of J_l
        assert (step @ null).norm() < 0.03 * step.norm()


def test_ddtp_forward_step_uses_the_targets_and_leaves_the_feedback_to_its_own_optimiser():
    """The hidden blocks' update is the gradient of ||s_l - t_l||^2 with t_l = s_l + Q_l (t_N - a): with Q = 0
    and no output step, nothing moves; the feedback step changes Q only."""
    torch.manual_seed(0)
    rule, model = _frozen_linear_rule(beta=0.0, fb_iterations=1)
    for p in model.parameters():
        p.requires_grad_(True)
    before = [p.detach().clone() for p in model.parameters()]
    q_before = [q.weight.detach().clone() for q in rule.feedback_net]
    rule.step(torch.randn(64, 30), torch.randn(64, 10))
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))  # beta 0: t = s
    assert all(not torch.equal(a, q.weight) for a, q in zip(q_before, rule.feedback_net, strict=True))
