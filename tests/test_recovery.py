"""Nothing finished is hidden or thrown away, whatever kills the run: a dead --force rerun is undone, one bad
field skips one record (and says why), a full disk loses no finished run and leaves no debris, runs that differ
in what decides their numbers are never one record, and a collapsed run is excluded like a diverged one."""

import errno
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from helpers import BENCH, bench, records, wait_for
from typer.testing import CliRunner

from bioplaus_bench import grid as gridmod
from bioplaus_bench import records as recmod
from bioplaus_bench.cli import app
from bioplaus_bench.harness import RunSpec, train
from bioplaus_bench.records import RecordScan, read_records
from bioplaus_bench.report import aggregate, frame, load_records, render

runner = CliRunner()
# a run long enough to be killed mid-epoch and short enough to make twice: 60 epochs of 20 batches
LONG = ["--algo", "bp", "--task", "teacher-student", "--epochs", "60", "--max-batches", "20", "--lr", "0.002",
        "--momentum", "0"]


def _ts(out, **kw):
    return RunSpec(**{"algo": "bp", "task": "teacher-student", "epochs": 1, "out": str(out), "progress": False,
                      "overrides": {"lr": "0.002", "momentum": "0"}, **kw})


# ------------------------------------------------------------------------------------------- dead reruns

def _epochs_done(path: Path) -> int:
    try:  # the record is moved aside an instant before the rerun writes its own
        return json.loads(path.read_text()).get("epochs_done") or 0
    except (OSError, ValueError):
        return 0


def _kill_a_force_rerun(out: Path, *make: str) -> tuple[Path, bytes]:
    """A finished record (made by ``bench *make``, default ``bench run``), then a --force rerun of it killed
    with SIGKILL after its second epoch."""
    bench(*(make or ("run", *LONG)), "--out", str(out))
    (path,) = out.glob("*__*.json")
    finished = path.read_bytes()
    proc = subprocess.Popen([*BENCH, "run", *LONG, "--out", str(out), "--force"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for(lambda: _epochs_done(path) >= 2, 120, "the rerun's second epoch")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    rec = json.loads(path.read_text())
    assert rec["status"] == "running" and rec["supersedes"]  # left as the kill left it
    assert not recmod.pid_alive(rec["pid"])
    return path, finished


def test_a_force_rerun_killed_by_sigkill_puts_the_finished_record_back(tmp_path):
    path, finished = _kill_a_force_rerun(tmp_path)
    out = bench("leaderboard", "--runs", str(tmp_path)).stdout  # the next command, whatever it is
    assert path.read_bytes() == finished  # byte for byte
    assert "| bp |" in out and "failed/unfinished" not in out
    (aside,) = tmp_path.glob("*.unfinished-rerun-*.json")  # the dead rerun is kept too, never averaged
    assert json.loads(aside.read_text())["status"] == "running"
    res = bench("run", *LONG, "--out", str(tmp_path))  # not retrained: it is the finished record again
    assert "is already completed" in res.stdout


def test_bench_status_says_it_restored_a_finished_record(tmp_path):
    path, finished = _kill_a_force_rerun(tmp_path, "grid", *LONG, "--executor", "debug")
    res = bench("status", "--out", str(tmp_path))
    assert "restored" in res.stdout and "did not finish" in res.stdout and "1 done" in res.stdout
    assert path.read_bytes() == finished


def test_a_rebuild_rerun_that_fails_puts_the_finished_record_back(tmp_path, monkeypatch):
    from bioplaus_bench import harness

    train(_ts(tmp_path))
    (path,) = tmp_path.glob("*__*.json")
    finished = path.read_bytes()
    kept = recmod.set_aside_for_rerun(path)  # what `bench rebuild --rerun` does before the grid reruns it
    monkeypatch.setattr(harness, "_train", lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        train(_ts(tmp_path))
    assert path.read_bytes() == finished and not kept.exists()


def test_a_rerun_killed_before_it_wrote_its_record_is_undone_too(tmp_path):
    train(_ts(tmp_path))
    (path,) = tmp_path.glob("*__*.json")
    finished = path.read_bytes()
    recmod.set_aside_for_rerun(path)  # and then the process died
    scan = read_records(tmp_path)
    assert path.read_bytes() == finished and len(scan.records) == 1 and "died before it started" in scan.recovered[0]


# ------------------------------------------------------------------------------------------- one bad field

BAD_FIELDS = [
    ("final.test_acc", lambda r: r["final"].__setitem__("test_acc", "abc"), "final.test_acc is 'abc', not a number"),
    ("curves.test_acc", lambda r: r["curves"].__setitem__("test_acc", ["abc"] * len(r["curves"]["epoch"])),
     "curves.test_acc holds 'abc', not numbers"),
    ("curves.epoch missing", lambda r: r["curves"].pop("epoch"), "curves has no epoch list"),
    ("config.seed", lambda r: r["config"].__setitem__("seed", "zero"), "config.seed is 'zero', not an integer"),
]


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    points, todo = gridmod.plan([_ts(out, seed=s, epochs=2) for s in (0, 1)])
    gridmod.execute(points, todo, gridmod.ExecutorOptions(name="debug"))
    return out


@pytest.mark.parametrize("name,corrupt,why", BAD_FIELDS, ids=[b[0] for b in BAD_FIELDS])
def test_one_badly_typed_field_skips_that_record_with_the_reason(two_seeds, tmp_path, name, corrupt, why):
    import shutil

    out = tmp_path / "grid"
    shutil.copytree(two_seeds, out)
    bad = sorted(out.glob("*__s1__*.json"))[0]
    rec = json.loads(bad.read_text())
    corrupt(rec)
    bad.write_text(json.dumps(rec))
    assert recmod.read_record(bad) == (None, why)
    scan = read_records(out)
    assert [p for p, _ in scan.skipped] == [str(bad)]
    df = load_records(out)
    table = aggregate(df)  # the good seed keeps its row and columns
    assert len(table) == 1 and table.n.iloc[0] == 1 and table.test_loss.notna().all()
    md = render(df)
    assert "1 unreadable file(s) skipped" in md and why in md
    for args in (["leaderboard", "--runs", str(out), "--format", "csv"], ["status", "--out", str(out)],
                 ["plot", "--runs", str(out), "--out", str(tmp_path / "figures")]):
        res = runner.invoke(app, args)  # never a traceback
        assert res.exception is None or isinstance(res.exception, SystemExit), (args, res.output)
    status = runner.invoke(app, ["status", "--out", str(out)])
    assert status.exit_code == 1 and "record unreadable" in status.output and why in status.output
    assert list((tmp_path / "figures").glob("*.png"))  # the good seed's figures


def test_paper_tables_count_an_unreadable_cell_record(tmp_path, monkeypatch):
    from bioplaus_bench import papers

    monkeypatch.chdir(tmp_path)
    papers.load_all()
    paper = papers.get_paper("lillicrap2016")
    specs = paper.specs("smoke", tmp_path, None)
    cell, spec = specs[0]
    rec = train(spec)
    path = Path(spec.out) / f"{rec['run_id']}.json"
    rec["final"]["test_loss"] = "abc"
    path.write_text(json.dumps(rec))
    df, _ = papers.cell_table(paper, "smoke", tmp_path)
    row = df[(df.method == cell.row) & (df.column == cell.col)].iloc[0]
    assert "unreadable record (final.test_loss is 'abc', not a number)" in row.measured


# ------------------------------------------------------------------------------------------- disk full

class _FullDisk:
    """A disk that fills up while a file whose name contains ``marker`` is written: ENOSPC after half of it."""

    def __init__(self, monkeypatch, marker: str) -> None:
        real = os.fdopen

        def fdopen(fd, mode="r", *a, **kw):
            fh = real(fd, mode, *a, **kw)
            name = os.readlink(f"/proc/self/fd/{fd}")
            if marker not in name:
                return fh
            write = fh.write

            def partial(data):
                write(data[: len(data) // 2])
                fh.flush()
                raise OSError(errno.ENOSPC, "No space left on device")

            fh.write = partial
            return fh

        monkeypatch.setattr(recmod.os, "fdopen", fdopen)


def test_a_full_disk_at_a_checkpoint_fails_with_the_space_needed_and_leaves_no_temp_file(tmp_path, monkeypatch):
    _FullDisk(monkeypatch, ".ckpt.pt")
    with pytest.raises(recmod.DiskFull, match=r"no space left in .*: writing the checkpoint .*ckpt.pt needs [\d,]+ "
                                              r"bytes, [\d,]+ free"):
        train(_ts(tmp_path, epochs=2, checkpoint=True))
    (path,) = tmp_path.glob("*__*.json")
    rec = json.loads(path.read_text())
    assert rec["status"] == "failed" and "no space left in" in rec["error"]  # not left "running"
    assert not list(tmp_path.glob(".*.tmp")) and not list(tmp_path.glob("*.ckpt.pt*"))  # no debris


def test_a_finished_run_is_never_lost_to_a_checkpoint_or_weights_file_that_does_not_fit(tmp_path, monkeypatch):
    _FullDisk(monkeypatch, ".pt")  # every checkpoint and the final weights
    rec = train(_ts(tmp_path, epochs=1, checkpoint=True))
    assert rec["status"] == "completed"
    (path,) = tmp_path.glob("*__*.json")
    assert json.loads(path.read_text())["status"] == "completed"
    assert not list(tmp_path.glob(".*.tmp")) and not list(tmp_path.glob("*.pt"))


def test_a_full_disk_for_the_record_names_the_folder(tmp_path, monkeypatch):
    _FullDisk(monkeypatch, ".json")
    with pytest.raises(recmod.DiskFull, match=f"no space left in {tmp_path}: writing the record"):
        recmod.write_json_atomic(tmp_path / "r.json", {"a": 1})
    assert not list(tmp_path.iterdir())


@pytest.mark.data
def test_a_real_full_disk(tmp_path, data_root):
    """A 1 MB tmpfs (where this user may mount one): the records fit, a checkpoint (3.7 MB) does not."""
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        args = ["run", "--algo", "bp", "--task", "mnist", "--max-batches", "5", "--data-dir", str(data_root),
                "--out", str(small)]
        r = runner.invoke(app, [*args, "--epochs", "2"])
        assert r.exit_code == 2 and f"error: no space left in {small}: writing the checkpoint" in r.output
        (failed,) = small.glob("*.json")
        assert json.loads(failed.read_text())["status"] == "failed"
        r = runner.invoke(app, [*args, "--epochs", "1"])  # finishes: its record is written before its weights
        assert r.exit_code == 0 and "test acc" in r.output, r.output
        assert sorted(p.suffix for p in small.iterdir() if not p.name.startswith(".")) == [".json", ".json"]
        assert not [p for p in small.iterdir() if p.name.endswith(".tmp")]
    finally:
        subprocess.run(["umount", str(small)], check=False)


# ------------------------------------------------------------------------------------------- reproducibility

def test_a_finished_record_made_with_other_threads_is_not_this_runs_result(tmp_path, monkeypatch):
    monkeypatch.setenv("BIOPLAUS_THREADS", "1")
    first = train(_ts(tmp_path))
    assert first["repro"] == {"threads": 1, "device": "cpu", "deterministic": True}
    monkeypatch.setenv("BIOPLAUS_THREADS", "2")
    r = runner.invoke(app, ["run", "--algo", "bp", "--task", "teacher-student", "--epochs", "1", "--lr", "0.002",
                            "--momentum", "0", "--out", str(tmp_path)])
    lines = [ln for ln in r.output.splitlines() if ln.strip() and " INFO " not in ln]
    assert r.exit_code == 2 and len(lines) == 1, r.output
    assert "1 vs 2 torch threads" in lines[0] and "BIOPLAUS_THREADS=1" in lines[0]
    monkeypatch.setenv("BIOPLAUS_THREADS", "1")
    assert train(_ts(tmp_path)).get("skipped")  # the same settings: it is the finished record
    monkeypatch.setenv("BIOPLAUS_THREADS", "2")
    again = train(_ts(tmp_path), force=True)  # --force: rerun with 2, the old one kept
    assert again["repro"]["threads"] == 2 and len(list(tmp_path.glob("*.superseded-*.json"))) == 1


def test_a_grid_refuses_to_extend_points_made_with_other_threads(tmp_path):
    points, todo = gridmod.plan([_ts(tmp_path, seed=0)])
    gridmod.execute(points, todo, gridmod.ExecutorOptions(name="local", cpus_per_task=1))
    points, todo = gridmod.plan([_ts(tmp_path, seed=s) for s in (0, 1)])
    with pytest.raises(gridmod.RegistryError, match=r"1 finished point\(s\) .* \(1 vs 2 torch threads.*"
                                                     r"--cpus-per-task 1"):
        gridmod.execute(points, todo, gridmod.ExecutorOptions(name="local", cpus_per_task=2))
    assert not (tmp_path / f"{todo[0].path.stem}.json").exists()  # refused before any work


def test_the_leaderboard_says_when_a_row_mixes_thread_counts():
    recs = []
    for seed, threads in ((0, 1), (1, 2)):
        recs.append({"schema_version": 2, "run_id": f"r{seed}", "status": "completed",
                     "config": {"algo": "bp", "task": "mnist", "arch": "mlp", "preset": None, "seed": seed,
                                "epochs": 3, "batch_size": 128, "val_size": 5000, "angle_every": 0, "hparams": {}},
                     "env": {"torch_threads": threads},
                     "final": {"test_acc": 0.97, "test_loss": 0.1, "epoch_seconds": 1.0},
                     "curves": {"epoch": [1]}})
    df = frame(RecordScan(records=recs))
    assert aggregate(df).repro_mix.iloc[0] == "threads 1,2"
    assert "mixed threads 1,2" in render(df) and "different torch threads" in render(df)


# ------------------------------------------------------------------------------------------- collapse

def _collapsed_rec(**kw):
    return {"schema_version": 2, "run_id": "c", "status": "completed", "first_batch_loss": 2.3,
            "config": {"algo": "bp", "task": "mnist", "arch": "mlp", "preset": None, "seed": 0, "epochs": 1,
                       "batch_size": 8, "val_size": 5000, "angle_every": 0, "hparams": {}},
            "final": {"test_acc": 0.098, "test_loss": 42.9, "epoch_seconds": 1.0}, "curves": {"epoch": [1]}, **kw}


def test_a_run_that_ends_at_chance_with_an_exploded_loss_is_collapsed_and_excluded(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(_collapsed_rec()))
    rec, _ = recmod.read_record(path)
    assert rec["status"] == "collapsed" and "test loss 42.9 > 5 x the loss at the start (2.3)" in rec["error"]
    healthy = _collapsed_rec(final={"test_acc": 0.098, "test_loss": 2.31, "epoch_seconds": 1.0})  # at chance only
    assert recmod.collapsed(healthy) is None
    df = load_records(tmp_path)
    row = aggregate(df).iloc[0]
    assert row.n == 0 and row.n_collapsed == 1 and row.n_failed == 0
    md = render(df)
    assert "1 collapsed" in md and "collapsed: the run ended within 2 points of chance" in md


@pytest.mark.data
def test_bp_at_batch_8_collapses_and_says_so(tmp_path, data_root):
    r = runner.invoke(app, ["run", "--algo", "bp", "--task", "mnist", "--batch-size", "8", "--max-batches", "1500",
                            "--epochs", "1", "--data-dir", str(data_root), "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "collapsed: test accuracy" in r.output
    (path,) = tmp_path.glob("*__*.json")
    rec = json.loads(path.read_text())
    assert rec["status"] == "collapsed" and rec["first_batch_loss"] > 2


# ------------------------------------------------------------------------------------------- one clear line

def _one_line(args, expected, tmp_path):
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "runs")])
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and expected in lines[0], r.output
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").glob("*.json"))  # before any work


def test_an_empty_data_dir_is_refused(tmp_path):
    _one_line(["run", "--algo", "bp", "--task", "mnist", "--data-dir", ""], "bad --data-dir ''", tmp_path)


def test_a_data_dir_that_is_a_file_is_not_a_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    _one_line(["run", "--algo", "bp", "--task", "mnist", "--data-dir", str(tmp_path / "f")], "is not a folder",
              tmp_path)


def test_an_unreadable_data_dir_says_permission_denied(tmp_path, monkeypatch):
    (tmp_path / "d").mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if str(p) == str(tmp_path / "d") else real(p, m))
    _one_line(["run", "--algo", "bp", "--task", "mnist", "--data-dir", str(tmp_path / "d")],
              "is not readable by this user (permission denied)", tmp_path)


def test_a_val_size_larger_than_the_training_set_is_refused_before_loading(tmp_path):
    _one_line(["run", "--algo", "bp", "--task", "mnist", "--val-size", "60000", "--data-dir", str(tmp_path)],
              "bad val size 60000: mnist has 60000 training samples; accepted: 0 to 59999", tmp_path)


def test_an_empty_seed_list_in_a_study_is_refused(tmp_path):
    study = tmp_path / "s.toml"
    study.write_text('algos = ["bp"]\ntasks = ["teacher-student"]\nseeds = []\n')
    r = runner.invoke(app, ["grid", "--study", str(study), "--out", str(tmp_path / "runs")])
    assert r.exit_code == 2 and "seeds = [] in" in r.output and "at least one integer" in r.output
    assert "start one with" not in r.output


def test_ctrl_c_says_what_was_kept_and_how_to_resume(tmp_path):
    proc = subprocess.Popen([*BENCH, "run", *LONG, "--out", str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for(lambda: any((r.get("epochs_done") or 0) >= 1 for r in records(tmp_path).values()), 120, "epoch 1")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "interrupted (Ctrl-C): the record" in err and "resumes it from its last epoch checkpoint" in err
    assert next(iter(records(tmp_path).values()))["status"] == "interrupted"


def test_the_grid_console_names_a_discarded_checkpoint_and_too_many_workers(tmp_path):
    spec = _ts(tmp_path, epochs=2)
    points, _ = gridmod.plan([spec])
    points[0].path.with_suffix(".ckpt.pt").write_bytes(b"not a checkpoint")
    res = bench("grid", "--algo", "bp", "--task", "teacher-student", "--epochs", "2", "--lr", "0.002",
                "--momentum", "0", "--out", str(tmp_path), "--max-parallel", str((os.cpu_count() or 1) + 1))
    assert "was unreadable" in res.stderr and "the point started over" in res.stderr
    assert f"--max-parallel {(os.cpu_count() or 1) + 1} on {os.cpu_count()} cores" in res.stderr
