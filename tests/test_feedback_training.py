"""The feedback-training experiment (bioplaus_bench/feedback_training.py): its Jacobian measures and records."""

import pytest
import torch
from torch import nn

from bioplaus_bench import feedback_training as ft
from bioplaus_bench import targetprop as tp


def _layer(w: torch.Tensor) -> tp.FeedbackLayer:
    lin = nn.Linear(w.shape[1], w.shape[0], bias=False)
    with torch.no_grad():
        lin.weight.copy_(w)
    return tp.FeedbackLayer(tp.Inverse([lin]), None, 0, 0.0)


@pytest.mark.parametrize(("n_in", "n_out"), [(8, 5), (5, 8)])  # compressing and expanding layers
def test_jacobian_measures_are_zero_for_the_transpose_and_for_an_inverse(n_in, n_out):
    """For F(x) = W x: G = W^T gives angle 0 and distance 0 to J_F^T; G = pinv(W) gives inverse residual 0
    (J_F J_G = I when F compresses, J_G J_F = I when it expands), while W^T does not (W is not orthogonal)."""
    torch.manual_seed(0)
    block = nn.Sequential(nn.Linear(n_in, n_out, bias=False))
    w = block[0].weight.detach()
    x = torch.randn(6, n_in)
    gen = torch.Generator().manual_seed(0)
    transpose = ft.jacobian_agreement(block, _layer(w.T), x, 8, gen)
    assert transpose["angle_T"] < 1e-3 and transpose["dist_T"] < 1e-5
    assert transpose["inverse_residual"] > 0.1
    inverse = ft.jacobian_agreement(block, _layer(torch.linalg.pinv(w)), x, 8, gen)
    assert inverse["inverse_residual"] < 1e-5 and inverse["angle_T"] > 1.0


@pytest.mark.data
def test_every_loss_starts_from_the_same_network_and_feedback(tmp_path, data_root):
    """One record per loss; at iteration 0 every loss sees the same frozen LeNet and the same G (the comparison is
    between losses only), and only the feedback maps of blocks 1..3 are measured."""
    recs = ft.run(tmp_path, ft.SMOKE, (0,), str(data_root))
    assert [r["config"]["loss"] for r in recs] == list(ft.LOSSES)
    assert recs[0]["layers"] == ["conv 32->64 +pool", "linear 3136->512", "linear 512->10"]
    first = {key: recs[0]["curves"][key][0] for key in ("angle_T", "dist_T", "inverse_residual", "bp_angle")}
    for r in recs[1:]:
        assert {key: r["curves"][key][0] for key in first} == first
        assert r["curves"]["iteration"] == [0, 2, 4] and not ft.is_stale(r)
    assert ft.run(tmp_path, ft.SMOKE, (0,), str(data_root)) == recs  # finished records are read, not redone
