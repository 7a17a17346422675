"""An out-of-tree rule ("ours") registers through an entry point or package.module:Class, with no edit to the suite."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

RULE = '''
"""Sign-SGD: a toy out-of-tree rule. W <- W - lr * sign(dL/dW)."""
from dataclasses import dataclass

import torch

from bioplaus_bench import register_algorithm
from bioplaus_bench.rule import OptimConfig, RuleBase


@dataclass(frozen=True)
class Config(OptimConfig):
    lr: float = 0.001  # step size of the sign update
    momentum: float = 0.0  # plain SGD on sign(grad)


class SignSGD(RuleBase):
    """Sign-SGD, a test rule from outside the suite."""

    Config = Config

    def __init__(self, model, cfg, task, epochs):
        super().__init__(model, cfg, task, epochs)
        self.opt = self.add_optimizer(model.parameters(), cfg)

    def step(self, x, y):
        self.opt.zero_grad()
        out = self.model(x)
        self.loss(out, y).backward()
        for p in self.model.parameters():
            p.grad = p.grad.sign()
        self.opt.step()
        return out.detach()


register_algorithm("ours-signsgd", Config)(SignSGD)
'''

PYPROJECT = '''
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"
[project]
name = "ours-rule"
version = "0.0.1"
[project.entry-points."bioplaus_bench.algorithms"]
ours-signsgd = "ours_rule"
[tool.setuptools]
py-modules = ["ours_rule"]
'''


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    (src / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (src / "ours_rule.py").write_text(RULE)
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(src)], check=True)
    return target


def _bench(args, site, out):
    env = dict(os.environ, PYTHONPATH=str(site))
    return subprocess.run([sys.executable, "-m", "bioplaus_bench", *args, "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)


def test_entry_point_rule_is_listed_and_runs(installed, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(installed))
    listing = subprocess.run([sys.executable, "-m", "bioplaus_bench", "list"], env=env, capture_output=True,
                             text=True, check=True).stdout
    assert "ours-signsgd" in listing and "Sign-SGD, a test rule from outside the suite." in listing
    r = _bench(["run", "--algo", "ours-signsgd", "--task", "teacher-student", "--epochs", "2"], installed, tmp_path)
    assert r.returncode == 0, r.stderr
    (rec_path,) = tmp_path.glob("ours-signsgd__*.json")
    rec = json.loads(rec_path.read_text())
    assert rec["status"] == "completed"
    assert rec["curves"]["test_loss"][-1] < rec["curves"]["test_loss"][0]  # it learns


def test_module_class_rule_runs(installed, tmp_path):
    args = ["run", "--algo", "ours_rule:SignSGD", "--task", "teacher-student", "--epochs", "1"]
    r = _bench(args, installed, tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(list(tmp_path.glob("*.json"))) == 1
