# Config validation, wildcard constraints and input functions shared by the rules.
import json
import math
import re
from argparse import Namespace
from pathlib import Path

from snakemake.logging import logger

from kentropy.config import (
    SPEED_KEYS,
    ConfigError,
    canonical,
    figure14_variant,
    inject_interval,
    injection_steps,
    validate_config,
)
from kentropy.manifests import ManifestError, check_model, duplicate_steps
from kentropy.resuscitation import variant_name

try:
    validate_config(config, workflow.source_path("../../config/schema.yaml"))
    for name, spec in config["models"].items():
        check_model(name, spec)  # published steps only (kentropy/data/checkpoints), offline
except (ConfigError, ManifestError) as err:
    raise WorkflowError(str(err)) from None

MODELS = config["models"]
ENV = "../../envs/kentropy.yaml"  # the software environment of every rule that runs code (--sdm conda)


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


def hub_sources():
    """{model: {step: source.json path}} of the Hub checkpoints (written by fetch_checkpoint)."""
    return canonical(
        {
            m: {s: f"resources/checkpoints/{m}/step{s}/source.json" for s in sorted(spec["steps"])}
            for m, spec in MODELS.items()
            if spec["source"] == "hf"
        }
    )


def warn_identical_checkpoints():
    """At DAG build: a warning naming both steps when two fetched checkpoints of a model have the same weights."""
    for model, files in hub_sources().items():
        for step, same in duplicate_steps(files).items():
            logger.warning(
                f"models.{model}: the checkpoints of steps {same} and {step} have byte-identical weights "
                f"({MODELS[model]['repo_id']}); their entropies will be equal (entropy.parquet: duplicate_of)"
            )


warn_identical_checkpoints()


# --- cluster resources (read by the Slurm executor; harmless locally) ---
CLUSTER = {
    "cpus_per_gpu": 8,
    "mem_mb_per_gpu": 64000,
    "mem_mb": 8000,
    "runtime": {"measure_entropy": 60, "probe": 30, "downstream": 120, "resuscitate": 30, "continual_train": 30},
    **config.get("cluster", {}),
}


def model_gpus(wildcards):
    """GPUs of an entropy/probe/lm-eval job on this model (0 = CPU): ``models.<name>.gpus``."""
    return MODELS[wildcards.model].get("gpus", 0)


def train_gpus(wildcards):
    """GPUs of a continual-training job: ``train_gpus``, else the model's ``gpus``."""
    spec = MODELS[wildcards.model]
    return spec.get("train_gpus", spec.get("gpus", 0))


def job_memory(gpus):
    """mem_mb of a job whose GPU count is ``gpus(wildcards)``: per GPU on GPU jobs, else the CPU default."""

    def mem_mb(wildcards):
        n = gpus(wildcards)
        return CLUSTER["mem_mb_per_gpu"] * n if n else CLUSTER["mem_mb"]

    return mem_mb


def job_runtime(rule):
    """Minutes for a job of ``rule`` (``cluster.runtime``)."""

    def runtime(wildcards):
        return CLUSTER["runtime"][rule]

    return runtime


def train_runtime(wildcards):
    """Minutes for a training job: the base plus 1.5 x the run's tokens at the model's measured
    ``train_tokens_per_s_per_gpu`` (when given) on its GPUs."""
    run, spec = RUNS[wildcards.run], MODELS[wildcards.model]
    base = CLUSTER["runtime"]["continual_train"]
    speed = spec.get("train_tokens_per_s_per_gpu")
    if not speed:
        return base
    tokens = run["epochs"] * run["steps_per_epoch"] * run["batch_size"] * CONTINUAL["seq_len"]
    return base + math.ceil(1.5 * tokens / (speed * max(1, train_gpus(wildcards))) / 60)


wildcard_constraints:
    step=r"\d+",


def model_spec(wildcards):
    return canonical(MODELS[wildcards.model], drop=frozenset({"gpus", "train_gpus", "train_tokens_per_s_per_gpu"}))


# --- continual knowledge learning ---
CONTINUAL = config["continual"]
PROBE_SCORE = config["probe"].get("score", "per_token")  # the definition tables and figures report
RELEASED_EVALUATOR = canonical({"batch_size": 16, "world_size": 4, **config["probe"].get("released", {})})
RUNS = CONTINUAL["runs"]
STATES = ["before", *RUNS]  # a model state: the checkpoint itself, or after one run


RESUSCITATION = config.get("resuscitation")
VARIANT_REGEX = r"original|resus-p\d+-q\d+(?:\.\d+)?"


wildcard_constraints:
    variant=VARIANT_REGEX,
    checkpoint=r"step\d+(?:-resus-p\d+-q\d+(?:\.\d+)?)?",
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
    return canonical(CONTINUAL["corpora"][wildcards.corpus])


def stream_spec(wildcards):
    """What a run's training stream depends on (not its optimizer settings)."""
    run = RUNS[wildcards.run]
    return canonical(
        {k: run[k] for k in ("corpus", "batch_size", "epochs", "steps_per_epoch", "inject_interval") if k in run}
    )


def run_blocks(wildcards):
    return f"resources/continual/{wildcards.model}/{RUNS[wildcards.run]['corpus']}.npy"


def run_config(wildcards):
    """The RunConfig (kentropy.continual) of a run, as JSON for the training command line."""
    run = RUNS[wildcards.run]
    return json.dumps(
        sort_keys=True,
        obj={
            "batch_size": run["batch_size"],
            "micro_batch_size": run.get("micro_batch_size", CONTINUAL["micro_batch_size"]),
            "lr": run["lr"],
            "total_steps": run["epochs"] * run["steps_per_epoch"],
            **{
                k: CONTINUAL[k]
                for k in ("warmup_fraction", "alpha_f", "weight_decay", "grad_clip", "zero_stage", "save_interval")
            },
            "seed": config["seed"],
        },
    )


def retention_steps(wildcards):
    """Steps after which the probes are scored during training: just before each injection after the
    first (injection k is in step k x interval), then at the end (comma-separated for the command line)."""
    run = RUNS[wildcards.run]
    total, interval = run["epochs"] * run["steps_per_epoch"], inject_interval(run, CONTINUAL["n_injections"])
    steps = {s - 1 for s in injection_steps(interval, total)[1:]} | {total}
    return ",".join(map(str, sorted(steps)))


def variant_checkpoint(wildcards):
    """The starting checkpoint of a variant: the pretraining checkpoint itself, or its resuscitated copy."""
    if wildcards.variant == "original":
        return checkpoint_dir(wildcards)
    return f"resources/checkpoints/{wildcards.model}/step{wildcards.step}-{wildcards.variant}"


def entropy_checkpoint(wildcards):
    """The folder whose entropy ``results/entropy/{model}/{checkpoint}`` measures."""
    step, _, variant = wildcards.checkpoint.removeprefix("step").partition("-")
    return variant_checkpoint(Namespace(model=wildcards.model, step=step, variant=variant or "original"))


def state_model(wildcards):
    """The model folder of a state: the checkpoint (``before``) or the model a run trained from it."""
    if wildcards.state == "before":
        return variant_checkpoint(wildcards)
    return f"results/continual/{wildcards.model}/step{wildcards.step}/{wildcards.variant}/{wildcards.state}/model"


def evaluation_files(kind):
    """Probe or downstream tables of every model state: each checkpoint before and after every run, and
    each resuscitated copy before and after the resuscitation runs."""
    files = [
        f"results/evaluation/{m}/step{s}/original/{state}/{kind}.parquet" for m, s in model_steps() for state in STATES
    ]
    for m, s in resuscitated_checkpoints():
        files += [
            f"results/evaluation/{m}/step{s}/{v}/{state}/{kind}.parquet"
            for v in resuscitation_variants()
            for state in ["before", *RESUSCITATION["runs"]]
        ]
    return files


def retention_files():
    """Retention curves of the baseline run from every original checkpoint, and their (model, step)."""
    pairs = model_steps()
    files = [f"results/continual/{m}/step{s}/original/{CONTINUAL['baseline']}/retention.parquet" for m, s in pairs]
    return files, [list(p) for p in pairs]


# --- resuscitation (Algorithm 1) ---
def resuscitation_variants():
    """Variant names of the grid: q varies at p_fixed (Figure 5), p varies at q_fixed (Figure 13)."""
    if not RESUSCITATION:
        return []
    grid = {(RESUSCITATION["p_fixed"], q) for q in RESUSCITATION["q_values"]}
    grid |= {(p, RESUSCITATION["q_fixed"]) for p in RESUSCITATION["p_values"]}
    return [variant_name(p, q) for p, q in sorted(grid)]


def resuscitated_checkpoints():
    """(model, step) pairs that get resuscitated copies: the configured steps each model has."""
    if not RESUSCITATION:
        return []
    return [(m, s) for m, s in model_steps() if s in RESUSCITATION["steps"]]


def resuscitation_entropy_tables():
    """Entropy tables of the resuscitated checkpoints and of the originals they came from."""
    return [
        f"results/entropy/{m}/step{s}{suffix}.parquet"
        for m, s in resuscitated_checkpoints()
        for suffix in ["", *(f"-{v}" for v in resuscitation_variants())]
    ]
