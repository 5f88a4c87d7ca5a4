"""Measure every entropy of one checkpoint on the entropy corpus (see kentropy.measurement.entropy_pass)."""

from kentropy.pipeline.compute_job import snakemake

import numpy as np
import torch

from kentropy.core.io import atomic_file, table_reader, write_table
from kentropy.core.layout import model_keys, with_keys
from kentropy.core.logs import log_to
from kentropy.core.plan import EntropySpec, Speed
from kentropy.measurement.entropy_pass import measure_checkpoint
from kentropy.measurement.meters import KNOWLEDGE_ENTROPY

read_input = table_reader(snakemake.params.producers)  # an unreadable input names its rule

spec = EntropySpec.from_dict(snakemake.params.entropy)
with log_to(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    batch_size = Speed.from_config(snakemake.config).entropy_batch_size  # speed only: not a param
    meter = measure_checkpoint(snakemake.input.checkpoint, read_input(snakemake.input.corpus), spec, batch_size)
    wc = snakemake.wildcards
    keys = model_keys(wc.model, snakemake.config["seed"])  # the model and its trajectory
    table = with_keys(meter.table(), **keys, step=wc.step, variant=wc.variant)
    table["corpus"] = spec.corpus
    write_table(table, snakemake.output.table)
    with atomic_file(snakemake.output.coef) as tmp:
        np.save(tmp, meter.mean_abs_coefficients())
    log.info(
        "%d tokens; knowledge entropy %.4f",
        meter.n_tokens,
        table[(table.metric == KNOWLEDGE_ENTROPY) & table.layer.isna()].value.iloc[0],
    )
