"""The pipeline's vocabulary, written and read here only: model-state variants, typed continual-training runs,
and every path the workflow writes.

Rules build their input and output patterns with ``Layout`` (pass ``"{model}"`` etc. to keep a wildcard),
scripts receive the keys of what they make as wildcards or params and never parse a path, and tables get
their key columns from ``with_keys``. Everything an experiment makes lives under its name
(``results/<experiment>/…``, ``resources/<experiment>/…``, ``logs/<experiment>/…``); only what is shared by
construction, a checkpoint fetched from the Hub, is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import KentropyError

ORIGINAL = "original"

#: Every name that becomes a path component (experiment, model, corpus, run): the schema's ``$defs/name``.
#: A letter or digit first, so never ``.``, ``..``, a hidden file or something that reads as an option.
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]*"

#: Variant kinds other than the original checkpoint: kind -> (name format, name regex with the same fields).
#: A new kind is one entry here and one branch in ``Variant.name``'s format (and the rule that makes it).
_KINDS = {
    "resus": ("resus-p{p}-q{q}", r"resus-p(?P<p>\d+)-q(?P<q>\d+(?:\.\d+)?)"),
}
#: Regex of every variant name: the ``{variant}`` wildcard's constraint.
VARIANT_REGEX = "|".join([ORIGINAL, *(regex for _, regex in _KINDS.values())]).replace("?P<p>", "").replace("?P<q>", "")


class LayoutError(KentropyError, ValueError):
    """A name that is not in the pipeline's vocabulary (a variant, a table or figure name)."""


@dataclass(frozen=True)
class Variant:
    """A starting point of continual training: the checkpoint itself, or a resuscitated copy of it with
    p (percent of memory vectors) and q (amplifying factor) of Algorithm 1."""

    kind: str = ORIGINAL
    p: int | None = None
    q: float | None = None

    @classmethod
    def resuscitated(cls, p: int, q: float) -> Variant:
        return cls("resus", int(p), float(q))

    @property
    def name(self) -> str:
        """``original`` or ``resus-p{p}-q{q}`` (q without a trailing ``.0``)."""
        if self.kind == ORIGINAL:
            return ORIGINAL
        return _KINDS[self.kind][0].format(p=self.p, q=f"{self.q:g}")

    @classmethod
    def parse(cls, name: str) -> Variant:
        """The variant a name made by ``name`` stands for."""
        if name == ORIGINAL:
            return cls()
        for kind, (_, regex) in _KINDS.items():
            match = re.fullmatch(regex, name)
            if match:
                return cls(kind, int(match["p"]), float(match["q"]))
        raise LayoutError(f"{name!r} is not a variant name ({VARIANT_REGEX})")


#: A run trained with a seed other than the global one is named ``<run>-seed<seed>``.
_SEEDED = re.compile(r"(?P<run>.+)-seed(?P<seed>\d+)")


def run_name(run: str, seed: int, global_seed: int) -> str:
    """The name of ``run`` trained with ``seed``: the run's own name for the global seed (so a single-seed
    config names its runs as before), else ``<run>-seed<seed>``."""
    return run if seed == global_seed else f"{run}-seed{seed}"


def parse_run_name(name: str, global_seed: int) -> tuple[str, int]:
    """(run, seed) of a name made by ``run_name``."""
    match = _SEEDED.fullmatch(name)
    return (match["run"], int(match["seed"])) if match else (name, global_seed)


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


@dataclass(frozen=True)
class Run:
    """One continual-training run, trained with one seed, with every default filled from the ``continual``
    section (schema: config/schema.yaml, ``continual.runs``); its derived numbers are properties."""

    name: str  #: ``run_name(run, seed)``: the ``{run}`` wildcard and the state it trains
    run: str  #: the key in ``continual.runs``
    corpus: str  #: the key in ``continual.corpora`` it trains on
    batch_size: int  #: global batch in rows
    micro_batch_size: int  #: rows per forward pass per process
    lr: float  #: peak learning rate
    epochs: int  #: passes over the run's corpus blocks
    steps_per_epoch: int  #: optimizer steps per pass
    inject_interval: int  #: steps between injections (default: the first epoch split into n_injections)
    n_injections: int  #: injections of fictional knowledge per epoch's worth of the schedule
    seq_len: int  #: tokens per row
    warmup_fraction: float
    alpha_f: float
    weight_decay: float
    grad_clip: float
    zero_stage: int
    save_interval: int
    seed: int  #: data order, injection rows and the trainer's torch seed

    @classmethod
    def from_config(cls, config: dict, name: str) -> Run:
        """The run named ``name`` (``run_name``)."""
        run, seed = parse_run_name(name, config["seed"])
        cont, spec = config["continual"], config["continual"]["runs"][run]
        shared = ("warmup_fraction", "alpha_f", "weight_decay", "grad_clip", "zero_stage", "save_interval")
        return cls(
            name=name,
            run=run,
            corpus=spec["corpus"],
            batch_size=spec["batch_size"],
            micro_batch_size=spec.get("micro_batch_size", cont["micro_batch_size"]),
            lr=spec["lr"],
            epochs=spec["epochs"],
            steps_per_epoch=spec["steps_per_epoch"],
            inject_interval=spec.get("inject_interval", spec["steps_per_epoch"] // cont["n_injections"]),
            n_injections=cont["n_injections"],
            seq_len=cont["seq_len"],
            **{k: cont[k] for k in shared},
            seed=seed,
        )

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def tokens(self) -> int:
        """Tokens the run trains on."""
        return self.total_steps * self.batch_size * self.seq_len

    @property
    def blocks(self) -> int:
        """Corpus blocks (rows) one epoch reads."""
        return self.batch_size * self.steps_per_epoch

    @property
    def injection_steps(self) -> list[int]:
        """Training steps (from 1) that carry an injection: every ``inject_interval``-th, to the run's end."""
        return injection_steps(self.inject_interval, self.total_steps)

    @property
    def retention_steps(self) -> list[int]:
        """Steps after which the probes are scored during training: just before each injection after the
        first, then at the end."""
        return sorted({s - 1 for s in self.injection_steps[1:]} | {self.total_steps})

    def stream(self) -> dict:
        """What the run's training stream depends on (not its optimizer settings), with its derived sizes."""
        keys = ("corpus", "batch_size", "inject_interval", "n_injections", "seed", "total_steps", "blocks")
        return {k: getattr(self, k) for k in keys}

    def trainer(self) -> dict:
        """The keyword arguments of ``kentropy.continual.RunConfig``."""
        keys = ("batch_size", "micro_batch_size", "lr", "warmup_fraction", "alpha_f", "weight_decay", "grad_clip")
        return {
            **{k: getattr(self, k) for k in keys},
            "total_steps": self.total_steps,
            **{k: getattr(self, k) for k in ("zero_stage", "save_interval", "seed")},
        }


def injection_steps(inject_interval: int, total_steps: int) -> list[int]:
    """Training steps (from 1) that carry an injection: every ``inject_interval``-th, to the run's end."""
    return list(range(inject_interval, total_steps + 1, inject_interval))


#: Key columns of every table, in the order ``with_keys`` writes them.
KEY_COLUMNS = ("model", "step", "variant", "run", "seed", "state")


def with_keys(table, **keys):
    """``table`` with the given key columns (names from ``KEY_COLUMNS``) first, in that order; ``step`` and
    ``seed`` as int."""
    unknown = set(keys) - set(KEY_COLUMNS)
    if unknown:
        raise LayoutError(f"not key columns: {sorted(unknown)} (keys are {KEY_COLUMNS})")
    table = table.drop(columns=[k for k in keys if k in table.columns])
    for i, key in enumerate(k for k in KEY_COLUMNS if k in keys):
        table.insert(i, key, int(keys[key]) if key in ("step", "seed") else keys[key])
    return table


def contained(top: str, folder, *parts) -> str:
    """``top/folder/parts…`` joined, refusing a path that could leave ``top/folder``: a component that is
    empty, ``.`` or ``..`` (names are checked at DAG build, NAME_PATTERN; this guards everything else)."""
    path = "/".join([top, *map(str, (folder, *parts))])
    named = re.fullmatch(NAME_PATTERN, str(folder)) or str(folder).startswith("{")  # a name, or a wildcard
    if not named or any(c in ("", ".", "..") for c in path.split("/")):
        raise LayoutError(f"{path}: not a path inside {top}/{folder}/ (a component is empty, '.' or '..')")
    return path


@dataclass(frozen=True)
class Layout:
    """Every path of one experiment. Arguments are values or wildcard patterns (``"{model}"``)."""

    experiment: str

    def _under(self, top: str, *parts) -> str:
        return contained(top, self.experiment, *parts)

    def resource(self, *parts) -> str:
        return self._under("resources", *parts)

    def result(self, *parts) -> str:
        return self._under("results", *parts)

    def log(self, rule: str, *key) -> str:
        return self._under("logs", rule, *key[:-1], f"{key[-1] if key else rule}.log")

    def benchmark(self, rule: str, *key) -> str:
        return self._under("benchmarks", rule, *key[:-1], f"{key[-1] if key else rule}.tsv")

    # --- checkpoints ---
    @staticmethod
    def hub_checkpoint(model, step) -> str:
        """A fetched Hub checkpoint: shared by every experiment (its name pins the repository)."""
        return contained("resources", "checkpoints", model, f"step{step}")

    def checkpoint(self, model, spec: dict, step) -> str:
        """The save_pretrained folder of a configured checkpoint (``spec``: ``models.<model>``): fetched
        (shared), pretrained by this experiment, or the user's own (``source: local``)."""
        if spec["source"] == "local":
            return spec["path"].format(step=step)
        if spec["source"] == "pretrain":
            return self.pretrained_checkpoint(model, step)
        return self.hub_checkpoint(model, step)

    def pretrained_checkpoint(self, model, step) -> str:
        return self.resource("checkpoints", model, f"step{step}")

    def resuscitated_checkpoint(self, model, step, variant) -> str:
        return self.resource("resuscitated", model, f"step{step}", variant)

    def tokenizer(self, model) -> str:
        return self.resource("tokenizers", model)

    # --- data ---
    def world(self, name) -> str:
        """A file of the generated world (``pretrain.parquet``, ``fictional_once.json``, …)."""
        return self.resource("world", name)

    def entropy_corpus(self, name) -> str:
        return self.resource("corpora", f"{name}.parquet")

    def knowledge(self, split) -> str:
        return self.resource("knowledge", f"fictional_{split}.json")

    def benchmarks(self) -> str:
        return self.resource("benchmarks")

    def packed_corpus(self, model, corpus) -> str:
        return self.resource("continual", model, f"{corpus}.npy")

    # --- results per checkpoint ---
    def pretrain_loss(self, model, step) -> str:
        return self.result("pretrain", model, f"step{step}.loss.parquet")

    def entropy(self, model, step, variant, suffix=".parquet") -> str:
        """Entropy table (or ``.coef.npy``: mean |coefficient| per memory vector) of one starting checkpoint."""
        return self.result("entropy", model, f"step{step}", f"{variant}{suffix}")

    def stream(self, model, run, name) -> str:
        """``tokens.npy`` or ``manifest.parquet`` of a run's training stream."""
        return self.result("streams", model, run, name)

    def training(self, model, step, variant, run, name) -> str:
        """``model`` (folder), ``loss.parquet``, ``retention.parquet`` or ``work`` of one training run."""
        return self.result("continual", model, f"step{step}", variant, run, name)

    def evaluation(self, model, step, variant, state, kind) -> str:
        """``probes`` or ``downstream`` table of one model state (``before`` or after a run)."""
        return self.result("evaluation", model, f"step{step}", variant, state, f"{kind}.parquet")

    # --- aggregates ---
    def table(self, name) -> str:
        return self.result("tables", name)

    def figure(self, name, fmt) -> str:
        return self.result("figures", f"{name}.{fmt}")
