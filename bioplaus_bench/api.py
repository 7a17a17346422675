"""The Python API: ``run`` trains one configuration and returns its record; ``load_records`` reads a folder of
records into a DataFrame (one row per record; the leaderboard is built on it).

    from bioplaus_bench import run, load_records
    rec = run(algo="fa", task="mnist", epochs=1, lr=0.02, out="runs/nb")   # lr: a rule hyperparameter
    df = load_records("runs/nb")
"""

from __future__ import annotations

import dataclasses
from typing import Any

from bioplaus_bench.report import load_records

__all__ = ["run", "load_records"]


def run(algo: str, task: str, force: bool = False, **fields: Any) -> dict[str, Any]:
    """Train ``algo`` on ``task`` through the harness and return the run record (as ``bench run`` writes it).

    Keywords that are run fields (``epochs``, ``batch_size``, ``seed``, ``arch``, ``preset``, ``out``,
    ``data_dir``, ``device``, ``angle_every``, ``val_size``, ...) set the run; any other keyword is a rule
    hyperparameter (``lr=0.02``), checked like ``--set``. A finished config is not rerun (its record comes
    back with ``skipped``) unless ``force``; an unfinished one resumes from its checkpoint."""
    from bioplaus_bench.harness import RunSpec, resolve, train

    names = {f.name for f in dataclasses.fields(RunSpec)}
    run_fields = {k: v for k, v in fields.items() if k in names and k != "overrides"}
    overrides = {**{k: str(v) for k, v in (fields.get("overrides") or {}).items()},
                 **{k: ",".join(map(str, v)) if isinstance(v, list | tuple) else str(v)
                    for k, v in fields.items() if k not in names}}
    spec = RunSpec(algo=algo, task=task, overrides=overrides, **{"checkpoint": True, "progress": False, **run_fields})
    return train(spec, resolve(spec), force=force)
