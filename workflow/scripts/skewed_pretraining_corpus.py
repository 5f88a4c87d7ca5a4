"""The world's pretraining corpus at a model's own data skew (kentropy.sources.world.skewed_pretraining_corpus)."""

from kentropy.core.logs import log_to
from kentropy.sources.world import skewed_pretraining_corpus

with log_to(snakemake.log[0]) as log:
    skew = {"person_zipf": float(snakemake.wildcards.person), "object_zipf": float(snakemake.wildcards.object)}
    skewed_pretraining_corpus(snakemake.output[0], **snakemake.params.world, **skew)
    log.info("person_zipf %s, object_zipf %s: %s", skew["person_zipf"], skew["object_zipf"], snakemake.output[0])
