"""How a training job starts its processes: one per GPU inside one job, one on CPU.

Kept free of heavy imports: the workflow imports it when the DAG is built.
"""

from __future__ import annotations

import sys


def launch_command(n_gpus: int, python: str = sys.executable) -> list[str]:
    """The argument list that starts ``kentropy.pipeline.continual_job`` with one process per GPU (one process on CPU).

    The interpreter is the one running Snakemake, so an unactivated virtual environment still works; a list,
    never a string to split, so a checkout path with spaces or quotes stays one argument.
    """
    if n_gpus <= 1:
        return [python, "-m", "kentropy.pipeline.continual_job"]
    ranks = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n_gpus)]
    return [python, *ranks, "-m", "kentropy.pipeline.continual_job"]
