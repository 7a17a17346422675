"""Grids on a real SLURM cluster through submitit (marked ``slurm``; skip with ``-m 'not slurm'``).

They need ``sbatch``, ``squeue`` and ``sacct`` answering on this machine (see the README's "SLURM" section).
Without a cluster they are skipped, unless BIOPLAUS_REQUIRE_SLURM=1 (as in CI), where they fail instead.
"""

import json
import os
import shutil
import subprocess

import pytest
from helpers import bench, records, wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.data, pytest.mark.slow]


def _cluster_up() -> str | None:
    if not shutil.which("sbatch"):
        return "sbatch not found"
    res = subprocess.run(["sinfo", "-h", "-o", "%a"], capture_output=True, text=True)
    if res.returncode != 0 or "up" not in res.stdout:
        return f"no SLURM partition is up ({res.stderr.strip() or res.stdout.strip()})"
    return None


@pytest.fixture(scope="module", autouse=True)
def slurm_cluster():
    why = _cluster_up()
    if why:
        if os.environ.get("BIOPLAUS_REQUIRE_SLURM") == "1":
            pytest.fail(f"SLURM is required here but {why}")
        pytest.skip(why)


def sacct_state(job_id: str) -> str:
    res = subprocess.run(["sacct", "-n", "-P", "-X", "-o", "State", "-j", job_id], capture_output=True, text=True)
    return (res.stdout.split() or [""])[0]


def test_job_array_grid_completes_and_a_second_submission_submits_nothing(tmp_path, data_root):
    args = ["grid", "--algo", "bp,fa", "--task", "mnist", "--seeds", "0,1", "--epochs", "1", "--executor", "slurm",
            "--max-parallel", "2", "--timeout-min", "10", "--data-dir", str(data_root), "--out", str(tmp_path)]
    first = bench(*args)
    assert "4 to run" in first.stdout and "4 done" in first.stdout
    recs = records(tmp_path)
    assert len(recs) == 4 and all(r["status"] == "completed" for r in recs.values())
    job_ids = {r["env"]["slurm_job_id"] for r in recs.values()}
    assert len(job_ids) == 4 and all(r["env"]["torch_threads"] == 1 for r in recs.values())  # --cpus-per-task 1
    arrays = {j["job_id"].split("_")[0] for j in json.loads((tmp_path / "grid.json").read_text())["jobs"].values()}
    assert len(arrays) == 1  # one job array
    assert min(r["final"]["test_acc"] for r in recs.values()) > 0.85

    second = bench(*args)
    assert "0 to run" in second.stdout and "submitted job array" not in second.stderr
    jobs = json.loads((tmp_path / "grid.json").read_text())["jobs"]
    assert {j["job_id"].split("_")[0] for j in jobs.values()} == arrays


def test_scancel_is_reported_failed_and_the_rerun_resumes_from_the_checkpoint(tmp_path, data_root):
    args = ["grid", "--algo", "bp", "--task", "mnist", "--epochs", "4", "--executor", "slurm", "--timeout-min", "10",
            "--data-dir", str(data_root), "--out", str(tmp_path)]
    bench(*args, "--no-wait")
    (job,) = json.loads((tmp_path / "grid.json").read_text())["jobs"].values()

    def one_epoch_done() -> bool:
        recs = records(tmp_path)
        return bool(recs) and next(iter(recs.values())).get("epochs_done", 0) >= 1

    wait_for(one_epoch_done, 300, "the first epoch's checkpoint")
    subprocess.run(["scancel", job["job_id"]], check=True)
    wait_for(lambda: sacct_state(job["job_id"]) == "CANCELLED", 120, "sacct to show the job CANCELLED")
    # the job's SIGTERM handler writes the failed record as soon as Python regains control (after the C call
    # under way: an evaluation or a checkpoint write can take a few seconds on a busy machine)
    wait_for(lambda: next(iter(records(tmp_path).values()))["status"] == "failed", 30, "the failed record")
    st = bench("status", "--out", str(tmp_path), check=False)
    assert st.returncode == 1 and "failed" in st.stdout and "CANCELLED" in st.stdout, st.stdout
    assert "SIGTERM" in st.stdout  # the job stopped at once and recorded why

    rerun = bench(*args)
    assert "1 to run" in rerun.stdout and "1 done" in rerun.stdout
    (rec,) = records(tmp_path).values()
    assert rec["status"] == "completed" and rec["resumed_from_epoch"] >= 1
    assert len(rec["curves"]["test_acc"]) == 4 and rec["final"]["test_acc"] > 0.95
