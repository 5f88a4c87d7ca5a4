"""Write the resuscitated copy of one checkpoint (kentropy.training.resuscitation, Algorithm 1)."""

import os

from kentropy.core.environment import hf_env

os.environ.update(hf_env())  # before any HF import: compute nodes read the prefetched cache only

from kentropy.core.layout import Variant  # noqa: E402
from kentropy.core.logs import log_to  # noqa: E402
from kentropy.training.resuscitation import resuscitate_checkpoint  # noqa: E402

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
