"""Build the entropy corpus Parquet from the configured source."""

from kentropy.corpora import build_corpus
from kentropy.io import write_table
from kentropy.logs import log_to

with log_to(snakemake.log[0]) as log:
    corpus = build_corpus(snakemake.params.spec, snakemake.input.get("generated"))
    write_table(corpus, snakemake.output[0])
    log.info("%d documents -> %s", len(corpus), snakemake.output[0])
