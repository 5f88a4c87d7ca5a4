"""Build the entropy corpus Parquet from the configured source."""

from kentropy.core.io import write_table
from kentropy.core.logs import log_to
from kentropy.sources.corpora import build_corpus

with log_to(snakemake.log[0]) as log:
    corpus = build_corpus(snakemake.params.spec, snakemake.input.get("generated"))
    write_table(corpus, snakemake.output[0])
    log.info("%d documents -> %s", len(corpus), snakemake.output[0])
