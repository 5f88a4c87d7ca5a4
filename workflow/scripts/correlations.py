"""Every registered metric marked ``correlate`` (kentropy.measurement.meters: knowledge entropy, its ReLU variant, the
sparsity of memory use) vs acquisition, forgetting and the forgetting-curve exponent, and with a `facts`
section vs QA accuracy, SMI's R² and upper bound and PSS (run ``pretraining``), across steps, per
pretraining trajectory -> results/tables/correlations_by_trajectory.parquet, and summarised over the
trajectories -> results/tables/correlations.parquet."""

from kentropy.analysis.fact_tables import checkpoint_outcomes
from kentropy.analysis.outcomes import CORRELATION_MISSING, across_trajectories, correlations, reported
from kentropy.core.io import table_reader, write_table
from kentropy.core.logs import log_to
from kentropy.measurement.meters import correlated

read_input = table_reader(snakemake.params.producers)  # an unreadable input names its rule

with log_to(snakemake.log[0]) as log:
    inputs = snakemake.input
    checkpoints = None
    if "qa" in inputs.keys():  # the `facts` section: QA, SMI and PSS of every checkpoint
        tables = [read_input(inputs[name]) for name in ("qa", "smi", "specialization")]
        checkpoints = checkpoint_outcomes(*tables, size=snakemake.params.size, seed=snakemake.params.seed)
    per_trajectory = correlations(
        read_input(snakemake.input.entropy),
        reported(read_input(snakemake.input.continual), snakemake.params.score),
        x_metrics=correlated(),
        seed=snakemake.params.seed,
        fits=reported(read_input(snakemake.input.fits), snakemake.params.score),
        checkpoints=checkpoints,
    )
    write_table(per_trajectory, snakemake.output.per_trajectory, missing=CORRELATION_MISSING)
    summary = across_trajectories(per_trajectory)
    write_table(summary, snakemake.output.summary, missing=CORRELATION_MISSING)
    log.info("\n%s", summary.to_string())
