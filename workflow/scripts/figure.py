"""Draw one figure of kentropy.figure_registry from its aggregated tables."""

import pandas as pd

from kentropy import figures
from kentropy.figure_registry import FIGURES, SCORED_TABLES
from kentropy.logs import log_to
from kentropy.metrics import reported

spec = FIGURES[snakemake.wildcards.name]
with log_to(snakemake.log[0]):
    tables = []
    for name, path in zip(spec.tables, snakemake.input):
        table = pd.read_parquet(path)
        tables.append(reported(table, snakemake.params.score) if name in SCORED_TABLES else table)
    figures.save(getattr(figures, spec.draw)(*tables, **snakemake.params.options), list(snakemake.output))
