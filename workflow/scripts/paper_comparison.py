"""Our numbers beside the paper's, per cell -> results/tables/paper_comparison.{parquet,md}
(kentropy.analysis.paper)."""

from kentropy.analysis.outcomes import reported
from kentropy.analysis.paper import COMPARISON_MISSING, comparison
from kentropy.core.io import atomic_file, table_reader, write_table
from kentropy.core.logs import log_to

read_input = table_reader(snakemake.params.producers)  # an unreadable input names its rule

with log_to(snakemake.log[0]) as log:
    table = comparison(
        reported(read_input(snakemake.input.continual), snakemake.params.score),
        read_input(snakemake.input.correlations),
        snakemake.params.paper,
    )
    write_table(table, snakemake.output.parquet, missing=COMPARISON_MISSING)
    with atomic_file(snakemake.output.markdown) as tmp:
        tmp.write_text(table.to_markdown(index=False, floatfmt=".4g") + "\n")
    log.info("%d published numbers, %d computed here", len(table), table.ours.notna().sum())
