# Config validation (every default filled), the typed plan (kentropy.core.plan), the experiment's layout
# (kentropy.core.layout), and the input functions of the rules.
import functools
import math
import re

from snakemake.logging import logger

from kentropy.core.config import canonical
from kentropy.core.errors import KentropyError
from kentropy.core.integrity import SOURCE, CheckpointError
from kentropy.core.layout import VARIANT_REGEX, WORLD_FILES, Layout, model_keys
from kentropy.core.plan import Plan, training_placement
from kentropy.core.plan import continued_steps as plan_continued_steps
from kentropy.core.provenance import PACKAGE, code_digest, local_checkpoint_fingerprint, package_modules
from kentropy.measurement.meters import METRICS
from kentropy.pipeline.config_check import check_config
from kentropy.pipeline.launch import TRAINING_RESOURCES, node_memory, training_resources
from kentropy.report.figure_registry import FIGURES, GROUPS, drawn
from kentropy.sources.fictional_knowledge import SPLITS
from kentropy.sources.manifests import duplicate_steps
from kentropy.sources.world import skewed_pretraining_corpus, spec_for, write_entropy_documents, write_world

try:  # every check of kentropy.pipeline.config_check, the same as `python -m kentropy.pipeline.config_check`
    for warning in check_config(config, workflow.source_path("../../config/schema.yaml")):
        logger.warning(warning)
except KentropyError as err:
    raise WorkflowError(str(err)) from None

PLAN = Plan.from_config(config)  # every setting a job needs, typed; rule params take its to_dict() forms
L = Layout(config["experiment"])
# Every trajectory by name (the {model} wildcard; kentropy.core.plan.Trajectory), and its model's settings: a model
# pretrained here has one trajectory per pretraining seed, any other model one.
TRAJECTORIES = PLAN.trajectories
MODELS = {name: config["models"][t.model] for name, t in TRAJECTORIES.items()}
ENV = "../../envs/kentropy.yaml"  # the software environment of every rule that runs code (--sdm conda)
FORMATS = config["figures"]["formats"]
JOB_THREADS = PLAN.speed.threads  # CPU threads of a compute job: speed only, never a param


LIBRARY = package_modules(PACKAGE)  # the library's modules, found once for every rule's code digest


def code(script):
    """Digest of the library code ``script`` runs (kentropy.core.provenance): a param of its rule, so a change to
    that code reruns the jobs it affects, and nothing else."""
    return code_digest(workflow.source_path(f"../scripts/{script}"), modules=LIBRARY)


@functools.cache
def producer(path):
    """The rule that writes ``path`` (None for a file the workflow does not make)."""
    return next((rule.name for rule in workflow.rules if rule.is_producer(path)), None)


def producers(wildcards, input):
    """{input file: the name of the rule writing it}, so that a job that cannot read an input says which
    rule redoes it (kentropy.core.io.reading)."""
    found = {path: producer(path) for path in sorted(map(str, input))}
    return {path: rule for path, rule in found.items() if rule}


def alternation(names):
    """Regex alternation of ``names`` (matches nothing when there are none)."""
    names = [re.escape(name) for name in names]
    return "|".join(names) if names else "(?!)"


def models_with_source(source):
    """Regex alternation of the trajectory names of the models with ``source``."""
    return alternation(m for m, spec in MODELS.items() if spec["source"] == source)


def model_steps():
    """(trajectory, step) pairs of every configured checkpoint."""
    return [(m, s) for m, spec in MODELS.items() for s in sorted(spec["steps"])]


def checkpoint_dir(wildcards):
    return L.checkpoint(wildcards.model, MODELS[wildcards.model], wildcards.step)


def local_fingerprint(wildcards):
    """For a ``source: local`` starting checkpoint, sizes and sha256 of its weight files (hashed once per
    change, cached in .snakemake/): a param of the jobs that read it, so a checkpoint changed in place
    reruns them. Empty for every other source (their folders are outputs Snakemake tracks)."""
    spec = MODELS[wildcards.model]
    starts = (
        getattr(wildcards, "variant", "original") == "original" and getattr(wildcards, "state", "before") == "before"
    )
    if spec["source"] != "local" or not starts:
        return {}
    cache = ".snakemake/kentropy/local_checkpoint_hashes.json"
    return local_checkpoint_fingerprint(checkpoint_dir(wildcards), cache)


def previous_step(wildcards):
    """The configured step a pretraining segment starts from (0 for the first: a fresh initialisation)."""
    return max((s for s in MODELS[wildcards.model]["steps"] if s < int(wildcards.step)), default=0)


def pretraining_corpus(wildcards):
    """The corpus the trajectory ``wildcards.model`` pretrains on: the world's, or at its model's own skew."""
    skew = MODELS[wildcards.model].get("skew")
    if skew is None:
        return L.world("pretrain")
    return L.skewed_pretraining_corpus(skew["person_zipf"], skew["object_zipf"])


def previous_checkpoint(wildcards):
    """Input of a pretraining segment: the checkpoint of the previous configured step (none for the first)."""
    inputs = {"corpus": pretraining_corpus(wildcards), "tokenizer": tokenizer_dir(wildcards)}
    if previous_step(wildcards):
        inputs["start"] = L.pretrained_checkpoint(wildcards.model, previous_step(wildcards))
    return inputs


def trajectory_checkpoints(wildcards):
    """(the lab) Every configured checkpoint of the trajectory ``wildcards.model``, in step order."""
    spec = MODELS[wildcards.model]
    return [L.checkpoint(wildcards.model, spec, s) for s in sorted(spec["steps"])]


def entropy_tables():
    return [L.entropy(m, s, "original") for m, s in model_steps()]


def hub_sources():
    """{model: {step: source.json path}} of the Hub checkpoints (written by fetch_checkpoint)."""
    return canonical(
        {
            m: {s: f"{L.hub_checkpoint(m, s)}/{SOURCE}" for s in sorted(spec["steps"])}
            for m, spec in MODELS.items()
            if spec["source"] == "hf"
        }
    )


def warn_identical_checkpoints():
    """At DAG build: a warning naming both steps when two fetched checkpoints of a model have the same weights."""
    for model, files in hub_sources().items():
        try:
            duplicates = duplicate_steps(files)
        except CheckpointError as err:
            raise WorkflowError(str(err)) from None
        for step, same in duplicates.items():
            logger.warning(
                f"models.{model}: the checkpoints of steps {same} and {step} have byte-identical weights "
                f"({MODELS[model]['repo_id']}); their entropies will be equal (entropy.parquet: duplicate_of)"
            )


warn_identical_checkpoints()


def warn_text_corpus():
    """At DAG build: a local text corpus with fewer lines than ``count``, or lines far past ``max_length``."""
    spec = config["entropy"]["corpus"]
    if spec["source"] == "text":
        from kentropy.sources.corpora import text_file_warnings

        for warning in text_file_warnings(spec["path"], spec.get("count"), config["entropy"]["max_length"]):
            logger.warning(warning)


warn_text_corpus()


# --- cluster resources (read by the Slurm executor; harmless locally; defaults: the schema's) ---
CLUSTER = config["cluster"]


def model_gpus(wildcards):
    """GPUs of an entropy/probe/lm-eval job on this model (0 = CPU): ``models.<name>.gpus``."""
    return MODELS[wildcards.model]["gpus"]


def train_gpus(wildcards):
    """GPUs of a continual-training job in all: ``train_gpus``, else the model's ``gpus``."""
    spec = MODELS[wildcards.model]
    return spec.get("train_gpus", spec["gpus"])


def training_resource(key):
    """One Slurm resource of a continual-training job (kentropy.pipeline.launch.training_resources), from its
    model's placement; None (Snakemake then leaves the resource out) where the placement has none."""

    def value(wildcards):
        placement = training_placement(config, TRAJECTORIES[wildcards.model].model)
        resources = training_resources(placement, CLUSTER["cpus_per_gpu"], CLUSTER["mem_mb_per_gpu"], CLUSTER["mem_mb"])
        return resources.get(key)

    return value


def job_memory(gpus):
    """mem_mb of a job whose GPU count is ``gpus(wildcards)``: per GPU on GPU jobs, else the CPU default."""

    def mem_mb(wildcards):
        return node_memory(gpus(wildcards), CLUSTER["mem_mb_per_gpu"], CLUSTER["mem_mb"])

    return mem_mb


def job_runtime(*parts):
    """Minutes for a job that does the work of ``parts`` (keys of ``cluster.runtime``), summed."""

    def runtime(wildcards):
        return sum(CLUSTER["runtime"][part] for part in parts)

    return runtime


def train_runtime(wildcards):
    """Minutes for a training job: the base, the evaluation of the trained model (probe + downstream), plus
    1.5 x the run's tokens at the model's measured ``train_tokens_per_s_per_gpu`` (when given) on its GPUs."""
    base = sum(CLUSTER["runtime"][part] for part in ("continual_train", "probe", "downstream"))
    speed = MODELS[wildcards.model].get("train_tokens_per_s_per_gpu")
    if not speed:
        return base
    return base + math.ceil(1.5 * RUNS[wildcards.run].tokens / (speed * max(1, train_gpus(wildcards))) / 60)


def model_spec(wildcards):
    """What a model's fetch depends on; its per-step pins are ``pinned_revision``'s, so pinning one step
    refetches that step alone."""
    drop = frozenset({"gpus", "train_gpus", "train_tokens_per_s_per_gpu", "revisions"})
    return canonical(MODELS[wildcards.model], drop=drop)


def pinned_revision(wildcards):
    """The Hub revision ``models.<m>.revisions`` pins this step to (None: the branch that carries the step)."""
    return MODELS[wildcards.model].get("revisions", {}).get(int(wildcards.step))


# --- continual knowledge learning ---
CONTINUAL = config["continual"]
PROBE_SCORE = PLAN.probe_score  # the definition tables and figures report
# What a model state's evaluation depends on (kentropy.core.plan.EvaluationSpec): the param of the evaluate rule and
# of the training job, which evaluates the model it trained.
EVALUATION = PLAN.evaluation.to_dict()
RESUSCITATION = PLAN.resuscitation
# The trained runs, one per run and seed, from the original checkpoints and from the resuscitated copies.
TRAINED = PLAN.trained
RESUSCITATION_TRAINED = PLAN.resuscitation_trained
RUNS = PLAN.runs


wildcard_constraints:
    step=r"\d+",
    variant=VARIANT_REGEX,
    run="|".join(re.escape(r) for r in RUNS),


def tokenizer_dir(wildcards):
    """The tokenizer of the trajectory ``wildcards.model``: for a model pretrained here, the pipeline's own
    (trained on the world alone, so shared by its trajectories), else its first checkpoint's."""
    model = TRAJECTORIES[wildcards.model].model
    spec = config["models"][model]
    if spec["source"] == "pretrain":
        return L.tokenizer(PLAN.pretraining[wildcards.model].data.vocab_size)
    return L.checkpoint(model, spec, min(spec["steps"]))


def pretraining_spec(wildcards):
    """How the trajectory ``wildcards.model`` pretrains (kentropy.core.plan.Pretraining), in param form."""
    return PLAN.pretraining[wildcards.model].to_dict()


def corpus_blocks(wildcards):
    """Blocks a continual corpus must supply: the most any run on it reads in one epoch."""
    return max(r.blocks for r in RUNS.values() if r.stream.corpus == wildcards.corpus)


def generated_corpus(wildcards):
    spec = CONTINUAL["corpora"][wildcards.corpus]
    return L.world(spec["file"]) if spec["source"] == "generated" else []


def corpus_spec(wildcards):
    return canonical(CONTINUAL["corpora"][wildcards.corpus])


def stream_spec(wildcards):
    """What a run's training stream on a trajectory depends on (not its optimizer settings)."""
    return canonical(PLAN.run_on(wildcards.model, wildcards.run).stream_param())


def run_blocks(wildcards):
    """The packed corpus of a run, one per trajectory: it is temporary, and one shared by a model's trajectories,
    rebuilt for a new trajectory, would rerun the streams (and trainings) of all of them."""
    return L.packed_corpus(wildcards.model, RUNS[wildcards.run].stream.corpus)


def run_spec(wildcards):
    """The run (kentropy.core.plan.Run) a training job trains on its trajectory, in its param form."""
    return PLAN.run_on(wildcards.model, wildcards.run).to_dict()


def variant_checkpoint(wildcards):
    """The starting checkpoint of a variant: the pretraining checkpoint itself, or its resuscitated copy."""
    if wildcards.variant == "original":
        return checkpoint_dir(wildcards)
    return L.resuscitated_checkpoint(wildcards.model, wildcards.step, wildcards.variant)


def continued_steps():
    """(trajectory, step) pairs of the checkpoints that continue training (kentropy.core.plan.continued_steps)."""
    return [(t, s) for t, spec in TRAJECTORIES.items() for s in plan_continued_steps(config, spec.model)]


def evaluation_files(kind):
    """Probe or downstream tables of every model state: each continued checkpoint before and after every run,
    and each resuscitated copy before and after the resuscitation runs."""
    files = [
        L.evaluation(m, s, "original", state, kind) for m, s in continued_steps() for state in ["before", *TRAINED]
    ]
    for m, s in resuscitated_checkpoints():
        files += [
            L.evaluation(m, s, v, state, kind)
            for v in resuscitation_variants()
            for state in ["before", *RESUSCITATION_TRAINED]
        ]
    return files


def retention_curves():
    """(probe scores, stream manifest, key columns) of the baseline run's retention curves, every seed, from
    every original checkpoint."""
    return [
        (
            L.training(m, s, "original", r.name, "retention.parquet"),
            L.stream(m, r.name, "manifest.parquet"),
            {**model_keys(m, config["seed"]), "step": s, "variant": "original", "run": r.run, "seed": r.seed},
        )
        for m, s in sorted(continued_steps())  # sorted: the param must not depend on the config's key order
        for r in PLAN.baseline_runs()
    ]


def run_keys():
    """Run and seed of every trained run's name, for tables (``kentropy.core.layout.parse_run_name``)."""
    return canonical({name: {"run": r.run, "seed": r.seed} for name, r in RUNS.items()})


# --- knowledge frequency (the `facts` section; kentropy.core.plan.FactsSpec) ---
FACTS = PLAN.facts
# The models pretrained here: with the generated facts, each fact's exposures come from their data orders.
PRETRAINED = [m for m, spec in config["models"].items() if spec["source"] == "pretrain"]
EXPOSURE = bool(FACTS) and config["facts"]["source"] == "generated" and bool(PRETRAINED)


def facts_file():
    """The facts file every checkpoint is asked about: the world's, or the user's own (``facts.path``)."""
    if not FACTS:
        return []
    return L.world("facts") if config["facts"]["source"] == "generated" else config["facts"]["path"]


def exposure_trajectories():
    """{trajectory: {seed, steps}} of every trajectory pretrained here (their data orders give the exposures)."""
    return {
        name: {"seed": t.seed, "steps": sorted(MODELS[name]["steps"])}
        for name, t in sorted(TRAJECTORIES.items())
        if t.model in PRETRAINED
    }


def correlation_inputs(wildcards):
    """The correlations' tables: entropy, continual outcomes, forgetting fits, and with a `facts` section the
    checkpoints' QA, SMI and PSS."""
    inputs = {
        "entropy": L.table("entropy.parquet"),
        "continual": L.table("continual.parquet"),
        "fits": L.table("forgetting.parquet"),
    }
    if FACTS:
        inputs.update(
            qa=L.table("qa.parquet"), smi=L.table("smi.parquet"), specialization=L.table("specialization.parquet")
        )
    return inputs


# --- resuscitation (Algorithm 1) ---
def resuscitation_variants():
    """Variant names of the grid (kentropy.core.plan.ResuscitationGrid.variants)."""
    return RESUSCITATION.variants if RESUSCITATION else []


def resuscitated_checkpoints():
    """(model, step) pairs that get resuscitated copies: the configured steps each model has."""
    if not RESUSCITATION:
        return []
    return [(m, s) for m, s in model_steps() if s in RESUSCITATION.steps]


def resuscitation_entropy_tables():
    """Entropy tables of the resuscitated checkpoints and of the originals they came from."""
    return [L.entropy(m, s, v) for m, s in resuscitated_checkpoints() for v in ["original", *resuscitation_variants()]]


# --- figures (kentropy.report.figure_registry) ---
# What each registered per-checkpoint metric is (kentropy.measurement.meters), for the report's captions.
METRIC_CAPTIONS = {name: metric.caption for name, metric in METRICS.items()}


def metric_captions(wildcards):
    """The metric captions, for the figures drawn from the entropy table (Figures 3 and 8)."""
    return METRIC_CAPTIONS if "entropy.parquet" in FIGURES[wildcards.name].tables else {}


def figure_files(*names):
    return [L.figure(name, fmt) for name in names for fmt in FORMATS]


def group_figures(group):
    """The figures of a target group that this config draws."""
    return figure_files(*(name for name in GROUPS[group] if name in drawn(config)))


# --- warm start of the script jobs on this machine (warm.smk, kentropy.pipeline.warm; speed only) ---
def warm_server_settings():
    """(whether to start the warm server, the environment every compute job sets for itself before its
    imports: offline, the config's cache, fixed thread counts; its log; the localrules it serves)."""
    from kentropy.core.environment import job_environment

    return PLAN.speed.warm_start, job_environment(config), L.log("warm_start"), offline_localrules()


def offline_localrules():
    """The localrules that download nothing under this config (their sources are generated or local files): the
    offline warm server runs them too. The others, and fetch_checkpoint and fetch_benchmarks always, start cold."""
    online = {
        "entropy_corpus": config["entropy"]["corpus"]["source"] in ("hf", "dolma"),
        "continual_corpus": any(c["source"] == "hf" for c in CONTINUAL["corpora"].values()),
        "fictional_knowledge": CONTINUAL["knowledge"]["source"] == "url",
    }
    return [rule for rule, downloads in online.items() if not downloads]
