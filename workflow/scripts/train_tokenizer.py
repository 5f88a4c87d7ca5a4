"""Train the tiny model's byte-level BPE tokenizer on the pretraining corpus."""

from kentropy.core.io import table_reader
from kentropy.core.logs import log_to
from kentropy.training.pretrain import train_tokenizer

read_input = table_reader(snakemake.params.producers)  # an unreadable input names its rule

with log_to(snakemake.log[0]):
    texts = read_input(snakemake.input[0])["text"].tolist()
    train_tokenizer(texts, snakemake.params.vocab_size, snakemake.output[0])
