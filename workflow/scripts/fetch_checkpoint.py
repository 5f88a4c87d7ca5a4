"""Fetch one Hub checkpoint by step (branch resolved here, not at DAG build, unless the step is pinned to a
revision) into save_pretrained format."""

from kentropy.core.logs import log_to
from kentropy.sources.hub import fetch_checkpoint

spec = snakemake.params.spec
with log_to(snakemake.log[0]):
    fetch_checkpoint(
        spec["repo_id"],
        int(snakemake.wildcards.step),
        snakemake.output[0],
        cache_dir=snakemake.config["hf_cache"],
        layout=spec["layout"],
        pattern=spec["revision_regex"],
        revision=snakemake.params.revision,
    )
