"""Draw one figure of kentropy.report.figure_registry from its aggregated tables."""

from kentropy.analysis.outcomes import reported
from kentropy.core.io import table_reader
from kentropy.core.logs import log_to
from kentropy.report import figures
from kentropy.report.figure_registry import FIGURES, SCORED_TABLES

read_input = table_reader(snakemake.params.producers)  # an unreadable input names its rule

spec = FIGURES[snakemake.wildcards.name]
with log_to(snakemake.log[0]):
    tables = []
    for name, path in zip(spec.tables, snakemake.input):
        table = read_input(path)
        tables.append(reported(table, snakemake.params.score) if name in SCORED_TABLES else table)
    figures.save(getattr(figures, spec.draw)(*tables, **snakemake.params.options), list(snakemake.output))
