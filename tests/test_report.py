"""Leaderboard statistics on synthetic records with known answers."""

import numpy as np
import pytest

from bioplaus_bench.records import RecordScan
from bioplaus_bench.report import aggregate, frame, iqm, normalised_score, render, stratified_bootstrap_ci, summary


def test_iqm_known_values():
    assert iqm(np.arange(1, 9)) == pytest.approx(4.5)  # middle 50% of 1..8 is 3,4,5,6
    assert iqm([1, 2, 3, 4, 100, -100, 2.5, 3.5]) == pytest.approx(np.mean([2, 2.5, 3, 3.5]))
    assert iqm([7.0]) == 7.0


def test_normalised_score():
    assert normalised_score(0.98, 0.98, 0.1) == pytest.approx(1.0)
    assert normalised_score(0.1, 0.98, 0.1) == pytest.approx(0.0)
    assert normalised_score(0.54, 0.98, 0.1) == pytest.approx(0.5)


def test_stratified_bootstrap_is_reproducible_and_covers_the_iqm():
    rng = np.random.default_rng(3)
    groups = [rng.normal(0.9, 0.02, 5), rng.normal(0.8, 0.05, 5)]
    a = stratified_bootstrap_ci(groups, seed=7)
    b = stratified_bootstrap_ci(groups, seed=7)
    assert a == b and a[0] < iqm(np.concatenate(groups)) < a[1]
    # a constant sample has a zero-width interval
    assert stratified_bootstrap_ci([np.ones(4), np.ones(3)], seed=0) == (1.0, 1.0)
    # resampling stays inside each task: a single-run task contributes its only value every time
    lo, hi = stratified_bootstrap_ci([np.array([0.0]), np.array([1.0])], stat=np.mean, seed=0)
    assert lo == hi == 0.5


def _rec(algo, task, seed, acc, status="completed", secs=1.0):
    return {"schema_version": 2, "run_id": f"{algo}{seed}", "status": status,
            "config": {"algo": algo, "task": task, "arch": "mlp", "seed": seed, "epochs": 1, "batch_size": 128,
                       "hparams": {}},
            "final": {"test_acc": acc, "epoch_seconds": secs, "feedback_seconds": 0.0,
                      "final_angles": {"0.weight": 10.0, "0.bias": 50.0}}, "curves": {}}


def test_leaderboard_on_synthetic_records():
    recs = [_rec("bp", "mnist", s, a) for s, a in enumerate([0.97, 0.98, 0.99])]
    recs += [_rec("fa", "mnist", s, a, secs=2.0) for s, a in enumerate([0.535, 0.545, 0.555])]
    recs += [_rec("fa", "mnist", 9, 0.0, status="failed")]
    df = frame(RecordScan(records=recs))
    table = aggregate(df)
    fa = table[table.algo == "fa"].iloc[0]
    assert fa.n == 3 and fa.acc_mean == pytest.approx(0.545) and fa.time_vs_bp == pytest.approx(2.0)
    assert fa.angle == pytest.approx(10.0) and fa.n_failed == 1  # weights only; biases are reported separately
    s = summary(df, table, seed=0).set_index("algo")
    assert s.loc["bp", "norm_iqm"] == pytest.approx(1.0)
    assert s.loc["fa", "norm_iqm"] == pytest.approx((0.545 - 0.1) / (0.98 - 0.1))
    text = render(df)
    assert "| fa | defaults | 1 | 128 | 3 | 54.50 | 1.00 |" in text and "Not aggregated" in text and "failed" in text
