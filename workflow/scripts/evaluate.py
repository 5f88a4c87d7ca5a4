"""Score the probes of the injected knowledge and the downstream benchmarks on one checkpoint before
training (kentropy.evaluation.model_state; a training job evaluates the model it trained itself)."""

from kentropy.pipeline.compute_job import snakemake

from kentropy.core.logs import log_to
from kentropy.evaluation.model_state import Evaluation, evaluate_state

with log_to(snakemake.log[0]):
    evaluate_state(snakemake.input.model, Evaluation.from_job(snakemake, "before"), threads=snakemake.threads)
