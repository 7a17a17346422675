"""The command line: help, listing and one-line errors for bad input."""

import pytest
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
    r = runner.invoke(app, ["run", "--algo", "bp", "--task", "cifar10", "--data-dir", str(tmp_path / "none"),
                            "--out", str(tmp_path)])
    assert r.exit_code == 2
    assert "error: missing data file" in r.output and "cifar-10-python.tar.gz" in r.output
