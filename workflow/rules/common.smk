# Config validation, wildcard constraints and input functions shared by the rules.
import re
from pathlib import Path

from kentropy.config import ConfigError, validate_config

try:
    validate_config(config, workflow.source_path("../../config/schema.yaml"))
except ConfigError as err:
    raise WorkflowError(str(err)) from None

MODELS = config["models"]


def models_with_source(source):
    """Regex alternation of the model names with ``source`` (matches nothing when there are none)."""
    names = [re.escape(m) for m, spec in MODELS.items() if spec["source"] == source]
    return "|".join(names) if names else "(?!)"


def model_steps():
    """(model, step) pairs of every configured checkpoint."""
    return [(m, s) for m, spec in MODELS.items() for s in sorted(spec["steps"])]


def checkpoint_dir(wildcards):
    """The save_pretrained folder of a checkpoint; local models point at the user's own folders."""
    spec = MODELS[wildcards.model]
    if spec["source"] == "local":
        return spec["path"].format(step=wildcards.step)
    return f"resources/checkpoints/{wildcards.model}/step{wildcards.step}"


def previous_checkpoint(wildcards):
    """Input of a pretraining segment: the checkpoint of the previous configured step (none for the first)."""
    steps = sorted(MODELS[wildcards.model]["steps"])
    earlier = [s for s in steps if s < int(wildcards.step)]
    inputs = {"corpus": "resources/world/pretrain.parquet", "tokenizer": f"resources/tokenizers/{wildcards.model}"}
    if earlier:
        inputs["start"] = f"resources/checkpoints/{wildcards.model}/step{earlier[-1]}"
    return inputs


def entropy_corpus_file():
    return f"resources/corpora/{config['entropy']['corpus']['name']}.parquet"


def entropy_tables():
    return [f"results/entropy/{m}/step{s}.parquet" for m, s in model_steps()]


def compute_resources(model):
    """Slurm-facing resources of a model's compute job (gpu > 0 only where the model asks for GPUs)."""
    return {"gpu": MODELS[model].get("gpus", 0)}


def entropy_gpu(wildcards):
    return compute_resources(wildcards.model)["gpu"]


wildcard_constraints:
    step=r"\d+",


def model_spec(wildcards):
    return MODELS[wildcards.model]
