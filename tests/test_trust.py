"""Numbers a reviewer can trust: aggregation per configuration, divergence as a status, finished records that
are never lost, one-line errors before any work, one tolerant reader, locks, claims and stale records."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import BENCH, bench, records, wait_for
from typer.testing import CliRunner

from bioplaus_bench import grid as gridmod
from bioplaus_bench import harness, load_records
from bioplaus_bench.cli import app
from bioplaus_bench.harness import RunSpec, resolve, train
from bioplaus_bench.records import RecordScan, read_records
from bioplaus_bench.report import aggregate, frame, render, sensitivity_report, summary

runner = CliRunner()


def _rec(algo="bp", seed=0, acc=0.97, lr=0.05, epochs=3, status="completed", generated=False, val=None, **hp):
    return {"schema_version": 2, "run_id": f"{algo}-{lr}-{epochs}-{seed}-{status}", "status": status,
            "data_generated": generated,
            "config": {"algo": algo, "task": "mnist", "arch": "mlp", "preset": None, "seed": seed, "epochs": epochs,
                       "batch_size": 128, "val_size": 5000, "angle_every": 0,
                       "hparams": {"optimizer": "sgd", "lr": lr, "momentum": 0.9, "weight_decay": 0.0,
                                   "scheduler": "none", "cosine_t_max": 0, **hp}},
            "final": {"test_acc": acc, "val_acc": acc if val is None else val, "test_loss": 0.1,
                      "epoch_seconds": 1.0, "feedback_seconds": 0.0,
                      "final_angles": {"0.weight": 10.0}} if status == "completed" else None,
            "curves": {"epoch": [1], "test_acc": [acc], "train_loss": [0.1], "epoch_seconds": [1.0],
                       "angles": [{"0.weight": 10.0}]}}


# ------------------------------------------------------------------------------------------- aggregation

def test_configs_are_rows_and_never_pooled_as_seeds():
    recs = [_rec(seed=s, acc=a) for s, a in enumerate([0.97, 0.98, 0.99])]  # BP defaults, 3 seeds
    recs += [_rec(lr=0.02, acc=0.90)]  # another learning rate, same seed: a different configuration
    recs += [_rec(epochs=1, acc=0.93)]  # a 1-epoch run: another configuration
    recs += [_rec(lr=1e6, status="diverged"), _rec(lr=1e6, seed=1, status="failed"), _rec(acc=0.5, seed=7,
                                                                                          generated=True)]
    df = frame(RecordScan(records=recs))
    table = aggregate(df)
    rows = {(r.config, r.epochs): r for r in table.itertuples()}
    assert set(rows) == {("defaults", 3), ("lr=0.02", 3), ("defaults", 1), ("lr=1000000.0", 3)}
    assert rows[("defaults", 3)].n == 3 and rows[("defaults", 3)].acc_mean == pytest.approx(0.98)
    assert rows[("defaults", 3)].n_generated == 1  # the generated-data run is counted, not averaged
    assert rows[("lr=0.02", 3)].n == 1 and pd.isna(rows[("lr=0.02", 3)].acc_std)  # no std for one run
    bad = rows[("lr=1000000.0", 3)]
    assert bad.n == 0 and bad.n_diverged == 1 and bad.n_failed == 1
    md = render(df)
    line = next(ln for ln in md.splitlines() if "| lr=0.02 |" in ln)
    assert "| 1 | 90.00 | — |" in line  # n shown, std "—"
    assert "| 3 | 98.00 | 1.00 |" in md and "1 diverged, 1 failed/unfinished" in md
    s = summary(df, table).set_index("config")
    assert s.loc["lr=0.02", "n"] == 1 and pd.isna(s.loc["lr=0.02", "ci_low"])  # no CI for one run
    csv = pd.read_csv(__import__("io").StringIO(render(df, "csv")))
    assert csv.acc_mean.dtype == float and csv.n.dtype == int and csv.lr.dtype == float
    assert set(csv.epochs) == {1, 3}


def test_leaderboard_says_when_its_timings_were_taken():
    day = 86400.0
    recs = [{**_rec(seed=s), "started": 1.8e9 + 60 * s} for s in range(3)]  # one sitting, minutes apart
    md = render(frame(RecordScan(records=recs)))
    assert "s/epoch: runs started 2027-01-15 08:00 to 2027-01-15 08:02 UTC." in md
    assert "different times" not in md
    later = {**_rec(algo="fa", seed=0), "started": 1.8e9 + 3 * day}  # timed three days later
    md = render(frame(RecordScan(records=[*recs, later])))
    assert "to 2027-01-18 08:00 UTC (`x BP` may compare runs timed at different times" in md
    later = {**_rec(algo="fa", seed=0), "started": 1.8e9, "env": {"git_commit": "b" * 40}}  # the same hour,
    recs[0]["env"] = {"git_commit": "a" * 40}  # but by two commits: two sittings, perhaps
    md = render(frame(RecordScan(records=[*recs, later])))
    assert "08:02 UTC, at 2 commits (`x BP` may compare runs timed at different times" in md


def test_figures_never_pool_configurations():
    from bioplaus_bench.plots import series

    recs = [_rec(seed=s) for s in range(2)] + [_rec(lr=0.02), _rec(status="diverged", lr=9.0)]
    names = sorted({name for _, name in series(recs)})
    assert names == ["bp (n=2)", "bp [lr=0.02] (n=1)"]


def test_sensitivity_chooses_on_validation(tmp_path):
    # the test-best point (lr 0.1) is not the validation-best one (lr 0.2): the report must pick lr 0.2
    recs = [_rec(algo="fw-dtp", lr=lr, beta=0.2, acc=test, val=val)
            for lr, test, val in ((0.1, 0.95, 0.90), (0.2, 0.93, 0.94), (0.4, 0.92, 0.93), (0.8, 0.5, 0.5))]
    df = frame(RecordScan(records=recs))
    text, paths = sensitivity_report(df, set(df.run_id), ["lr"], tmp_path, "s")
    assert "Chosen on validation accuracy: lr=0.2 (val 94.00%, test 93.00%)" in text
    assert "50% of the 4 points are within 1 point of the best" in text
    assert all(p.exists() for p in paths)


# ------------------------------------------------------------------------------------------- the reader

def test_unreadable_files_are_skipped_and_counted(tmp_path):
    good = _rec()
    (tmp_path / "good.json").write_text(json.dumps({**good, "run_id": "good"}))
    (tmp_path / "bytes.json").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "bare.json").write_text('{"schema_version": 1}')
    (tmp_path / "cut.json").write_text('{"schema_version": 2, "config": {"al')
    df = load_records(tmp_path)
    assert len(df) == 1 and len(df.attrs["skipped"]) == 3
    r = runner.invoke(app, ["leaderboard", "--runs", str(tmp_path)])
    assert r.exit_code == 0 and "3 unreadable file(s) skipped" in r.output and "| bp | defaults |" in r.output
    r = runner.invoke(app, ["plot", "--runs", str(tmp_path), "--out", str(tmp_path / "fig")])
    assert r.exit_code == 0 and (tmp_path / "fig" / "curves_mnist.png").exists()


def test_truncated_grid_manifest_does_not_break_status(tmp_path):
    spec = _ts(tmp_path, epochs=1)
    points, todo = gridmod.plan([spec])
    gridmod.execute(points, todo, gridmod.ExecutorOptions(name="debug"))
    text = (tmp_path / "grid.json").read_text()
    (tmp_path / "grid.json").write_text(text[: len(text) // 2])
    rows = gridmod.status(tmp_path)
    assert [r["state"] for r in rows] == ["done"]


# ------------------------------------------------------------------------------------------- the harness

def _ts(tmp_path, **kw):
    # Lillicrap et al.'s plain SGD at lr 0.002: the suite's default lr 0.05 diverges on this regression
    return RunSpec(**{"algo": "bp", "task": "teacher-student", "epochs": 2, "out": str(tmp_path), "progress": False,
                      "overrides": {"lr": "0.002", "momentum": "0"}, **kw})


def test_divergence_stops_early_with_its_curves_and_strict_json(tmp_path):
    rec = train(_ts(tmp_path, overrides={"lr": "1e4"}, epochs=3))
    assert rec["status"] == "diverged" and rec["diverged_at"]["epoch"] == 1 and "bound" in rec["error"]
    text = Path(resolve(_ts(tmp_path, overrides={"lr": "1e4"}, epochs=3)).path).read_text()

    def no_constants(name):
        raise AssertionError(f"non-JSON constant {name}")

    saved = json.loads(text, parse_constant=no_constants)  # NaN / Infinity would fail here
    assert saved["status"] == "diverged" and "curves" in saved
    table = aggregate(load_records(tmp_path))
    assert table.n.tolist() == [0] and table.n_diverged.tolist() == [1]


def test_a_finished_record_is_never_lost(tmp_path, monkeypatch):
    spec = _ts(tmp_path, epochs=1)
    first = train(spec)
    path = resolve(spec).path
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    again = train(_ts(tmp_path, epochs=1))  # the same config: skipped, the record untouched
    assert again["skipped"] and (path.read_bytes(), path.stat().st_mtime_ns) == before
    r = runner.invoke(app, ["run", "--algo", "bp", "--task", "teacher-student", "--epochs", "1", "--set", "lr=0.002",
                            "--set", "momentum=0", "--out", str(tmp_path)])
    assert r.exit_code == 0 and "is already completed" in r.output and path.read_bytes() == before[0]
    # --force with a rerun that fails: the finished record is back in place, the failed attempt beside it
    monkeypatch.setattr(harness.datamod, "load_splits", lambda *a, **k: (_ for _ in ()).throw(OSError("disk")))
    with pytest.raises(OSError):
        train(_ts(tmp_path, epochs=1), force=True)
    assert json.loads(path.read_text())["status"] == "completed" and path.read_bytes() == before[0]
    assert len(list(tmp_path.glob("*.unfinished-rerun-*.json"))) == 1
    monkeypatch.undo()
    # --force that finishes: the new record in place, the old one kept beside it (and not aggregated twice)
    time.sleep(1.1)
    new = train(_ts(tmp_path, epochs=1), force=True)
    kept = list(tmp_path.glob("*.superseded-*.json"))
    assert new["status"] == "completed" and len(kept) == 1 and kept[0].read_bytes() == before[0]
    assert new["final"]["test_loss"] == first["final"]["test_loss"]
    table = aggregate(load_records(tmp_path))
    assert table.n.tolist() == [1]


def test_corrupt_checkpoint_is_moved_aside_and_the_run_starts_over(tmp_path, caplog):
    spec = _ts(tmp_path, epochs=1, checkpoint=True)
    ckpt = resolve(spec).path.with_suffix(".ckpt.pt")
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    ckpt.write_bytes(b"PK\x03\x04truncated")
    with caplog.at_level("WARNING"):
        rec = train(spec)
    assert rec["status"] == "completed" and "resumed_from_epoch" not in rec
    assert any(str(ckpt) in m and "moved it to" in m for m in caplog.messages)
    assert len(list(tmp_path.glob("*.ckpt.pt.corrupt-*"))) == 1


def test_bench_run_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    whole = train(_ts(tmp_path / "whole", epochs=3, checkpoint=True))
    calls = {"n": 0}
    real = harness.evaluate

    def stop_after_first_epoch(*a, **k):
        calls["n"] += 1
        if calls["n"] > 2:  # val and test of epoch 1 done; die in epoch 2's evaluation
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(harness, "evaluate", stop_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        train(_ts(tmp_path / "cut", epochs=3, checkpoint=True))
    monkeypatch.undo()
    resumed = train(_ts(tmp_path / "cut", epochs=3, checkpoint=True))
    assert resumed["resumed_from_epoch"] == 1
    assert resumed["curves"]["test_loss"] == whole["curves"]["test_loss"]
    a = torch.load(next((tmp_path / "whole").glob("*.weights.pt")))
    b = torch.load(next((tmp_path / "cut").glob("*.weights.pt")))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_records_are_group_readable(tmp_path):
    train(_ts(tmp_path, epochs=1))
    (path,) = tmp_path.glob("*.json")
    assert path.stat().st_mode & 0o777 == 0o644


# ------------------------------------------------------------------------------------------- checked first

@pytest.mark.parametrize("args,expected", [
    (["--algo", "bp", "--batch-size", "0"], "error: bad batch size 0; accepted: an integer >= 1"),
    (["--algo", "bp", "--angle-every", "-3"], "error: bad angle interval -3; accepted: an integer >= 0"),
    (["--algo", "bp", "--set", "lr=nan"], "error: bad value nan for lr of bp; accepted: a finite number"),
    (["--algo", "dtp", "--set", "fb_iterations=0"], "error: invalid hyperparameters for dtp on mlp: fb_iterations"),
    (["--algo", "dtp", "--set", "fb_lr=0.1,0.2"], "error: invalid hyperparameters for dtp on mlp: fb_lr has 2"),
    (["--algo", "fa", "--set", "feedback_init=foo"], "error: invalid hyperparameters for fa on mlp: feedback_init"),
    (["--algo", "dni", "--set", "lr_scale="], "error: invalid hyperparameters for dni on mlp: lr_scale"),
    (["--algo", ":"], "error: bad rule path ':'; accepted: a registered name"),
    (["--algo", "fw-dtp", "--arch", "lenet", "--task", "cifar10"], "error: rule fw-dtp is not defined on "
     "architecture 'lenet'; accepted for task cifar10: mlp"),
])
def test_bad_values_fail_in_one_line_before_any_work(args, expected, tmp_path):
    task = [] if "--task" in args else ["--task", "mnist"]
    r = runner.invoke(app, ["run", *args, *task, "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path)])
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith(expected), r.output
    assert not (tmp_path / "out").exists()  # nothing was started, no record written


@pytest.mark.parametrize("body,expected", [
    ('algos = ["bp"]\ntasks = ["mnist"]\nepochs = "3"\n', "bad value '3' for epochs"),
    ('algos = 5\ntasks = ["mnist"]\n', "bad value 5 for algos"),
    ('algos = ["bp"]\ntasks = ["mnist"]\ngrid = [1, 2]\n', "bad value [1, 2] for grid"),
    ('algos = ["bp"]\ntasks = ["mnist"]\nseeds = ["a"]\n', "bad value ['a'] for seeds"),
    ('algos = ["bp"]\ntasks = ["mnist"]\n[executor]\nmax_parallel = "2"\n', "bad value '2' for [executor] "
     "max_parallel"),
    ('algos = ["dtp"]\ntasks = ["mnist"]\n[set]\nfb_lr = [1, 2]\n', "invalid hyperparameters for dtp on mlp"),
])
def test_study_file_types_are_checked_before_any_work(body, expected, tmp_path):
    f = tmp_path / "study.toml"
    f.write_text(body)
    r = runner.invoke(app, ["grid", "--study", str(f), "--out", str(tmp_path / "out")])
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and expected in lines[0], r.output
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------- grids

def test_a_second_grid_on_the_same_folder_refuses(tmp_path):
    with gridmod.folder_lock(tmp_path):
        res = bench("grid", "--algo", "bp", "--task", "teacher-student", "--epochs", "1", "--set", "lr=0.002",
                    "--out", str(tmp_path), check=False)
    assert res.returncode == 2 and f"another bench grid (pid {os.getpid()}) is running on {tmp_path}" in res.stderr
    assert not records(tmp_path)  # it trained nothing


def test_workers_die_with_their_grid(tmp_path):
    grid = subprocess.Popen([*BENCH, "grid", "--algo", "bp", "--task", "teacher-student", "--epochs", "200",
                             "--set", "lr=0.002", "--out", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: any(r.get("pid") for r in records(tmp_path).values()), 60, "the worker's running record")
    pid = next(iter(records(tmp_path).values()))["pid"]
    grid.send_signal(signal.SIGKILL)
    grid.wait(timeout=10)

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return open(f"/proc/{pid}/stat").read().split()[2] == "Z"

    wait_for(gone, 30, f"worker {pid} to end with its grid")
    rec = next(iter(records(tmp_path).values()))
    assert rec["status"] == "failed" and "the bench grid that started this point ended" in rec["error"]


# ------------------------------------------------------------------------------------------- freshness, claims

def test_stale_records_are_flagged(tmp_path):
    points, todo = gridmod.plan([_ts(tmp_path, epochs=1)])
    gridmod.execute(points, todo, gridmod.ExecutorOptions(name="debug"))
    path = points[0].path
    rec = json.loads(path.read_text())
    assert not load_records(tmp_path).stale.any() and "stale" not in gridmod.status(tmp_path)[0]["detail"]
    # the source changed but computes the same (a rename, say): its fingerprint holds, nothing is stale
    path.write_text(json.dumps({**rec, "code_hash": "0123456789ab"}))
    assert not load_records(tmp_path).stale.any()
    # the source changed and computes something else: stale
    path.write_text(json.dumps({**rec, "code_hash": "0123456789ab", "fingerprint": _changed(rec["fingerprint"])}))
    assert load_records(tmp_path).stale.all()
    assert "stale 1/1" in render(load_records(tmp_path))
    assert "stale: today's code computes something else" in gridmod.status(tmp_path)[0]["detail"]


def _changed(fp: dict) -> dict:
    """A fingerprint as another update would have left it: the second step's loss off by 1e-3 relative."""
    step = {**fp["step"], "losses": [fp["step"]["losses"][0], fp["step"]["losses"][1] * 1.001,
                                     *fp["step"]["losses"][2:]]}
    return {**fp, "step": step}


def test_claims_are_recomputed_from_records(tmp_path):
    from bioplaus_bench import claims

    runs = tmp_path / "runs"
    runs.mkdir()
    for s, acc in enumerate([0.97, 0.98]):
        (runs / f"r{s}.json").write_text(json.dumps({**_rec(seed=s, acc=acc), "run_id": f"r{s}"}))
    (tmp_path / "README.md").write_text("BP reaches 97.50% here.")
    (tmp_path / "claims.toml").write_text(
        '[[claim]]\nquote = "97.50"\nwhere = ["README.md"]\nrecords = "runs"\nselect = {algo = "bp"}\n'
        'metric = "test_acc"\nstat = "mean"\n')
    (ok,) = claims.check(tmp_path, Path("claims.toml"))
    assert ok.ok and ok.value == "97.50" and ok.n == 2
    (tmp_path / "README.md").write_text("BP reaches 97.60% here.")
    assert not claims.check(tmp_path, Path("claims.toml"))[0].ok  # the quote no longer matches the text
    (tmp_path / "README.md").write_text("BP reaches 97.50% here.")
    (runs / "r1.json").unlink()
    (bad,) = claims.check(tmp_path, Path("claims.toml"))
    assert not bad.ok and bad.value == "97.00"  # a record is missing: the mean moves


def test_the_committed_claims_hold():
    repo = Path(__file__).resolve().parents[1]
    if not (repo / "results" / "claims.toml").exists():
        pytest.skip("no claims file")
    res = subprocess.run([*BENCH, "claims", "--check"], cwd=repo, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr


def test_read_records_ignores_manifests_and_temp_files(tmp_path):
    (tmp_path / "grid.json").write_text("{}")
    (tmp_path / ".x.json.tmp.json").write_text("{")
    scan = read_records(tmp_path)
    assert scan.records == [] and scan.skipped == []


def test_the_readme_notebook_snippet_runs(tmp_path, monkeypatch):
    """The README's Python API snippet, run as written (in a temporary folder)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    snippet = readme.split("<!-- api-snippet -->")[1].split("```python")[1].split("```")[0]
    monkeypatch.chdir(tmp_path)
    env: dict = {}
    exec(compile(snippet, "README.md", "exec"), env)  # noqa: S102 - the documented snippet itself
    df = env["df"]
    assert len(df) == 2 and set(df.lr) == {0.002, 0.004} and df.test_loss.notna().all()
    assert (df.status == "completed").all() and df.lr.dtype == float


def test_rebuild_reruns_stale_records_keeping_the_old_ones(tmp_path, monkeypatch):
    from bioplaus_bench import rebuild

    monkeypatch.chdir(tmp_path)
    Path("study.toml").write_text('algos = ["bp"]\ntasks = ["teacher-student"]\nepochs = 1\nout = "runs"\n'
                                  '[set]\nlr = 0.002\nmomentum = 0\n[executor]\nname = "debug"\n')
    step = rebuild.Step(name="s", study="study.toml")
    rebuild.execute([step])
    (path,) = Path("runs").glob("*__*.json")
    first = json.loads(path.read_text())
    assert rebuild.set_aside_stale(step) == 0  # made by today's code: nothing to refresh
    path.write_text(json.dumps({**first, "code_hash": "0123456789ab", "fingerprint": _changed(first["fingerprint"])}))
    assert "1 finished (1 by older code)" in rebuild.describe([step])[0]
    rebuild.execute([step], refresh_stale=True)
    fresh = json.loads(path.read_text())
    assert fresh["code_hash"] == first["code_hash"] and fresh["started"] > first["started"]
    assert len(list(Path("runs").glob("*.superseded-*.json"))) == 1
    rebuild.execute([step], rerun=True)  # a current record too: one sitting, the old one kept
    assert json.loads(path.read_text())["started"] > fresh["started"]
    assert len(list(Path("runs").glob("*.superseded-*.json"))) == 2


def test_a_timing_step_starts_only_on_a_quiet_machine(tmp_path, monkeypatch, caplog):
    from bioplaus_bench import rebuild

    loads, clock, ran = iter([1.9, 1.2, 0.7, 0.4, 0.1]), [0.0], []
    monkeypatch.setattr(os, "getloadavg", lambda: (next(loads), 0.0, 0.0))
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(time, "sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    monkeypatch.setattr(rebuild.subprocess, "run", lambda *a, **k: ran.append(clock[0]) or subprocess.CompletedProcess(
        a, 0, stdout="table\n", stderr=""))
    monkeypatch.chdir(tmp_path)
    rebuild.execute([rebuild.Step(name="t", command="python bench.py", output="out.txt", quiet=True)])
    assert ran == [30.0]  # started at the first reading below 0.5 (load 0.4), three 10 s polls later
    assert Path("out.txt").read_text() == "$ python bench.py\ntable\n"
    # a machine that stays busy: the step goes on after the timeout, with a warning naming the load
    monkeypatch.setattr(os, "getloadavg", lambda: (1.5, 0.0, 0.0))
    clock[0] = 0.0
    assert not rebuild.wait_for_quiet(timeout_s=60)
    assert clock[0] == 60.0 and "load average still 1.50" in caplog.text
