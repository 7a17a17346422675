"""The command line: help, listing and one-line errors for bad input."""

import pytest
from helpers import bench, records
from typer.testing import CliRunner

from bioplaus_bench.cli import app

runner = CliRunner()


def test_help_and_list():
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0 and "run" in r.output and "list" in r.output
    r = runner.invoke(app, ["run", "--help"])
    assert r.exit_code == 0 and "--algo" in r.output and "--set" in r.output
    r = runner.invoke(app, ["list"])
    assert r.exit_code == 0 and "fa " in r.output and "mnist" in r.output and "lenet" in r.output


@pytest.mark.parametrize("args,expected", [
    (["--algo", "nope", "--task", "mnist"], "error: unknown algorithm 'nope'; accepted: bp"),
    (["--algo", "bp", "--task", "nope"], "error: unknown task 'nope'; accepted: cifar10"),
    (["--algo", "bp", "--task", "mnist", "--arch", "nope"], "error: unknown architecture 'nope'; accepted:"),
    (["--algo", "bp", "--task", "mnist", "--set", "lrr=1"], "error: unknown hyperparameter 'lrr' for bp; accepted:"),
    (["--algo", "bp", "--task", "mnist", "--set", "lr=fast"], "error: bad value 'fast' for lr"),
    (["--algo", "bp", "--task", "mnist", "--preset", "x"], "error: unknown preset 'x' for bp; accepted:"),
    (["--algo", "bp", "--task", "mnist", "--device", "tpu"], "error: unknown device 'tpu'; accepted: auto, cpu, cuda"),
])
def test_bad_input_is_one_line(args, expected, tmp_path):
    r = runner.invoke(app, ["run", *args, "--out", str(tmp_path)])
    assert r.exit_code == 2
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(expected), r.output


def test_missing_data_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    r = runner.invoke(app, ["run", "--algo", "bp", "--task", "cifar10", "--data-dir", str(tmp_path / "empty"),
                            "--out", str(tmp_path)])
    assert r.exit_code == 2
    assert "error: missing data file" in r.output and "cifar-10-python.tar.gz" in r.output


@pytest.mark.parametrize("command", ["run", "grid", "sensitivity", "paper"])
def test_every_command_takes_every_run_field_from_the_one_run_description(command):
    import dataclasses

    from bioplaus_bench.cli import RUN_OPTIONS
    from bioplaus_bench.harness import RunSpec

    # every RunSpec field is an option here, except those each command declares itself or sets internally
    own = {"algo", "task", "seed", "overrides", "out", "checkpoint", "progress"}
    assert set(RUN_OPTIONS) == {f.name for f in dataclasses.fields(RunSpec)} - own
    out = bench(command, "--help", check=False).stdout
    for name in RUN_OPTIONS:
        assert f"--{name.replace('_', '-')}" in out, (command, name)


@pytest.mark.data
def test_grid_and_paper_pass_run_fields_into_every_record(tmp_path, data_root):
    bench("grid", "--algo", "bp", "--task", "mnist", "--epochs", "1", "--max-batches", "2", "--val-size", "100",
          "--angle-every", "1", "--device", "cpu", "--data-dir", str(data_root), "--executor", "debug",
          "--out", str(tmp_path / "g"))
    (rec,) = records(tmp_path / "g").values()
    assert (rec["config"]["val_size"], rec["config"]["angle_every"], rec["config"]["max_batches"]) == (100, 1, 2)
    assert rec["curves"]["angles"][0]  # measured, as asked
    bench("paper", "lillicrap2016", "--budget", "smoke", "--val-size", "40", "--executor", "debug",
          "--out", str(tmp_path / "p"))
    recs = records(tmp_path / "p" / "runs")
    assert len(recs) == 4 and all(r["config"]["val_size"] == 40 for r in recs.values())  # one per rule
    table = (tmp_path / "p" / "table_smoke.md").read_text()
    assert "missing" not in table  # the table reads the records the options made
