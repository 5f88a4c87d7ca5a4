"""The run's training stream: corpus blocks in seeded order with fictional knowledge injected (kentropy.streams)."""

import os

from kentropy.offline import hf_env

os.environ.update(hf_env())  # before any HF import: compute nodes read the prefetched cache only

import numpy as np  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from kentropy.config import inject_interval  # noqa: E402
from kentropy.io import atomic_file  # noqa: E402
from kentropy.knowledge import load_records  # noqa: E402
from kentropy.logs import log_to  # noqa: E402
from kentropy.streams import injection_schedule, write_stream  # noqa: E402

run = snakemake.params.run
n_injections = snakemake.params.n_injections
with log_to(snakemake.log[0]) as log:
    tokenizer = AutoTokenizer.from_pretrained(snakemake.input.tokenizer)
    blocks = np.load(snakemake.input.blocks)[: run["batch_size"] * run["steps_per_epoch"]]
    total_steps = run["epochs"] * run["steps_per_epoch"]
    injections = injection_schedule(
        load_records(snakemake.input.paraphrase, n_paraphrases=n_injections - 1),
        load_records(snakemake.input.once),
        inject_interval(run, n_injections),
        n_injections,
        run["batch_size"],
        total_steps,
    )
    with atomic_file(snakemake.output.tokens) as tmp:
        manifest = write_stream(
            blocks, injections, tokenizer, run["batch_size"], total_steps, snakemake.params.seed, tmp
        )
    with atomic_file(snakemake.output.manifest) as tmp:
        manifest.to_parquet(tmp, index=False)
    log.info(
        "%d steps x %d rows; %d injected paragraphs, %.0f%% of them cut to seq_len",
        total_steps,
        run["batch_size"],
        len(manifest),
        100 * (manifest.n_tokens >= blocks.shape[1]).mean(),
    )
