"""Each evaluation document's |coefficient| sums at every configured step of one trajectory: the input of the
lab's bootstrap over documents (kentropy.analysis.lab_design, docs/lab.md)."""

import os

from kentropy.core.environment import FIXED_THREADS, hf_env

# Before any HF or torch import: compute nodes read the prefetched cache only; no library picks its own
# thread count.
os.environ.update({**hf_env(), **FIXED_THREADS})

import numpy as np  # noqa: E402
import torch  # noqa: E402

from kentropy.core.io import atomic_file, table_reader  # noqa: E402
from kentropy.core.logs import log_to  # noqa: E402
from kentropy.core.plan import EntropySpec  # noqa: E402
from kentropy.measurement.entropy_pass import checkpoint_document_sums  # noqa: E402

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
