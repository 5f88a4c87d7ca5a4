"""Each evaluation document's |coefficient| sums at every configured step of one trajectory: the input of the
lab's bootstrap over documents (kentropy.analysis.lab_design, docs/lab.md)."""

from kentropy.pipeline.compute_job import snakemake

import numpy as np
import torch

from kentropy.core.io import atomic_file, table_reader
from kentropy.core.logs import log_to
from kentropy.core.plan import EntropySpec
from kentropy.measurement.entropy_pass import checkpoint_document_sums

read_input = table_reader(snakemake.params.producers)  # an unreadable input names its rule

spec = EntropySpec.from_dict(snakemake.params.entropy)
with log_to(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    corpus = read_input(snakemake.input.corpus)
    sums = []
    for step, checkpoint in zip(snakemake.params.steps, snakemake.input.checkpoints, strict=True):
        sums.append(checkpoint_document_sums(checkpoint, corpus, spec))
        log.info("step %d: %d documents", step, len(sums[-1]))
    with atomic_file(snakemake.output[0]) as tmp:
        np.save(tmp, np.stack(sums))
