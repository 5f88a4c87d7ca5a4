"""The test DAG submitted to a real Slurm cluster with the project's profile (``.ci/run`` starts one).

Without a reachable Slurm controller the test is skipped: it needs ``.ci/slurm.sh start`` (root, Debian).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from .conftest import ROOT, snakemake


def slurm_idle() -> bool:
    if shutil.which("sinfo") is None:
        return False
    proc = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, check=False)
    return proc.returncode == 0 and "idle" in proc.stdout.split()


pytestmark = pytest.mark.skipif(not slurm_idle(), reason="no idle Slurm node here (.ci/slurm.sh start makes one)")

TRAINED = "results/e2e/continual/tiny/step10/original/baseline/loss.parquet"
# Test-only overrides of the site profile: the CI cluster's partition, and squeue for job status
# because it has no accounting database (sacct fails, and the plugin would wait forever).
OVERRIDES = [
    "--slurm-status-command",
    "squeue",
    "--slurm-no-account",
    "--slurm-keep-successful-logs",
    "--slurm-init-seconds-before-status-checks",
    "1",
    "--seconds-between-status-checks",
    "2",
    "--default-resources",
    "slurm_partition=ci",
    "runtime=10",
    "mem_mb=1000",
]


def test_test_dag_runs_through_slurm_and_matches_the_local_run(tmp_path, e2e):
    proc = snakemake(
        tmp_path,
        "entropy",
        TRAINED,
        "--profile",
        str(ROOT / "profiles/slurm"),
        "--configfile",
        str(ROOT / "tests/config/e2e.yaml"),
        *OVERRIDES,
        offline=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    submitted = dict(re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)", proc.stderr))
    rules = {re.search(r"slurm_logs/rule_(\w+)/", log)[1] for log in submitted.values()}
    assert {"pretrain_tiny", "measure_entropy", "continual_train"} <= rules
    assert "fetch_checkpoint" not in rules and "fictional_knowledge" not in rules  # localrules stay local
    for jobid, log in submitted.items():
        assert Path(log).name == f"{jobid}.log" and Path(log).is_file()
    # The scheduler knows the jobs: squeue lists finished jobs for MinJobAge seconds.
    listed = subprocess.run(["squeue", "-h", "--states=all", "-o", "%i %T"], capture_output=True, text=True, check=True)
    states = dict(line.split() for line in listed.stdout.splitlines())
    assert all(states.get(j) == "COMPLETED" for j in submitted)

    slurm = pd.read_parquet(tmp_path / "results/e2e/tables/entropy.parquet")
    local = pd.read_parquet(e2e / "results/e2e/tables/entropy.parquet")
    pd.testing.assert_frame_equal(slurm, local, check_exact=False, rtol=1e-6)
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / TRAINED), pd.read_parquet(e2e / TRAINED), check_exact=False, rtol=1e-6
    )
