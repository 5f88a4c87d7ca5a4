"""Closed-book QA of every fact (kentropy.measurement.qa) and parameter specialization
(kentropy.measurement.specialization) of one checkpoint, the model loaded once."""

import os

from kentropy.core.environment import FIXED_THREADS, hf_env

# Before any HF or torch import: compute nodes read the prefetched cache only; fixed thread counts.
os.environ.update({**hf_env(snakemake.config["hf_cache"]), **FIXED_THREADS})

import torch  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from kentropy.core.io import write_table  # noqa: E402
from kentropy.core.layout import model_keys, with_keys  # noqa: E402
from kentropy.core.logs import log_to  # noqa: E402
from kentropy.core.plan import FactsSpec, Speed  # noqa: E402
from kentropy.measurement.qa import answer_questions, count_parameters  # noqa: E402
from kentropy.measurement.specialization import CONCEPT_MISSING, specialization  # noqa: E402
from kentropy.sources.architectures import load_causal_lm  # noqa: E402
from kentropy.sources.facts_file import load_facts  # noqa: E402

spec = FactsSpec.from_dict(snakemake.params.facts)
with log_to(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_causal_lm(snakemake.input.checkpoint).to(device)
    tokenizer = AutoTokenizer.from_pretrained(snakemake.input.checkpoint)
    facts = load_facts(snakemake.input.facts)
    batch_size = Speed.from_config(snakemake.config).facts_batch_size  # speed only: not a param
    keys = {**model_keys(snakemake.wildcards.model, snakemake.config["seed"]), "step": snakemake.wildcards.step}
    answers = answer_questions(model, tokenizer, facts, spec.max_new_tokens, batch_size)
    write_table(with_keys(answers, **keys).assign(parameters=count_parameters(model)), snakemake.output.answers)
    concepts = specialization(model, tokenizer, facts, list(spec.k), spec.concepts, spec.control, batch_size, spec.seed)
    write_table(with_keys(concepts, **keys), snakemake.output.specialization, missing=CONCEPT_MISSING)
    log.info(
        "%d questions, %.1f%% correct; %d concept x k rows", len(answers), 100 * answers.correct.mean(), len(concepts)
    )
