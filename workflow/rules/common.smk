# Config validation, wildcard constraints and input functions shared by the rules.
import json
import re
from argparse import Namespace
from pathlib import Path

from kentropy.config import ConfigError, validate_config
from kentropy.launch import launch_command

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


def model_gpus(wildcards):
    """GPUs of a compute job on this model (0 = CPU); one process per GPU inside the job."""
    return compute_resources(wildcards.model)["gpu"]


wildcard_constraints:
    step=r"\d+",


def model_spec(wildcards):
    return MODELS[wildcards.model]


# --- continual knowledge learning ---
CONTINUAL = config["continual"]
RUNS = CONTINUAL["runs"]
STATES = ["before", *RUNS]  # a model state: the checkpoint itself, or after one run


wildcard_constraints:
    variant="original",
    run="|".join(re.escape(r) for r in RUNS),
    state="|".join(re.escape(s) for s in STATES),


def tokenizer_dir(wildcards):
    """A model's tokenizer: the pipeline's own for the tiny trajectory, else the first checkpoint's."""
    spec = MODELS[wildcards.model]
    if spec["source"] == "pretrain":
        return f"resources/tokenizers/{wildcards.model}"
    return checkpoint_dir(Namespace(model=wildcards.model, step=min(spec["steps"])))


def corpus_blocks(wildcards):
    """Blocks a continual corpus must supply: the most any run on it reads in one epoch."""
    return max(r["batch_size"] * r["steps_per_epoch"] for r in RUNS.values() if r["corpus"] == wildcards.corpus)


def generated_corpus(wildcards):
    spec = CONTINUAL["corpora"][wildcards.corpus]
    return f"resources/world/{spec['file']}.parquet" if spec["source"] == "generated" else []


def corpus_spec(wildcards):
    return CONTINUAL["corpora"][wildcards.corpus]


def run_spec(wildcards):
    return RUNS[wildcards.run]


def run_blocks(wildcards):
    return f"resources/continual/{wildcards.model}/{RUNS[wildcards.run]['corpus']}.npy"


def run_config(wildcards):
    """The RunConfig (kentropy.continual) of a run, as JSON for the training command line."""
    run = RUNS[wildcards.run]
    return json.dumps({
        "batch_size": run["batch_size"],
        "micro_batch_size": run.get("micro_batch_size", CONTINUAL["micro_batch_size"]),
        "lr": run["lr"],
        "total_steps": run["epochs"] * run["steps_per_epoch"],
        **{k: CONTINUAL[k] for k in ("warmup_fraction", "alpha_f", "weight_decay", "grad_clip", "zero_stage", "save_interval")},
        "seed": config["seed"],
    })


def train_gpus(wildcards):
    """GPUs of a continual-training job: ``train_gpus``, else the model's ``gpus``."""
    spec = MODELS[wildcards.model]
    return spec.get("train_gpus", spec.get("gpus", 0))


def launch(wildcards):
    """One training process per GPU inside the job (kentropy.launch.launch_command)."""
    return launch_command(train_gpus(wildcards))


def variant_checkpoint(wildcards):
    """The starting checkpoint of a variant (``original``: the pretraining checkpoint itself)."""
    return checkpoint_dir(wildcards)


def state_model(wildcards):
    """The model folder of a state: the checkpoint (``before``) or the model a run trained from it."""
    if wildcards.state == "before":
        return variant_checkpoint(wildcards)
    return f"results/continual/{wildcards.model}/step{wildcards.step}/{wildcards.variant}/{wildcards.state}/model"


def evaluation_files(kind, variants=("original",)):
    """Probe or downstream tables of every model state: (model, step) x variant x (before + runs)."""
    return [f"results/evaluation/{m}/step{s}/{v}/{state}/{kind}.parquet"
            for m, s in model_steps() for v in variants for state in STATES]
