"""Knowledge entropy vs acquisition, forgetting and the forgetting-curve exponent across steps ->
results/tables/correlations.parquet."""

import pandas as pd

from kentropy.io import write_table
from kentropy.logs import log_to
from kentropy.metrics import correlations, reported

with log_to(snakemake.log[0]) as log:
    table = correlations(
        pd.read_parquet(snakemake.input.entropy),
        reported(pd.read_parquet(snakemake.input.continual), snakemake.params.score),
        x_metrics=("knowledge_entropy", "knowledge_entropy_relu"),
        seed=snakemake.params.seed,
        fits=reported(pd.read_parquet(snakemake.input.fits), snakemake.params.score),
    )
    write_table(table, snakemake.output[0])
    log.info("\n%s", table.to_string())
