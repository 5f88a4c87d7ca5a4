"""Concatenate the per-checkpoint entropy tables into results/tables/entropy.parquet."""
import pandas as pd

from kentropy.io import atomic_file
from kentropy.logs import log_to

with log_to(snakemake.log[0]):
    table = pd.concat([pd.read_parquet(p) for p in snakemake.input], ignore_index=True)
    with atomic_file(snakemake.output[0]) as tmp:
        table.to_parquet(tmp, index=False)
