"""The test DAG through the Slurm profile on CI's two-node cluster (``.ci/slurm.sh``): what ``tests/test_slurm.py``
runs, and what ``conftest`` starts in the background at the session's start (Snakemake mostly waits on Slurm
there, so the unit tests fill the cores meanwhile)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
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


#: Where the session's count of idle nodes is kept for the processes it starts (pytest-xdist's workers).
IDLE_NODES = "KENTROPY_TESTS_IDLE_SLURM_NODES"


def sbatch_until_ended(options: list[str], command: str, timeout: float) -> tuple[str, str]:
    """Submit ``command`` as a batch job, wait for it to end, and return its last state and exit code as
    ``scontrol`` writes them (``FAILED``, ``1:0``). Looks every 0.2 s: ``sbatch --wait`` looks less and less
    often (a job of about 11 s held the test that used it 42 s)."""
    submitted = subprocess.run(["sbatch", "--parsable", *options, f"--wrap={command}"], capture_output=True,
                               text=True, check=True)  # fmt: skip
    job, deadline = submitted.stdout.strip().split(";")[0], time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True, check=True)
        fields = dict(field.split("=", 1) for field in shown.stdout.split() if "=" in field)
        if fields["JobState"] not in {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED"}:
            return fields["JobState"], fields["ExitCode"]
        time.sleep(0.2)
    raise TimeoutError(f"Slurm job {job} did not end within {timeout} s")


def idle_nodes() -> int:
    """Slurm nodes reachable from here that were idle when the test session started (0 without Slurm): counted
    once, since a worker asking after another has submitted the session's Slurm jobs would find them busy."""
    if IDLE_NODES not in os.environ:
        idle = 0
        if shutil.which("sinfo"):
            proc = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, check=False)
            idle = proc.stdout.split().count("idle") if proc.returncode == 0 else 0
        os.environ[IDLE_NODES] = str(idle)
    return int(os.environ[IDLE_NODES])


def slurm_targets(work: Path, root: Path, *targets: str) -> tuple[str, ...]:
    """Snakemake arguments that run ``targets`` of the test DAG in ``work`` through the Slurm profile, its
    training job placed on two nodes (``train_nodes: 2``); temporary files kept, so that a forced rerun of the
    training job reuses its stream."""
    (work / "two-nodes.yaml").write_text("models: {tiny: {train_nodes: 2}}\n")
    configs = (str(root / "tests/config/e2e.yaml"), str(work / "two-nodes.yaml"))
    return (*targets, "--notemp", "--profile", str(root / "profiles/slurm"), *OVERRIDES, "--configfile", *configs)


def is_slurm_task(pid: int, rank: int) -> bool:
    """Whether process ``pid`` is the training job's Slurm task ``rank``."""
    proc = Path("/proc", str(pid))
    try:
        if b"kentropy.cli.train" not in (proc / "cmdline").read_bytes().split(b"\0"):
            return False
        return f"SLURM_PROCID={rank}".encode() in (proc / "environ").read_bytes().split(b"\0")
    except OSError:  # ended while we looked
        return False


def slurm_task(rank: int) -> int | None:
    """The process of the training job's Slurm task ``rank`` (both nodes' tasks run on this one machine)."""
    return next((int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and is_slurm_task(int(p.name), rank)),
                None)  # fmt: skip


def kill_after_first_checkpoint(run: Path, deadline: float) -> int | None:
    """SIGKILL the training job's Slurm task 1 within a poll of the run's first resumable checkpoint (``work/latest``
    in ``run``): the task is found while the job starts (seconds), so only the poll separates the checkpoint from
    the kill. The killed process, or None at ``deadline``."""
    task = None
    while time.time() < deadline:
        if task is None or not is_slurm_task(task, 1):  # not started yet, or not that task any more (a reused pid)
            task = slurm_task(1)
        elif (run / "work/latest").exists():
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile: look again
                os.kill(task, signal.SIGKILL)
                return task
        time.sleep(0.01)
    return None


#: What the kill test compares: the uninterrupted two-node run's files.
COMPARED = ("loss.parquet", "model/model.safetensors")


@dataclass
class SlurmRuns:
    """What ``run_through_slurm`` did: Snakemake's output of the uninterrupted run and its return code, the
    bytes it wrote, then the same of the forced rerun whose rank 1 was killed after its first checkpoint."""

    work: Path
    returncode: int | None = None
    output: str = ""
    uninterrupted: dict = field(default_factory=dict)
    killed: int | None = None  #: the killed process (None: the run ended before a checkpoint could be cut)
    rerun_returncode: int | None = None
    rerun_output: str = ""


def run_through_slurm(runs: SlurmRuns, snakemake_call, root: Path) -> None:
    """The test DAG's part through Slurm (two-node training), then the training job again with its rank 1 killed
    after the first resumable checkpoint (the profile's retry resumes it): both in the background of the test
    session, since Snakemake mostly waits on Slurm there."""
    work, run = runs.work, (runs.work / TRAINED).parent
    command, env = snakemake_call(work, slurm_targets(work, root, MEASURED, TRAINED))
    # cwd: in the background, a test that changes the worker's folder for a while (test_warm) must not lend it
    # to Snakemake, which goes back to its first folder when it ends (once gone, the rerun failed at its exit).
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False, cwd=work)
    runs.returncode, runs.output = done.returncode, done.stdout + done.stderr
    if done.returncode:
        return
    runs.uninterrupted = {name: (run / name).read_bytes() for name in COMPARED}
    rerun = slurm_targets(work, root, TRAINED, "--forcerun", "continual_train")
    command, env = snakemake_call(work, rerun)
    with open(work / "killed.log", "w+") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
        # The killer is a process of its own: as a thread of this test worker (its GIL, the tests' nice value) it
        # once woke too late on a fast machine, where the tiny run's steps after its checkpoint take 0.1 s.
        killer = subprocess.Popen([sys.executable, "-m", "tests.slurm_cluster", str(run)], cwd=root,
                                  stdout=subprocess.PIPE, text=True)  # fmt: skip
        runs.rerun_returncode = proc.wait(timeout=600)
        if killer.poll() is None:  # the run ended without a kill
            killer.terminate()
        killed = killer.communicate()[0].strip()
        runs.killed = int(killed) if killed else None
        log.seek(0)
        runs.rerun_output = log.read()


if (
    __name__ == "__main__"
):  # python -m tests.slurm_cluster RUN: the killer of run_through_slurm, printing what it killed
    with contextlib.suppress(PermissionError):  # back from the tests' nice value where allowed: it must wake fast
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    killed = kill_after_first_checkpoint(Path(sys.argv[1]), time.time() + 600)
    print("" if killed is None else killed, flush=True)
