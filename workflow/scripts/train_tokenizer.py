"""Train the tiny model's byte-level BPE tokenizer on the pretraining corpus."""

import pandas as pd

from kentropy.logs import log_to
from kentropy.pretrain import train_tokenizer

with log_to(snakemake.log[0]):
    texts = pd.read_parquet(snakemake.input[0])["text"].tolist()
    train_tokenizer(texts, snakemake.params.vocab_size, snakemake.output[0])
