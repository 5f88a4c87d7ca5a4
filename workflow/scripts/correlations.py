"""Knowledge entropy vs acquisition and forgetting across steps -> results/tables/correlations.parquet."""

import pandas as pd

from kentropy.io import atomic_file
from kentropy.logs import log_to
from kentropy.metrics import correlations, reported

with log_to(snakemake.log[0]) as log:
    table = correlations(
        pd.read_parquet(snakemake.input.entropy),
        reported(pd.read_parquet(snakemake.input.continual), snakemake.params.score),
        x_metrics=("knowledge_entropy", "knowledge_entropy_relu"),
        seed=snakemake.params.seed,
    )
    with atomic_file(snakemake.output[0]) as tmp:
        table.to_parquet(tmp, index=False)
    log.info("\n%s", table.to_string())
