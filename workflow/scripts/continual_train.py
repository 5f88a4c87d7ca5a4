"""Train one checkpoint on one run's stream with DeepSpeed, then evaluate the trained model (the evaluate rule's
code) in the same job (kentropy.pipeline.continual_job). One process (CPU or one GPU): the job runs in this
interpreter, its typed settings handed over as they are, so the libraries are imported once (and a warm-started
job, kentropy.pipeline.warm, imports nothing). Several processes run ``kentropy train --job JSON`` each: one per
GPU on one node (``torch.distributed.run``), or one Slurm task per process across the nodes of
``models.<m>.train_nodes`` (``srun``, kentropy.pipeline.launch), each taking its rank from Slurm. The
interpreter, placement, threads, probe and benchmark batch sizes, ``continual.compile``, activation
checkpointing and the live logs (``monitor``) are not params: they change speed, memory or rounding, not the
result, so changing them reruns nothing."""

from kentropy.pipeline.compute_job import snakemake

import shlex
import subprocess
import sys
from pathlib import Path

from kentropy.cli.train import program
from kentropy.core.layout import Layout, parse_trajectory_name
from kentropy.core.logs import log_to
from kentropy.core.plan import Run, Speed, training_placement
from kentropy.evaluation.model_state import Evaluation
from kentropy.pipeline.continual_job import TrainingJob, run_job
from kentropy.pipeline.launch import failed_tasks, launch_command, srun_command
from kentropy.training.monitor import Monitor

out, wc = snakemake.output, snakemake.wildcards
gpus = int(snakemake.resources.get("gpu", 0))
model, _ = parse_trajectory_name(wc.model, snakemake.config["seed"])
job = TrainingJob(
    model=snakemake.input.checkpoint,
    stream=snakemake.input.stream,
    run=Run.from_dict(snakemake.params.run),
    out=out.model,
    loss=out.loss,
    work_dir=snakemake.params.work,
    retention=out.retention,
    evaluation=Evaluation.from_job(snakemake, wc.run),
    threads=snakemake.threads,
    compile=Speed.from_config(snakemake.config).compile,
    checkpointing=snakemake.config["models"][model]["activation_checkpointing"],
    # Live logs: read from the config, not a param (they change no result).
    monitor=Monitor.from_config(
        snakemake.config,
        Layout(snakemake.config["experiment"]).monitor(),
        f"{wc.model}/step{wc.step}/{wc.variant}/{wc.run}",
    ),  # fmt: skip
)
placement = training_placement(snakemake.config, model)  # where it runs: speed (and rounding), not a result
if placement.nodes > 1:  # an MPI-style job: this command runs once in the allocation, srun starts the tasks
    launch = [*srun_command(placement, program()), "--job", job.to_json()]
elif gpus > 1:
    launch = [*launch_command(gpus, program()), "--job", job.to_json()]
else:
    launch = None
if launch is None:
    with log_to(snakemake.log[0]) as log:
        log.info("continual training %s/step%s/%s/%s", wc.model, wc.step, wc.variant, wc.run)
        run_job(job)
else:
    with open(snakemake.log[0], "w") as log:
        log.write(shlex.join(launch) + "\n")
        log.flush()
        done = subprocess.run(launch, stdout=log, stderr=subprocess.STDOUT, check=False)
    if done.returncode:  # the task that failed first, with its node, where srun names it
        failed = failed_tasks(Path(snakemake.log[0]).read_text(errors="replace"))
        tasks = f": {'; '.join(failed)}" if failed else ""
        sys.exit(f"continual_train failed (exit {done.returncode}){tasks}; the traceback is in {snakemake.log[0]}")
