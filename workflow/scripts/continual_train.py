"""Train one checkpoint on one run's stream with DeepSpeed: ``python -m kentropy.continual``, one process per
GPU of the job (kentropy.launch); then evaluate the trained model (kentropy.evaluation, the evaluate rule's
code) in the same process. The run and the evaluation cross the command line once each, as the JSON of their
typed objects (kentropy.plan). The interpreter, GPU count, threads, batch sizes of probes and benchmarks and
``continual.compile`` are not params: they change speed (and rounding), not the result, so changing them
reruns nothing."""

import os
import shlex
import subprocess
import sys

from kentropy.evaluation import Evaluation
from kentropy.launch import launch_command
from kentropy.offline import hf_env
from kentropy.plan import Run, Speed

out = snakemake.output
speed = Speed.from_config(snakemake.config)
argv = [
    *launch_command(int(snakemake.resources.get("gpu", 0)), python=sys.executable),
    "--model", snakemake.input.checkpoint,
    "--stream", snakemake.input.stream,
    "--run-config", Run.from_dict(snakemake.params.run).to_json(),
    "--out", out.model,
    "--loss", out.loss,
    "--work-dir", snakemake.params.work,
    "--threads", str(snakemake.threads),
    "--retention", out.retention,
    "--evaluation", Evaluation.from_job(snakemake, snakemake.wildcards.run).to_json(),
    *(["--compile"] if speed.compile else []),
]  # fmt: skip
with open(snakemake.log[0], "w") as log:
    log.write(shlex.join(argv) + "\n")
    log.flush()
    done = subprocess.run(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **hf_env(snakemake.config["hf_cache"])},
        check=False,
    )
if done.returncode:
    sys.exit(f"continual_train failed (exit {done.returncode}); the traceback is in {snakemake.log[0]}")
