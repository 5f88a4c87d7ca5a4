"""QA per fact and checkpoint, SMI's fits and bins, and parameter specialization per concept and checkpoint
(kentropy.analysis.fact_tables) -> results/tables/{qa,smi,smi_bins,specialization,specialization_concepts}.parquet."""

import pandas as pd

from kentropy.analysis import smi
from kentropy.analysis.fact_tables import (
    CHECKPOINT_KEYS,
    SPECIALIZATION_SUMMARY_MISSING,
    qa_table,
    smi_tables,
    specialization_summary,
)
from kentropy.core.io import table_reader, write_table
from kentropy.core.logs import log_to
from kentropy.measurement import specialization
from kentropy.sources.facts_file import load_facts

read_input = table_reader(snakemake.params.producers)  # an unreadable input names its rule

with log_to(snakemake.log[0]) as log:
    answers = pd.concat([read_input(path) for path in snakemake.input.answers], ignore_index=True)
    qa = qa_table(answers)
    write_table(qa, snakemake.output.qa)
    fits, bins = smi_tables(qa, load_facts(snakemake.input.facts))
    write_table(fits, snakemake.output.smi, missing=smi.FIT_MISSING)
    write_table(bins, snakemake.output.smi_bins)
    concepts = pd.concat([read_input(path) for path in snakemake.input.specialization], ignore_index=True)
    peaks = specialization.peaks(concepts, CHECKPOINT_KEYS)
    write_table(peaks, snakemake.output.concepts, missing=specialization.CONCEPT_MISSING)
    summary = specialization_summary(peaks, CHECKPOINT_KEYS)
    write_table(summary, snakemake.output.specialization, missing=SPECIALIZATION_SUMMARY_MISSING)
    log.info("\n%s\n%s", fits[fits.counts == "exact"].to_string(), summary.to_string())
