"""The world's pretraining corpus at a model's own data skew (kentropy.sources.world.skewed_pretraining_corpus)."""

from kentropy.core.logs import log_to
from kentropy.sources.world import skewed_pretraining_corpus

with log_to(snakemake.log[0]) as log:
    keys = ("seed", "n_people", "n_documents", "n_paraphrase", "n_once", "fact_probability")
    world = {
        **{k: snakemake.params.world[k] for k in keys},
        "person_zipf": float(snakemake.wildcards.person),
        "object_zipf": float(snakemake.wildcards.object),
    }
    skewed_pretraining_corpus(snakemake.output[0], **world)
    log.info("person_zipf %s, object_zipf %s: %s", world["person_zipf"], world["object_zipf"], snakemake.output[0])
