"""Our numbers beside the paper's, per cell -> results/tables/paper_comparison.{parquet,md} (kentropy.paper)."""

import pandas as pd

from kentropy.io import atomic_file, write_table
from kentropy.logs import log_to
from kentropy.metrics import reported
from kentropy.paper import comparison

with log_to(snakemake.log[0]) as log:
    table = comparison(
        reported(pd.read_parquet(snakemake.input.continual), snakemake.params.score),
        pd.read_parquet(snakemake.input.correlations),
        snakemake.params.paper,
    )
    write_table(table, snakemake.output.parquet)
    with atomic_file(snakemake.output.markdown) as tmp:
        tmp.write_text(table.to_markdown(index=False, floatfmt=".4g") + "\n")
    log.info("%d published numbers, %d computed here", len(table), table.ours.notna().sum())
