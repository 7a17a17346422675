"""Angle between each rule's update and the BP gradient (bioplaus_bench.measure)."""

import pytest
import torch
from helpers import make_rule

from bioplaus_bench.harness import RunSpec, train
from bioplaus_bench.measure import angles_to_bp


def test_bp_angle_is_zero():
    rule, _ = make_rule("bp", "mnist", "lenet")
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    angles = angles_to_bp(rule, x, y)
    assert len(angles) == 8 and max(angles.values()) < 1e-3, angles  # weights and biases of 4 layers


def test_measuring_does_not_change_training():
    x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    for algo in ("fa", "l-drl"):  # l-drl draws noise from the global RNG in every step
        rules = []
        for measure in (True, False):
            rule, _ = make_rule(algo, "mnist", seed=1)
            for i in range(3):
                if measure and i != 1:
                    angles_to_bp(rule, x, y)  # the copy's random numbers come from a forked RNG
                rule.step(x, y)
            rules.append(rule)
        for p, q in zip(rules[0].model.parameters(), rules[1].model.parameters(), strict=True):
            assert torch.equal(p, q)
        for p, q in zip(rules[0].feedback_net.parameters() if algo == "l-drl" else [],
                        rules[1].feedback_net.parameters() if algo == "l-drl" else [], strict=True):
            assert torch.equal(p, q)


@pytest.mark.data
def test_fa_aligns_during_training_on_mnist(data_root, tmp_path):
    rec = train(RunSpec(algo="fa", task="mnist", epochs=1, angle_every=50, data_dir=str(data_root),
                        out=str(tmp_path), progress=False))
    angles = rec["curves"]["angles"][0]
    hidden = [v for k, v in angles.items() if k.endswith("weight")]
    assert len(hidden) == 6 and all(a < 90.0 for a in hidden), angles
    assert angles["5.0.weight"] < 1e-3  # the output layer gets the true gradient under FA
