"""The command line as a researcher types it: `bench show`, suggestions for near misses, `--lr` shorthands,
grid progress lines, LaTeX that a parser accepts, own rules from the current folder, honest data errors."""

import json
import re
import shutil
import subprocess
import sys

import pytest
from helpers import BENCH, bench
from typer.testing import CliRunner

from bioplaus_bench.cli import app

runner = CliRunner()


def test_help_says_how_to_set_hyperparameters():
    r = runner.invoke(app, ["run", "--help"])
    assert r.exit_code == 0 and "--key value" in r.output and "bench show RULE" in r.output
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0 and all(c in r.output for c in ("show", "claims", "rebuild", "leaderboard"))


def test_show_lists_every_hyperparameter_with_type_default_and_meaning():
    r = runner.invoke(app, ["show", "fw-dtp"])
    assert r.exit_code == 0, r.output
    assert re.search(r"^\s+lr\s+float\s+0\.5\s+forward SGD learning rate", r.output, re.M)
    assert re.search(r"^\s+feedback_range\s+float\s+0\.1\s+B_l ~ U\(-a, a\)", r.output, re.M)
    assert "shibuya2023-mnist: arch=mlp, batch_size=256, epochs=100, lr=0.1, beta=0.04" in r.output
    assert re.search(r"^\s+mnist\s+mlp, mlp-1.1m, mlp-6.3m\s+\[default mlp\]", r.output, re.M)
    assert re.search(r"^\s+imagenet32\s+\(none\)", r.output, re.M)  # FW-DTP is an MLP rule
    r = runner.invoke(app, ["show", "mnist"])
    assert r.exit_code == 0 and "default_arch  mlp" in r.output
    r = runner.invoke(app, ["show", "lenet"])
    assert r.exit_code == 0 and re.search(r"cifar10\s+[\d,]+", r.output)
    r = runner.invoke(app, ["show", "fwdtp"])
    assert r.exit_code == 2 and "did you mean 'fw-dtp'?" in r.output


@pytest.mark.parametrize("args,hint", [
    (["--algo", "fwdtp", "--task", "mnist"], "did you mean 'fw-dtp'?"),
    (["--algo", "fw_dtp", "--task", "mnist"], "did you mean 'fw-dtp'?"),
    (["--algo", "bp", "--task", "fmnist"], "did you mean 'fashion-mnist'?"),
    (["--algo", "bp", "--task", "cifar"], "did you mean 'cifar10' or 'cifar100'?"),
    (["--algo", "fw-dtp", "--task", "mnist", "--set", "learning_rate=1"], "did you mean 'lr'?"),
    (["--algo", "fw-dtp", "--task", "mnist", "--learning-rate", "1"], "did you mean 'lr'?"),
])
def test_near_misses_get_the_closest_names(args, hint, tmp_path):
    r = runner.invoke(app, ["run", *args, "--out", str(tmp_path)])
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and lines[0].endswith(hint) or hint in lines[0], r.output


def test_hyperparameter_flags_are_shorthands_for_set(tmp_path):
    r = runner.invoke(app, ["run", "--algo", "bp", "--task", "teacher-student", "--epochs", "1", "--lr", "0.002",
                            "--momentum=0", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "test acc n/a (regression)" in r.output  # no "nan" accuracy for a regression task
    (rec,) = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    assert rec["config"]["hparams"]["lr"] == 0.002 and rec["config"]["hparams"]["momentum"] == 0.0
    r = runner.invoke(app, ["run", "--algo", "bp", "--task", "teacher-student", "--lr", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "--lr needs a value" in r.output


def test_grids_report_k_of_n_failures_eta_and_log_paths(tmp_path):
    res = bench("grid", "--algo", "bp", "--task", "teacher-student", "--grid", "lr=0.002,0.001", "--set",
                "momentum=0", "--epochs", "1", "--out", str(tmp_path))
    assert re.search(r"1/2 done; 0:00:\d\d elapsed, ETA 0:00:\d\d \| bp__teacher-student__\S+: completed "
                     r"\(log: \S+\.log\)", res.stderr), res.stderr
    assert "2/2 done" in res.stderr and "per-epoch progress in" in res.stderr


def _check_latex(tex: str) -> None:
    """What pdflatex would reject in a booktabs table: unescaped specials, unbalanced braces, ragged rows."""
    body = tex[tex.index(r"\midrule"):tex.index(r"\bottomrule")]
    assert tex.count("{") == tex.count("}")
    bare = re.sub(r"\\[%&_#$]|\\textbackslash\{\}|\$\\pm\$|\$\^\\circ\$", "", tex)
    for ch in ("%", "_", "#"):
        assert ch not in bare.replace("% regenerate", ""), f"unescaped {ch!r}"
    rows = [ln for ln in body.splitlines()[1:] if ln.strip()]
    head = tex[tex.index(r"\toprule"):tex.index(r"\midrule")].splitlines()[1]
    assert rows and all(r.count(" & ") == head.count(" & ") for r in rows)


def test_latex_tables_compile(tmp_path):
    from test_trust import _rec  # records with known values

    from bioplaus_bench.records import RecordScan
    from bioplaus_bench.report import frame, render

    df = frame(RecordScan(records=[_rec(seed=s, acc=0.9 + s / 100) for s in range(2)] + [_rec(lr=0.02)]))
    tex = render(df, "latex")
    assert r"\toprule" in tex and r"\caption{Test accuracy (\%" in tex and "91.50" not in tex
    assert r"90.50 & 0.71" in tex  # rounded to 2 decimals, mean and std over 2 seeds
    _check_latex(tex)
    if shutil.which("pdflatex"):
        doc = tmp_path / "t.tex"
        doc.write_text("\\documentclass{article}\\usepackage{booktabs}\\begin{document}\n" + tex
                       + "\\end{document}\n")
        res = subprocess.run(["pdflatex", "-interaction=nonstopmode", doc.name], cwd=tmp_path, capture_output=True)
        assert res.returncode == 0 and (tmp_path / "t.pdf").exists()


def test_own_rule_module_resolves_from_the_current_folder(tmp_path):
    from test_grid import BOOM

    (tmp_path / "my_rule.py").write_text(BOOM)
    res = subprocess.run([*BENCH, "run", "--algo", "my_rule:Boom", "--task", "teacher-student", "--epochs", "1",
                          "--set", "lr=0.002", "--out", "runs"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert len(list((tmp_path / "runs").glob("my_rule_Boom__*.json"))) == 1


def test_missing_data_names_the_file_and_the_data_root_and_downloads_nothing(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    res = subprocess.run([*BENCH, "run", "--algo", "bp", "--task", "mnist", "--data-dir", str(shared), "--out",
                          str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "missing data file" in res.stderr and "BIOPLAUS_DATA" in res.stderr
    assert "downloading" not in res.stderr and not any(shared.rglob("*"))  # the named folder is never written


def test_the_quick_subset_is_marked():
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "not slow"],
                         capture_output=True, text=True, cwd=__import__("pathlib").Path(__file__).parents[1])
    assert "test_accuracy" not in out.stdout and "test_sigkill" not in out.stdout and "test_trust" in out.stdout
