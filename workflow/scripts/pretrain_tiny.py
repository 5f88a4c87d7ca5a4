"""Train one segment of the tiny trajectory: previous configured step -> this step."""

from kentropy.pipeline.compute_job import snakemake

import torch

from kentropy.core.io import write_table
from kentropy.core.logs import log_to
from kentropy.core.plan import Pretraining
from kentropy.training.pretrain import train_segment

with log_to(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    cfg = Pretraining.from_dict(snakemake.params.pretraining)
    start = snakemake.input.get("start")
    start_step = snakemake.params.start_step
    losses = train_segment(
        cfg,
        snakemake.input.corpus,
        snakemake.input.tokenizer,
        start,
        start_step,
        int(snakemake.wildcards.step),
        snakemake.output.checkpoint,
    )
    write_table(losses, snakemake.output.loss)
    if len(losses):
        log.info("steps %d-%d, final loss %.4f", start_step + 1, losses.step.iloc[-1], losses.loss.iloc[-1])
