"""Every fact's exposures in the data order of each pretraining trajectory, at each checkpoint
(kentropy.measurement.exposure)."""

from kentropy.pipeline.compute_job import snakemake

import pandas as pd
from transformers import AutoTokenizer

from kentropy.core.io import table_reader, write_table
from kentropy.core.layout import model_keys, with_keys
from kentropy.core.logs import log_to
from kentropy.measurement.exposure import EXPOSURE_MISSING, fact_exposure, statement_positions
from kentropy.sources.corpora import pack_blocks
from kentropy.sources.facts_file import load_facts

read_input = table_reader(snakemake.params.producers)  # an unreadable input names its rule

with log_to(snakemake.log[0]) as log:
    tokenizer = AutoTokenizer.from_pretrained(snakemake.input.tokenizer)
    texts = read_input(snakemake.input.corpus).text.tolist()
    statements = read_input(snakemake.input.statements)
    facts = load_facts(snakemake.input.facts)
    pretrain = snakemake.params.pretrain
    n_blocks = len(pack_blocks(texts, tokenizer, pretrain["seq_len"]))  # as the pretraining job packs them
    positions = statement_positions(texts, statements, tokenizer)
    tables = []
    for name, trajectory in snakemake.params.trajectories.items():
        table = fact_exposure(facts, statements, positions, n_blocks, pretrain["seq_len"], pretrain["batch_size"],
                              trajectory["seed"], trajectory["steps"])  # fmt: skip
        tables.append(with_keys(table, **model_keys(name, snakemake.config["seed"])))
    table = pd.concat(tables, ignore_index=True)
    write_table(table, snakemake.output[0], missing=EXPOSURE_MISSING)
    log.info("%d statements in %d blocks; %d rows", len(statements), n_blocks, len(table))
