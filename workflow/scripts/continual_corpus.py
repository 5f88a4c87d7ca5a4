"""Pack a continual-training corpus into seq_len blocks with the model's tokenizer (as many as the runs need)."""

import numpy as np
from transformers import AutoTokenizer

from kentropy.core.io import atomic_file, table_reader
from kentropy.core.logs import log_to
from kentropy.sources.corpora import pack_blocks, stream_hf_texts

read_input = table_reader(snakemake.params.producers)  # an unreadable input names its rule

spec = snakemake.params.spec
with log_to(snakemake.log[0]) as log:
    tokenizer = AutoTokenizer.from_pretrained(snakemake.input.tokenizer)
    if spec["source"] == "generated":
        texts = read_input(snakemake.input.generated)["text"]
    else:
        texts = stream_hf_texts(spec["dataset"], spec["split"], spec["text_field"], spec.get("config"))
    blocks = pack_blocks(
        texts,
        tokenizer,
        snakemake.params.seq_len,
        n_blocks=snakemake.params.n_blocks,  # the most blocks one epoch of a run on this corpus reads
        key=f"continual.corpora.{snakemake.wildcards.corpus}",
    )
    with atomic_file(snakemake.output[0]) as tmp:
        np.save(tmp, blocks.astype(np.int32))
    log.info("%d blocks of %d tokens from %s", *blocks.shape, snakemake.wildcards.corpus)
