"""How a training job is placed and starts its processes: one per GPU inside one job, one on CPU; across
nodes, one Slurm task per process.

Kept free of heavy imports: the workflow imports it when the DAG is built.
"""

from __future__ import annotations

from ..core.plan import Placement


def launch_command(n_gpus: int, program: list[str]) -> list[str]:
    """Start ``program`` (an argument list: the interpreter, ``-m``, a module; kentropy.cli.train.program) once
    per GPU with ``torch.distributed.run`` (once on CPU or one GPU).

    A list, never a string to split, so a checkout path with spaces or quotes stays one argument.
    """
    if n_gpus <= 1:
        return list(program)
    python, *module = program
    return [python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n_gpus), *module]


#: Every resource ``training_resources`` may set: the training rule names each, a placement fills some.
TRAINING_RESOURCES = ("gpu", "cpus_per_gpu", "mem_mb", "nodes", "mpi", "tasks", "tasks_per_node", "tasks_per_gpu",
                      "gres")  # fmt: skip


def node_memory(gpus: int, mem_mb_per_gpu: int, mem_mb: int) -> int:
    """mem_mb of a node running ``gpus`` GPUs' processes: per GPU on GPU jobs, else the CPU default."""
    return mem_mb_per_gpu * gpus if gpus else mem_mb


def training_resources(placement: Placement, cpus_per_gpu: int, mem_mb_per_gpu: int, mem_mb: int) -> dict:
    """The Slurm resources of a continual-training job placed by ``placement``, in the terms of
    snakemake-executor-plugin-slurm (the version ``pyproject.toml`` pins; ``tests/test_launch.py`` runs its own
    ``sbatch`` builder on them). One node: ``gpu`` (its ``--gpus``), ``cpus_per_gpu`` and ``mem_mb`` per job, the
    step started as one task (the plugin's ``srun -n1``) that starts one process per GPU itself. Several nodes:
    ``nodes``, the tasks per node (one per GPU, one on CPU), GPUs per node as ``gres`` and memory per node
    (Slurm's ``--mem`` is per node), and ``mpi`` so that the plugin runs the job's command once in the
    allocation, where the training script starts its processes with ``srun`` (``srun_command``)."""
    gpus = placement.gpus_per_node
    per_node_memory = node_memory(gpus, mem_mb_per_gpu, mem_mb)
    if placement.nodes == 1:
        return {"gpu": gpus, "cpus_per_gpu": cpus_per_gpu, "mem_mb": per_node_memory}
    resources = {"nodes": placement.nodes, "mpi": "srun", "mem_mb": per_node_memory}
    if gpus > 1:
        resources["tasks_per_node"] = gpus  # no ``tasks``: on a GPU job the plugin reads it as tasks per GPU
    else:  # the plugin's MPI check wants tasks_per_node > 1: the total, one task per node
        resources["tasks"] = placement.nodes
        if gpus:
            resources["tasks_per_gpu"] = 1  # else the plugin would take ``tasks`` for tasks per GPU
    if gpus:
        resources.update(gres=f"gpu:{gpus}", cpus_per_gpu=cpus_per_gpu)
    return resources


def srun_command(placement: Placement, program: list[str]) -> list[str]:
    """Start ``program`` as one Slurm task per process across the allocation; each takes its rank from Slurm's
    task variables (kentropy.training.ranks)."""
    per_node = placement.processes_per_node
    return ["srun", f"--nodes={placement.nodes}", f"--ntasks={placement.world_size}",
            f"--ntasks-per-node={per_node}", "--kill-on-bad-exit=1", *program]  # fmt: skip


def failed_tasks(log_text: str) -> list[str]:
    """The tasks ``srun`` reports ended badly, in its words and order (``n2: task 1: Killed``: node, task = rank,
    why): the first is the one that failed, the others are those ``--kill-on-bad-exit`` stopped after it."""
    prefix = "srun: error: "
    return [line[len(prefix):].strip() for line in log_text.splitlines()
            if line.startswith(prefix) and ": task " in line]  # fmt: skip
