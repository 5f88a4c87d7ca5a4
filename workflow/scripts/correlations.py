"""Every registered metric marked ``correlate`` (kentropy.meters: knowledge entropy, its ReLU variant, the
sparsity of memory use) vs acquisition, forgetting and the forgetting-curve exponent across steps, per
pretraining trajectory -> results/tables/correlations_by_trajectory.parquet, and summarised over the
trajectories -> results/tables/correlations.parquet."""

from kentropy.io import table_reader, write_table
from kentropy.logs import log_to
from kentropy.meters import correlated
from kentropy.metrics import CORRELATION_MISSING, across_trajectories, correlations, reported

read_input = table_reader(snakemake.params.producers)  # an unreadable input names its rule

with log_to(snakemake.log[0]) as log:
    per_trajectory = correlations(
        read_input(snakemake.input.entropy),
        reported(read_input(snakemake.input.continual), snakemake.params.score),
        x_metrics=correlated(),
        seed=snakemake.params.seed,
        fits=reported(read_input(snakemake.input.fits), snakemake.params.score),
    )
    write_table(per_trajectory, snakemake.output.per_trajectory, missing=CORRELATION_MISSING)
    summary = across_trajectories(per_trajectory)
    write_table(summary, snakemake.output.summary, missing=CORRELATION_MISSING)
    log.info("\n%s", summary.to_string())
