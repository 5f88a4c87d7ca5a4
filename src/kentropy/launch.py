"""How a training job starts its processes: one per GPU inside one job, one on CPU.

Kept free of heavy imports: the workflow imports it when the DAG is built.
"""

from __future__ import annotations

import sys


def launch_command(n_gpus: int, python: str = sys.executable) -> str:
    """The command prefix that runs ``kentropy.continual`` with one process per GPU (one process on CPU).

    The interpreter is the one running Snakemake, so an unactivated virtual environment still works.
    """
    if n_gpus <= 1:
        return f"{python} -m kentropy.continual"
    return f"{python} -m torch.distributed.run --standalone --nproc_per_node {n_gpus} -m kentropy.continual"
