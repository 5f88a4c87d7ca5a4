"""Write the resuscitated copy of one checkpoint (kentropy.training.resuscitation, Algorithm 1)."""

from kentropy.pipeline.compute_job import snakemake

from kentropy.core.layout import Variant
from kentropy.core.logs import log_to
from kentropy.training.resuscitation import resuscitate_checkpoint

variant = Variant.parse(snakemake.wildcards.variant)
with log_to(snakemake.log[0]) as log:
    record = resuscitate_checkpoint(
        snakemake.input.checkpoint,
        snakemake.input.coef,
        variant.p,
        variant.q,
        snakemake.output[0],
        producers=snakemake.params.producers,
    )
    log.info(
        "%s: %s neurons amplified per layer, mean factor %s",
        variant.name,
        record["selected_per_layer"],
        [round(f, 3) for f in record["mean_factor_of_selected"]],
    )
