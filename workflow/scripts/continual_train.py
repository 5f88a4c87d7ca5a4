"""Train one checkpoint on one run's stream with DeepSpeed: ``python -m kentropy.continual``, one process per
GPU of the job (kentropy.launch); then evaluate the trained model (kentropy.evaluation, the evaluate rule's
code) in the same process. The interpreter, GPU count, threads, batch sizes of probes and benchmarks and
``continual.compile`` are not params: they change speed (and rounding), not the result, so changing them
reruns nothing."""

import json
import os
import shlex
import subprocess
import sys

from kentropy.evaluation import Evaluation
from kentropy.launch import launch_command
from kentropy.offline import hf_env

out = snakemake.output
evaluation = Evaluation.from_job(snakemake, snakemake.wildcards.run)
argv = [
    *launch_command(int(snakemake.resources.get("gpu", 0)), python=sys.executable),
    "--model", snakemake.input.checkpoint,
    "--stream", snakemake.input.stream,
    "--run-config", snakemake.params.run,
    "--out", out.model,
    "--loss", out.loss,
    "--work-dir", snakemake.params.work,
    "--threads", str(snakemake.threads),
    "--knowledge", snakemake.input.paraphrase, snakemake.input.once,
    "--probe-steps", snakemake.params.probe_steps,
    "--probe-batch-size", str(evaluation.probe_batch_size),
    "--probe-max-length", str(evaluation.probe_max_length),
    "--released-evaluator", json.dumps(evaluation.released),
    "--retention", out.retention,
    "--evaluation", evaluation.to_json(),
    *(["--compile"] if snakemake.config["continual"].get("compile") else []),
]  # fmt: skip
with open(snakemake.log[0], "w") as log:
    log.write(shlex.join(argv) + "\n")
    log.flush()
    done = subprocess.run(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **hf_env(snakemake.config.get("hf_cache"))},
        check=False,
    )
if done.returncode:
    sys.exit(f"continual_train failed (exit {done.returncode}); the traceback is in {snakemake.log[0]}")
