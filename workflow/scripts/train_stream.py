"""The run's training stream: corpus blocks in seeded order with fictional knowledge injected
(kentropy.training.streams)."""

from kentropy.pipeline.compute_job import snakemake

import numpy as np
from transformers import AutoTokenizer

from kentropy.core.io import atomic_file, reading, write_table
from kentropy.core.logs import log_to
from kentropy.sources.fictional_knowledge import load_records
from kentropy.training.streams import injection_schedule, write_stream

run = snakemake.params.run  # kentropy.core.plan.Run.stream_param()
with log_to(snakemake.log[0]) as log:
    tokenizer = AutoTokenizer.from_pretrained(snakemake.input.tokenizer)
    with reading(snakemake.input.blocks, snakemake.params.producers):
        blocks = np.load(snakemake.input.blocks)[: run["blocks"]]
    injections = injection_schedule(
        load_records(snakemake.input.paraphrase, n_paraphrases=run["n_injections"] - 1),
        load_records(snakemake.input.once),
        run["inject_interval"],
        run["n_injections"],
        run["batch_size"],
        run["total_steps"],
    )
    with atomic_file(snakemake.output.tokens) as tmp:
        manifest = write_stream(blocks, injections, tokenizer, run["batch_size"], run["total_steps"], run["seed"], tmp)
    write_table(manifest, snakemake.output.manifest)
    log.info(
        "%d steps x %d rows; %d injected paragraphs, %.0f%% of them cut to seq_len",
        run["total_steps"],
        run["batch_size"],
        len(manifest),
        100 * (manifest.n_tokens >= blocks.shape[1]).mean(),
    )
