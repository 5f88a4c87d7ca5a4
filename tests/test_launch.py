"""Where a training job runs: the Slurm request of a multi-node run, as the pinned executor plugin's own code
turns it into ``sbatch`` arguments, and the ``srun`` line that starts one task per process."""

import shlex
import sys

import pytest

from kentropy.cli.train import program
from kentropy.core.plan import Placement
from kentropy.pipeline.launch import failed_tasks, srun_command, training_resources


class Resources(dict):
    """A job's resources as the plugin reads them: ``get`` and attribute access."""

    __getattr__ = dict.get


class Job:
    def __init__(self, resources: dict, threads: int = 1):
        self.resources, self.threads = Resources(resources), threads


def sbatch(resources: dict, threads: int = 1) -> list[str]:
    """The sbatch arguments snakemake-executor-plugin-slurm builds for a job with ``resources``."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    job = Job(resources, threads)
    params = {"run_uuid": "u", "slurm_logfile": "log", "comment_str": "c", "account": "", "partition": "",
              "workdir": ""}  # fmt: skip
    return shlex.split(get_submit_command(job, params) + set_gres_string(job))


def flags(args: list[str]) -> set[str]:
    """The flags that place the job (``--opt=value`` or ``--opt value`` as one string)."""
    wanted = ("--mem", "--nodes", "--ntasks", "--ntasks-per-node", "--ntasks-per-gpu", "--cpus-per-gpu",
              "--cpus-per-task", "--gres", "--gpus")  # fmt: skip
    out = set()
    for i, arg in enumerate(args):
        name = arg.split("=")[0]
        if name in wanted:
            out.add(arg if "=" in arg else f"{arg}={args[i + 1]}")
    return out


def test_two_nodes_of_four_gpus_ask_for_four_tasks_and_gpus_on_each_and_memory_per_node():
    """OLMo-7B at 2 nodes x 4 GPUs (64 GB per GPU): Slurm's --mem is per node."""
    resources = training_resources(Placement(2, 4), cpus_per_gpu=8, mem_mb_per_gpu=64000, mem_mb=8000)
    assert flags(sbatch(resources)) == {"--mem=256000", "--nodes=2", "--ntasks-per-node=4", "--gres=gpu:4",
                                        "--cpus-per-gpu=8"}  # fmt: skip


def test_one_gpu_per_node_and_cpu_nodes_run_one_task_on_each():
    one = training_resources(Placement(3, 1), cpus_per_gpu=8, mem_mb_per_gpu=64000, mem_mb=8000)
    assert flags(sbatch(one)) == {"--mem=64000", "--nodes=3", "--ntasks=3", "--ntasks-per-gpu=1", "--gres=gpu:1",
                                  "--cpus-per-gpu=8"}  # fmt: skip
    cpu = training_resources(Placement(2, 0), cpus_per_gpu=8, mem_mb_per_gpu=64000, mem_mb=8000)
    assert flags(sbatch(cpu, threads=2)) == {"--mem=8000", "--nodes=2", "--ntasks=2", "--cpus-per-task=2"}


@pytest.mark.parametrize("gpus", [0, 1, 8])
def test_one_node_asks_as_before(gpus):
    """A one-node job: the resources of today's rule, one task that starts its processes itself."""
    resources = training_resources(Placement(1, gpus), cpus_per_gpu=8, mem_mb_per_gpu=64000, mem_mb=8000)
    assert resources == {"gpu": gpus, "cpus_per_gpu": 8, "mem_mb": 64000 * gpus if gpus else 8000}
    placed = {f"--gpus={gpus}", "--cpus-per-gpu=8"} if gpus else {"--ntasks=1", "--cpus-per-task=1"}
    assert flags(sbatch(resources)) == {f"--mem={resources['mem_mb']}", *placed}


def test_srun_starts_one_task_per_process_across_the_nodes():
    assert srun_command(Placement(2, 4), program("/v/bin/python")) == [
        "srun", "--nodes=2", "--ntasks=8", "--ntasks-per-node=4", "--kill-on-bad-exit=1",
        "/v/bin/python", "-m", "kentropy.cli.train",
    ]  # fmt: skip
    assert srun_command(Placement(2, 0), program())[1:4] == ["--nodes=2", "--ntasks=2", "--ntasks-per-node=1"]
    assert srun_command(Placement(2, 0), program())[5] == sys.executable


def test_the_rule_names_every_resource_a_placement_sets():
    from kentropy.pipeline.launch import TRAINING_RESOURCES

    for placement in (Placement(1, 0), Placement(1, 8), Placement(2, 4), Placement(3, 1), Placement(2, 0)):
        assert set(training_resources(placement, 8, 64000, 8000)) <= set(TRAINING_RESOURCES)


def test_a_failed_task_is_named_as_srun_reports_it():
    log = """rank 1 of 2 on n2 (local rank 0)
srun: error: n2: task 1: Killed
srun: launch/slurm: _step_signal: Terminating StepId=240.0
slurmstepd-n1: error: *** STEP 240.0 ON n1 CANCELLED AT 2026-12-03T23:43:14 ***
srun: error: n1: task 0: Terminated
srun: Force Terminated StepId=240.0
"""
    assert failed_tasks(log) == ["n2: task 1: Killed", "n1: task 0: Terminated"]
    assert failed_tasks("Traceback (most recent call last):\nValueError: x\n") == []
