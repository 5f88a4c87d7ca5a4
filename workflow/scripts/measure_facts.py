"""Closed-book QA of every fact (kentropy.measurement.qa) and parameter specialization
(kentropy.measurement.specialization) of one checkpoint, the model loaded once."""

from kentropy.pipeline.compute_job import snakemake

import torch
from transformers import AutoTokenizer

from kentropy.core.io import write_table
from kentropy.core.layout import model_keys, with_keys
from kentropy.core.logs import Phases, log_to
from kentropy.core.plan import FactsSpec, Speed
from kentropy.measurement.qa import answer_questions, count_parameters
from kentropy.measurement.specialization import CONCEPT_MISSING, specialization
from kentropy.sources.architectures import load_causal_lm
from kentropy.sources.facts_file import load_facts

spec = FactsSpec.from_dict(snakemake.params.facts)
with log_to(snakemake.log[0]) as log:
    phases = Phases()
    torch.set_num_threads(snakemake.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_causal_lm(snakemake.input.checkpoint).to(device)
    tokenizer = AutoTokenizer.from_pretrained(snakemake.input.checkpoint)
    facts = load_facts(snakemake.input.facts)
    batch_size = Speed.from_config(snakemake.config).facts_batch_size  # speed only: not a param
    keys = {**model_keys(snakemake.wildcards.model, snakemake.config["seed"]), "step": snakemake.wildcards.step}
    phases.lap("load")
    answers = answer_questions(model, tokenizer, facts, spec.max_new_tokens, batch_size)
    write_table(with_keys(answers, **keys).assign(parameters=count_parameters(model)), snakemake.output.answers)
    phases.lap("qa")
    concepts = specialization(model, tokenizer, facts, list(spec.k), spec.concepts, spec.control, batch_size, spec.seed)
    write_table(with_keys(concepts, **keys), snakemake.output.specialization, missing=CONCEPT_MISSING)
    phases.lap("specialization")
    log.info(
        "%d questions, %.1f%% correct; %d concept x k rows", len(answers), 100 * answers.correct.mean(), len(concepts)
    )
    log.info("time: %s", phases)
