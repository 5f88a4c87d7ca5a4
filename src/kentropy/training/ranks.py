"""Where this process sits in a training job's process group: the variables ``torch.distributed`` reads
(``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``), from whichever started it.

A launcher that sets them (``torch.distributed.run``) wins; a process started by ``srun`` as one task of a
multi-task step takes them from Slurm's task variables (one process per GPU across the allocation, as
allenai/OLMo's Slurm scripts start theirs); a process started alone is rank 0 of 1. A process that sits in an
allocation of several tasks without being one of them would train the whole batch by itself and write over
the others' outputs: it is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..core.errors import KentropyError

#: What ``torch.distributed``'s env:// rendezvous reads.
TORCH_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
#: The rendezvous port of a Slurm job: this base plus the job id modulo ``PORT_SPAN``, so that two jobs sharing
#: a node do not collide (a job's steps run one at a time).
PORT_BASE, PORT_SPAN = 20000, 20000


class RankError(KentropyError):
    """This process cannot tell its rank."""


def first_host(nodelist: str) -> str:
    """The first host of a Slurm node list (``SLURM_STEP_NODELIST``): ``gpu[003-004,9],cpu1`` -> ``gpu003``."""
    head, depth = nodelist.strip(), 0
    for i, char in enumerate(head):  # the first entry: up to a comma outside brackets
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            head = head[:i]
            break
    if "[" not in head:
        if not head:
            raise RankError(f"cannot read the first host of the Slurm node list {nodelist!r}")
        return head
    prefix, rest = head.split("[", 1)
    ranges, _, suffix = rest.partition("]")
    return prefix + ranges.split(",")[0].split("-")[0] + suffix


def process_group_environment(env: Mapping[str, str], free_port: Callable[[], int]) -> dict[str, str]:
    """The ``TORCH_VARIABLES`` of a process whose environment is ``env`` (``free_port``: a free local port,
    asked for only when the process runs alone)."""
    if "RANK" in env:
        missing = [v for v in TORCH_VARIABLES if v not in env]
        if missing:
            raise RankError(f"RANK is set but {', '.join(missing)} not: set all of {', '.join(TORCH_VARIABLES)}")
        return {v: env[v] for v in TORCH_VARIABLES}
    step_tasks = int(env.get("SLURM_STEP_NUM_TASKS", "1"))
    if step_tasks > 1 and "SLURM_PROCID" in env:
        return {
            "RANK": env["SLURM_PROCID"],
            "LOCAL_RANK": env.get("SLURM_LOCALID", "0"),
            "WORLD_SIZE": str(step_tasks),
            "MASTER_ADDR": first_host(env.get("SLURM_STEP_NODELIST", env.get("SLURM_JOB_NODELIST", ""))),
            "MASTER_PORT": str(PORT_BASE + int(env.get("SLURM_JOB_ID", "0")) % PORT_SPAN),
        }
    allocated = int(env.get("SLURM_NTASKS", env.get("SLURM_NPROCS", "1")))
    if allocated > 1:
        raise RankError(
            f"this process runs in a Slurm allocation of {allocated} tasks but is not one task of a multi-task "
            f"step: start it with `srun` (one process per task), or set {', '.join(TORCH_VARIABLES)}"
        )
    return {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(free_port())}  # fmt: skip
