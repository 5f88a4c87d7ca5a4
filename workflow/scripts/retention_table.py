"""Retention curves of the baseline run from every checkpoint, with their key columns, in one table
(``train_step``: the continual-training step at which the probes were scored)."""

import pandas as pd

from kentropy.io import write_table
from kentropy.layout import with_keys
from kentropy.logs import log_to

with log_to(snakemake.log[0]):
    table = pd.concat(
        [
            with_keys(pd.read_parquet(path).rename(columns={"step": "train_step"}), **keys)
            for path, keys in zip(snakemake.input, snakemake.params.table_keys)
        ],
        ignore_index=True,
    )
    write_table(table, snakemake.output[0])
