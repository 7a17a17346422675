"""Grids on the local and debug executors: skipping finished points, failure isolation, SIGKILL resume."""

import os
import signal
import subprocess
import time

import pytest
import torch
from helpers import BENCH, bench, records, wait_for

from bioplaus_bench import grid as gridmod
from bioplaus_bench.registry import RegistryError


def test_study_file_round_trip(tmp_path):
    f = tmp_path / "study.toml"
    f.write_text('algos = ["bp", "fa"]\ntasks = "mnist"\nseeds = [0, 1]\nepochs = 1\nout = "x"\n'
                 '[grid]\nlr = [0.01, 0.02]\n[set]\nmomentum = 0.5\n[executor]\nname = "debug"\n')
    study, ex = gridmod.load_study(f)
    specs = study.specs()
    assert len(specs) == 2 * 1 * 2 * 2 and ex == {"name": "debug"}
    assert {s.overrides["lr"] for s in specs} == {"0.01", "0.02"} and all(s.overrides["momentum"] == "0.5"
                                                                          for s in specs)
    f.write_text('algos = ["bp"]\ntasks = ["mnist"]\nlearning_rate = 1\n')
    with pytest.raises(RegistryError, match="unknown key.*learning_rate.*accepted"):
        gridmod.load_study(f)
    with pytest.raises(RegistryError, match="unknown executor 'pbs'.*local, slurm, debug"):
        gridmod.ExecutorOptions(name="pbs")


def test_bad_grid_point_fails_before_any_work(tmp_path):
    res = bench("grid", "--algo", "bp,nope", "--task", "mnist", "--out", str(tmp_path), check=False)
    assert res.returncode == 2 and "nope" in res.stderr and "accepted" in res.stderr
    assert not list(tmp_path.iterdir())


BOOM = """
from dataclasses import dataclass
from bioplaus_bench.rule import OptimConfig, RuleBase


@dataclass(frozen=True)
class Config(OptimConfig):
    lr: float = 0.01


class Boom(RuleBase):
    \"\"\"SGD that raises on its second step when lr > 1 (a crash inside a rule).\"\"\"
    Config = Config

    def __init__(self, model, cfg, task, epochs):
        super().__init__(model, cfg, task, epochs)
        self.opt, self.n = self.add_optimizer(model.parameters(), cfg), 0

    def step(self, x, y):
        self.n += 1
        if self.cfg.lr > 1 and self.n == 2:
            raise RuntimeError("boom")
        return self.autograd_step(x, y, self.opt)
"""


@pytest.mark.slow
def test_failing_and_diverging_points_are_recorded_and_the_others_finish(tmp_path, monkeypatch):
    (tmp_path / "boom_rule.py").write_text(BOOM)
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    out = tmp_path / "g"
    res = bench("grid", "--algo", "boom_rule:Boom", "--task", "teacher-student", "--grid", "lr=0.01,2", "--epochs",
                "2", "--out", str(out), check=False)
    assert res.returncode == 2 and "1 of 2 grid points failed" in res.stderr
    by_lr = {r["config"]["hparams"]["lr"]: r for r in records(out).values()}
    assert by_lr[0.01]["status"] == "completed" and by_lr[0.01]["final"]["test_loss"] < by_lr[0.01]["curves"][
        "test_loss"][0] * 2
    assert by_lr[2]["status"] == "failed" and "RuntimeError: boom" in by_lr[2]["error"]
    # lr 1e4 makes the loss explode: the point stops early as diverged, which is not a failure
    res = bench("grid", "--algo", "bp", "--task", "teacher-student", "--grid", "lr=0.002,1e4", "--epochs", "2",
                "--out", str(tmp_path / "d"))
    by_lr = {r["config"]["hparams"]["lr"]: r for r in records(tmp_path / "d").values()}
    assert by_lr[1e4]["status"] == "diverged" and by_lr[1e4]["diverged_at"]["epoch"] == 1
    assert by_lr[0.002]["status"] == "completed"
    st = bench("status", "--out", str(tmp_path / "d"), check=False)
    assert st.returncode == 0 and "1 done, 1 diverged" in st.stdout
    st = bench("status", "--out", str(out), check=False)
    assert st.returncode == 1 and "RuntimeError: boom" in st.stdout and "1 done" in st.stdout


@pytest.mark.data
@pytest.mark.slow
def test_local_grid_records_every_point_and_skips_finished(tmp_path, data_root):
    args = ["grid", "--algo", "bp,fa", "--task", "mnist", "--seeds", "0,1", "--epochs", "1", "--max-parallel", "2",
            "--data-dir", str(data_root), "--out", str(tmp_path)]
    first = bench(*args)
    assert "4 to run" in first.stdout and "4 done" in first.stdout
    recs = records(tmp_path)
    assert len(recs) == 4 and all(r["status"] == "completed" for r in recs.values())
    assert all(r["env"]["torch_threads"] == max(1, (os.cpu_count() or 1) // 2) for r in recs.values())
    assert min(r["final"]["test_acc"] for r in recs.values()) > 0.85  # 1 epoch of BP or FA on real MNIST
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*__*.json")}
    second = bench(*args)
    assert "0 to run" in second.stdout
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("*__*.json")} == mtimes


@pytest.mark.data
@pytest.mark.slow
def test_sigkill_mid_epoch_resumes_to_the_identical_record(tmp_path, data_root):
    common = ["--algo", "bp", "--task", "mnist", "--epochs", "3", "--cpus-per-task", "1",
              "--data-dir", str(data_root)]
    bench("grid", *common, "--out", str(tmp_path / "whole"))
    out = tmp_path / "killed"
    grid = subprocess.Popen([*BENCH, "grid", *common, "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)

    def one_epoch_done() -> bool:
        recs = records(out)
        return bool(recs) and next(iter(recs.values())).get("epochs_done", 0) >= 1

    wait_for(one_epoch_done, 300, "the first epoch's checkpoint")
    rec = next(iter(records(out).values()))
    time.sleep(0.5)  # into epoch 2
    os.kill(rec["pid"], signal.SIGKILL)
    _, err = grid.communicate(timeout=120)
    assert grid.returncode == 2 and "1 of 1 grid points failed" in err
    st = bench("status", "--out", str(out), check=False)
    assert st.returncode == 1 and "killed by signal 9" in st.stdout

    bench("grid", *common, "--out", str(out))  # re-run: resumes from the epoch-1 checkpoint
    (whole,), (resumed,) = records(tmp_path / "whole").values(), records(out).values()
    assert resumed["status"] == "completed" and resumed["resumed_from_epoch"] in (1, 2)
    assert resumed["run_id"] == whole["run_id"]
    a = torch.load(tmp_path / "whole" / f"{whole['run_id']}.weights.pt")
    b = torch.load(out / f"{resumed['run_id']}.weights.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bit for bit
    for key in ("train_loss", "train_acc", "val_acc", "test_acc", "test_loss"):
        assert resumed["curves"][key] == whole["curves"][key]
    assert not list(out.glob("*.ckpt.pt"))  # the checkpoint is removed once the record is complete
