"""Retention curves of the baseline run from every checkpoint (kentropy.figures.retention)."""

import pandas as pd

from kentropy.figures import retention, save
from kentropy.logs import log_to
from kentropy.metrics import reported

with log_to(snakemake.log[0]):
    parts = [
        pd.read_parquet(path).assign(model=model, checkpoint=step)
        for path, (model, step) in zip(snakemake.input, snakemake.params.checkpoints)
    ]
    save(retention(reported(pd.concat(parts, ignore_index=True), snakemake.params.score)), list(snakemake.output))
