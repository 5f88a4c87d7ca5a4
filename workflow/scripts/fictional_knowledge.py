"""Fictional-knowledge records of one split: the generated ones, or the published file (sha256 pinned)."""

import shutil

from kentropy.core.io import atomic_file
from kentropy.core.logs import log_to
from kentropy.sources.fictional_knowledge import fetch_file, load_records

spec = snakemake.params.spec
split = snakemake.wildcards.split
with log_to(snakemake.log[0]) as log:
    if spec["source"] == "generated":
        with atomic_file(snakemake.output[0]) as tmp:
            shutil.copyfile(snakemake.input.generated, tmp)
    else:
        fetch_file(spec[split]["url"], spec[split]["sha256"], snakemake.output[0])
    log.info("%d records in the %s split", len(load_records(snakemake.output[0])), split)
