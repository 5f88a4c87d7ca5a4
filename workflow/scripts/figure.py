"""Draw one figure of kentropy.figure_registry from its aggregated table."""

import pandas as pd

from kentropy import figures
from kentropy.figure_registry import FIGURES
from kentropy.logs import log_to
from kentropy.metrics import reported

spec = FIGURES[snakemake.wildcards.name]
with log_to(snakemake.log[0]):
    table = pd.read_parquet(snakemake.input[0])
    if spec.scored:
        table = reported(table, snakemake.params.score)
    figures.save(getattr(figures, spec.draw)(table, **snakemake.params.options), list(snakemake.output))
