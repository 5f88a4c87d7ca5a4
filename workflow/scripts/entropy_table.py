"""Concatenate the per-checkpoint entropy tables into results/tables/entropy.parquet; a Hub checkpoint whose
weights are byte-identical to an earlier step's is marked (``duplicate_of``: that step)."""

import pandas as pd

from kentropy.core.io import table_reader, write_table
from kentropy.core.logs import log_to
from kentropy.sources.manifests import duplicate_steps

read_input = table_reader(snakemake.params.producers)  # an unreadable input names its rule

with log_to(snakemake.log[0]) as log:
    table = pd.concat([read_input(p) for p in snakemake.input], ignore_index=True)
    duplicates = {}
    for model, files in snakemake.params.sources.items():
        for step, same in duplicate_steps(files).items():
            duplicates[(model, step)] = same
            log.warning("%s: step %d has the same weights as step %d", model, step, same)
    table["duplicate_of"] = pd.array([duplicates.get((m, s)) for m, s in zip(table.model, table.step)], dtype="Int64")
    write_table(table, snakemake.output[0])
