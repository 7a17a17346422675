"""Records are judged by behaviour: an edit that computes the same stales nothing, one that computes something
else stales exactly the records of what it changed (bioplaus_bench/fingerprint.py)."""

import json
import os
import subprocess
import sys
import textwrap

from bioplaus_bench import fingerprint as fp

RULE = textwrap.dedent('''
    """Sign-SGD, a rule outside the suite: W <- W - lr * SCALE * sign(dL/dW)."""
    from dataclasses import dataclass

    from bioplaus_bench.rule import OptimConfig, RuleBase

    SCALE = 1.0


    @dataclass(frozen=True)
    class Config(OptimConfig):
        lr: float = 0.001  # step size of the sign update
        momentum: float = 0.0  # plain SGD on sign(grad)


    class SignSGD(RuleBase):
        Config = Config

        def __init__(self, model, cfg, task, epochs):
            super().__init__(model, cfg, task, epochs)
            self.opt = self.add_optimizer(model.parameters(), cfg)

        def step(self, x, y):
            self.opt.zero_grad()
            out = self.model(x)
            self.loss(out, y).backward()
            for p in self.model.parameters():
                p.grad = SCALE * p.grad.sign()
            self.opt.step()
            return out.detach()
''')

# (edit, old text, new text, stale?): the first three compute the same, the last three do not
EDITS = [
    ("rename", "for p in self.model.parameters():\n            p.grad = SCALE * p.grad.sign()",
     "for weight in self.model.parameters():\n            weight.grad = SCALE * weight.grad.sign()", False),
    ("helper extracted", "        for p in self.model.parameters():\n            p.grad = SCALE * p.grad.sign()\n",
     "        signs(self.model.parameters())\n", False),
    ("dead function", "SCALE = 1.0\n", "SCALE = 1.0\n\n\ndef unused(x):\n    return x * 2\n", False),
    ("changed default (a constant outside the config)", "SCALE = 1.0\n", "SCALE = 0.5\n", True),
    ("changed update (a flipped sign)", "p.grad = SCALE * p.grad.sign()", "p.grad = -SCALE * p.grad.sign()", True),
    ("dropped term (plain gradient)", "p.grad = SCALE * p.grad.sign()", "p.grad = SCALE * p.grad", True),
]
HELPER = "\n\ndef signs(params):\n    for p in params:\n        p.grad = SCALE * p.grad.sign()\n"

# in one process, each edit in turn: the rule's module imported afresh, the code-hash cache cleared
CHECK = """
import importlib, json, sys
from pathlib import Path
from bioplaus_bench import records
edits, rule, helper = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
out = {}
for name, old, new, _ in edits:
    Path("ours.py").write_text(rule.replace(old, new) + (helper if name == "helper extracted" else ""))
    sys.modules.pop("ours", None)
    importlib.invalidate_caches()
    records.current_code_hash.cache_clear()
    out[name] = {r["config"]["algo"]: records.is_stale(r) for r in records.read_records("runs").records}
print(json.dumps(out))
"""


def _env(cwd):
    return {**os.environ, "BIOPLAUS_FINGERPRINT_CACHE": str(cwd / "cache.json"), "PYTHONDONTWRITEBYTECODE": "1"}


def test_an_edit_stales_a_record_only_when_it_changes_what_is_computed(tmp_path):
    (tmp_path / "ours.py").write_text(RULE)
    for args in (["--algo", "ours:SignSGD"], ["--algo", "bp", "--lr", "0.002", "--momentum", "0"]):
        res = subprocess.run([sys.executable, "-m", "bioplaus_bench", "run", *args, "--task", "teacher-student",
                              "--epochs", "1", "--out", "runs"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=300, env=_env(tmp_path))
        assert res.returncode == 0, res.stdout + res.stderr
    for name, old, new, _ in EDITS:
        assert RULE.replace(old, new) != RULE, name
    res = subprocess.run([sys.executable, "-c", CHECK, json.dumps(EDITS), RULE, HELPER], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300, env=_env(tmp_path))
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.strip().splitlines()[-1])
    for name, _, _, stale in EDITS:
        # the edited rule's record is stale exactly when the edit changed its computation; BP's never is
        assert got[name] == {"ours:SignSGD": stale, "bp": False}, name


def test_a_changed_normalisation_changes_the_data_fingerprint(monkeypatch):
    from bioplaus_bench import data as datamod

    cfg = {"algo": "bp", "task": "teacher-student", "arch": "linear3", "seed": 0, "epochs": 1, "batch_size": 20,
           "val_size": 2000, "angle_every": 0, "hparams": {}}
    before = fp.data_fingerprint(cfg)
    assert fp.data_fingerprint(cfg) == before  # deterministic
    prepare = datamod.Batches.prepare
    monkeypatch.setattr(datamod.Batches, "prepare", lambda self, xb: prepare(self, xb) * 1.01)  # a 1% rescale
    after = fp.data_fingerprint(cfg)
    assert not fp._close(before, after)


def test_the_tolerance_absorbs_summation_order_only():
    stored = {"version": fp.VERSION, "step": {"losses": [2.0, 1.5]}, "data": None}
    assert fp.same(stored, {"version": fp.VERSION, "step": {"losses": [2.0 * (1 + 1e-6), 1.5]}, "data": None})
    assert not fp.same(stored, {"version": fp.VERSION, "step": {"losses": [2.0 * (1 + 1e-3), 1.5]}, "data": None})
    assert not fp.same({**stored, "version": fp.VERSION + 1}, stored)  # another protocol never matches


def test_a_fingerprint_leaves_the_run_untouched():
    import torch

    cfg = {"algo": "fa", "task": "teacher-student", "arch": "linear3", "seed": 0, "epochs": 1, "batch_size": 20,
           "val_size": 2000, "angle_every": 0,
           "hparams": {"lr": 0.002, "momentum": 0.0}}
    torch.manual_seed(5)
    threads = torch.get_num_threads()
    expected = torch.rand(3)
    torch.manual_seed(5)
    a = fp.step_fingerprint(cfg)
    assert torch.equal(torch.rand(3), expected) and torch.get_num_threads() == threads
    assert fp._close(fp._nan(fp.step_fingerprint(cfg)), fp._nan(a))  # deterministic (NaN accuracy: regression)


def test_the_committed_cache_holds_todays_fingerprint_of_every_committed_record():
    """So that a clone judges results/ without recomputing: `bench fingerprint --update` after a code change."""
    from bioplaus_bench.records import current_code_hash, read_records

    entries = json.loads(fp.COMMITTED.read_text())["entries"]
    missing = []
    for rec in read_records(fp.COMMITTED.parent).records:
        code = current_code_hash(rec["config"]["algo"])
        if rec.get("code_hash") == code:
            continue  # made by today's source: nothing to look up
        for kind, key in (("step", fp.step_key(rec["config"])), ("data", fp.data_key(rec["config"]))):
            if f"{code}:{kind}:{key}" not in entries:
                missing.append(f"{rec['_path']} ({kind})")
    assert not missing, f"{len(missing)} missing, e.g. {missing[:3]}: run `bench fingerprint --update`"
