"""Train one checkpoint on one run's stream with DeepSpeed, then evaluate the trained model (the evaluate rule's
code) in the same process (kentropy.pipeline.continual_job). One process (CPU or one GPU): the
trainer runs in this job's interpreter, so the libraries are imported once (and a warm-started job,
kentropy.pipeline.warm, imports nothing); several GPUs: one process per GPU (kentropy.pipeline.launch). The run and the
evaluation cross the command line once each, as the JSON of their typed objects (kentropy.core.plan). The
interpreter, GPU count, threads, batch sizes of probes and benchmarks, ``continual.compile`` and the live logs
(``monitor``) are not params: they change speed (and rounding), not the result, so changing them reruns
nothing."""

from kentropy.pipeline.compute_job import snakemake

import shlex
import subprocess
import sys

from kentropy.core.layout import Layout
from kentropy.core.logs import log_to
from kentropy.core.plan import Run, Speed
from kentropy.evaluation.model_state import Evaluation
from kentropy.pipeline.launch import launch_command
from kentropy.training.monitor import Monitor

out = snakemake.output
speed = Speed.from_config(snakemake.config)
gpus = int(snakemake.resources.get("gpu", 0))
wc = snakemake.wildcards
# Live logs: read from the config, not a param (they change no result).
job = f"{wc.model}/step{wc.step}/{wc.variant}/{wc.run}"
monitor = Monitor.from_config(snakemake.config, Layout(snakemake.config["experiment"]).monitor(), job)
options = [
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
    *(["--monitor", monitor.to_json()] if monitor.enabled else []),
]  # fmt: skip
if gpus <= 1:
    from kentropy.pipeline.continual_job import main

    with log_to(snakemake.log[0]) as log:
        log.info("python -m kentropy.pipeline.continual_job %s", shlex.join(options))
        main(options)
else:
    argv = [*launch_command(gpus, python=sys.executable), *options]
    with open(snakemake.log[0], "w") as log:
        log.write(shlex.join(argv) + "\n")
        log.flush()
        done = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=False)
    if done.returncode:
        sys.exit(f"continual_train failed (exit {done.returncode}); the traceback is in {snakemake.log[0]}")
