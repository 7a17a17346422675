"""Accuracy thresholds on real MNIST / Fashion-MNIST (3 epochs, MLP 784-256x5-10, seed 0) and determinism."""

import json

import pytest

from bioplaus_bench.harness import RunSpec, train

pytestmark = [pytest.mark.data, pytest.mark.slow]

THRESHOLDS = [("bp", "mnist", 0.96, None), ("fa", "mnist", 0.93, None), ("dfa", "mnist", 0.93, None),
              ("bp", "fashion-mnist", 0.84, None), ("usf", "mnist", 0.94, None), ("cdni", "mnist", 0.93, None),
              ("dni", "mnist", 0.93, None),  # the rule's MNIST default batch, 32 (algorithms/dni.py)
              ("tp", "mnist", 0.50, None)]  # above chance: 91.87% measured with the defaults


@pytest.mark.parametrize("algo,task,threshold,batch_size", THRESHOLDS)
def test_accuracy_threshold(algo, task, threshold, batch_size, data_root, tmp_path):
    rec = train(RunSpec(algo=algo, task=task, epochs=3, seed=0, batch_size=batch_size, data_dir=str(data_root),
                        out=str(tmp_path), progress=False))
    assert rec["status"] == "completed"
    assert rec["final"]["test_acc"] >= threshold, rec["final"]


@pytest.mark.parametrize("algo", ["pepita", "ff", "eqprop"])
def test_forward_only_and_energy_based_rules_pass_90_percent_after_one_epoch(algo, data_root, tmp_path):
    """Issue 16's mark (90% on MNIST after 3 epochs) already after 1, on each rule's own network with its defaults
    (measured: PEPITA 93.2%, Forward-Forward 91.4%, EqProp 95.2%; results/tuning/<rule>, <rule>-seeds)."""
    rec = train(RunSpec(algo=algo, task="mnist", epochs=1, seed=0, data_dir=str(data_root), out=str(tmp_path),
                        progress=False))
    assert rec["status"] == "completed" and rec["final"]["test_acc"] >= 0.90, rec["final"]


def _strip_timing(rec):
    rec = json.loads(json.dumps(rec))
    for k in ("started", "finished", "_path", "load_avg_start", "load_avg_end"):
        rec.pop(k, None)
    for k in ("epoch_seconds", "feedback_seconds", "eval_seconds"):
        rec["curves"].pop(k)
    for k in list(rec["final"]):
        if "seconds" in k:
            rec["final"].pop(k)
    return rec


def test_same_run_twice_gives_identical_records(data_root, tmp_path):
    recs = []
    for i in range(2):
        spec = RunSpec(algo="fa", task="mnist", epochs=1, seed=3, data_dir=str(data_root),
                       out=str(tmp_path / str(i)), progress=False)
        recs.append(_strip_timing(train(spec)))
    assert recs[0] == recs[1]
    assert recs[0]["run_id"] == recs[1]["run_id"]


def _hidden_angle(rec) -> float:
    """Angle to BP at the end of training, mean over the hidden blocks' weight tensors (output block excluded)."""
    last = rec["curves"]["angles_last"][-1]
    out_block = max(int(k.split(".")[0]) for k in last)
    return sum(v for k, v in last.items() if k.endswith("weight") and int(k.split(".")[0]) < out_block) / out_block


def test_ldrl_learns_backprop_targets_on_the_mnist_mlp(data_root, tmp_path):
    """What L-DRL is for (Ernoult et al. 2022): after one MNIST epoch with its defaults, its updates of the hidden
    layers are within 25 degrees of BP's on average, and closer than DTP's and DRL's in the same setting."""
    angle = {}
    for algo in ("l-drl", "dtp", "drl"):
        rec = train(RunSpec(algo=algo, task="mnist", epochs=1, angle_every=100, data_dir=str(data_root),
                            out=str(tmp_path), progress=False))
        angle[algo] = _hidden_angle(rec)
    assert angle["l-drl"] < 25 and angle["l-drl"] < min(angle["dtp"], angle["drl"]), angle
