"""The test DAG through the Slurm profile on CI's two-node cluster (``.ci/slurm.sh``): what ``tests/test_slurm.py``
runs, and what ``conftest`` starts in the background at the session's start (Snakemake mostly waits on Slurm
there, so the unit tests fill the cores meanwhile)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from kentropy.core.layout import Layout

TRAINED = "results/e2e/continual/tiny/step10/original/baseline/loss.parquet"
TRAIN_LOG = "logs/e2e/continual_train/tiny/step10/original/baseline.log"
MEASURED = Layout("e2e").entropy("tiny", 10, "original")
# Test-only overrides of the site profile: the CI cluster's partition, and squeue for job status
# because it has no accounting database (sacct fails, and the plugin would wait forever).
OVERRIDES = (
    "--slurm-status-command", "squeue", "--slurm-no-account", "--slurm-keep-successful-logs",
    "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "2",
    "--default-resources", "slurm_partition=ci", "runtime=10", "mem_mb=1000",
)  # fmt: skip


def idle_nodes() -> int:
    """Idle Slurm nodes reachable from here (0 without Slurm)."""
    if shutil.which("sinfo") is None:
        return 0
    proc = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, check=False)
    return proc.stdout.split().count("idle") if proc.returncode == 0 else 0


def slurm_targets(work: Path, root: Path, *targets: str) -> tuple[str, ...]:
    """Snakemake arguments that run ``targets`` of the test DAG in ``work`` through the Slurm profile, its
    training job placed on two nodes (``train_nodes: 2``); temporary files kept, so that a forced rerun of the
    training job reuses its stream."""
    (work / "two-nodes.yaml").write_text("models: {tiny: {train_nodes: 2}}\n")
    configs = (str(root / "tests/config/e2e.yaml"), str(work / "two-nodes.yaml"))
    return (*targets, "--notemp", "--profile", str(root / "profiles/slurm"), *OVERRIDES, "--configfile", *configs)
