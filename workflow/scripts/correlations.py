"""Every registered metric marked ``correlate`` (kentropy.meters: knowledge entropy, its ReLU variant, the
sparsity of memory use) vs acquisition, forgetting and the forgetting-curve exponent across steps ->
results/tables/correlations.parquet."""

from kentropy.io import table_reader, write_table
from kentropy.logs import log_to
from kentropy.meters import correlated
from kentropy.metrics import CORRELATION_MISSING, correlations, reported

read_input = table_reader(snakemake.params.producers)  # an unreadable input names its rule

with log_to(snakemake.log[0]) as log:
    table = correlations(
        read_input(snakemake.input.entropy),
        reported(read_input(snakemake.input.continual), snakemake.params.score),
        x_metrics=correlated(),
        seed=snakemake.params.seed,
        fits=reported(read_input(snakemake.input.fits), snakemake.params.score),
    )
    write_table(table, snakemake.output[0], missing=CORRELATION_MISSING)
    log.info("\n%s", table.to_string())
