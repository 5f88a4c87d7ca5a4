"""Score the probes of the injected knowledge and the downstream benchmarks on one checkpoint before
training (kentropy.evaluation.model_state; a training job evaluates the model it trained itself)."""

import os

from kentropy.core.environment import hf_env

os.environ.update(hf_env(snakemake.config["hf_cache"]))  # before any HF import: the prefetched cache only

from kentropy.core.logs import log_to  # noqa: E402
from kentropy.evaluation.model_state import Evaluation, evaluate_state  # noqa: E402

with log_to(snakemake.log[0]):
    evaluate_state(snakemake.input.model, Evaluation.from_job(snakemake, "before"), threads=snakemake.threads)
