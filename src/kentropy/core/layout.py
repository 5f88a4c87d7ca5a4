"""The pipeline's vocabulary, written and read here only: model-state variants, run names, table names and
every path the workflow writes (the typed settings of a run are kentropy.core.plan's).

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

#: Files of a checkpoint folder that hold weights (fetch, integrity, fingerprints).
WEIGHT_SUFFIXES = (".safetensors", ".bin")

#: The generated world's files by role (kentropy.sources.world writes one per role; ``Layout.world`` names them).
WORLD_FILES = {
    "pretrain": "pretrain.parquet",
    "new_domain": "new_domain.parquet",
    "paraphrase": "fictional_paraphrase.json",
    "once": "fictional_once.json",
    "questions": "questions.jsonl",
    "facts": "facts.parquet",
    "statements": "statements.parquet",
}
#: Every aggregated table and its rendered forms (``Layout.table``).
TABLES = frozenset(
    {
        "entropy.parquet",
        "continual.parquet",
        "correlations.parquet",
        "correlations_by_trajectory.parquet",
        "retention.parquet",
        "forgetting_curves.parquet",
        "forgetting.parquet",
        "resuscitation.parquet",
        "resuscitation.md",
        "table2.md",
        "table2.csv",
        "paper_comparison.parquet",
        "paper_comparison.md",
        "facts_exposure.parquet",
        "qa.parquet",
        "smi.parquet",
        "smi_bins.parquet",
        "specialization.parquet",
        "specialization_concepts.parquet",
        "pretraining_acquisition.parquet",
        "pretraining_acquisition_fits.parquet",
        "lab.parquet",
        "lab_slopes.parquet",
        "lab_cells.parquet",
        "lab_effects.parquet",
        "lab_effects.md",
        "lab_contrast.parquet",
        "lab_contrast.md",
    }
)
#: What a training run's folder holds (``Layout.training``) and a stream's (``Layout.stream``).
TRAINING_FILES = frozenset({"model", "loss.parquet", "retention.parquet", "work"})
STREAM_FILES = frozenset({"tokens.npy", "manifest.parquet"})
#: The tables of one checkpoint's knowledge measurements (``Layout.facts``): QA answers, PSS per concept and k.
FACTS_KINDS = frozenset({"answers", "specialization"})
#: The tables of one model state's evaluation (``Layout.evaluation``).
EVALUATION_KINDS = frozenset({"probes", "downstream"})


def _known(name, names, what: str):
    """``name`` when it is one of ``names`` (or a wildcard pattern); LayoutError naming the vocabulary otherwise."""
    if str(name).startswith("{") or name in names:
        return name
    raise LayoutError(f"{name!r} is not {what} ({', '.join(sorted(names))})")


#: Every name that becomes a path component (experiment, model, corpus, run): the schema's ``$defs/name``.
#: A letter or digit first, so never ``.``, ``..``, a hidden file or something that reads as an option.
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]*"


def _number(value) -> str:
    """A skew level in a file name (``1.5``, ``0``), or a wildcard left as it is."""
    return value if str(value).startswith("{") else f"{float(value):g}"


class PatternError(KentropyError, ValueError):
    """A user's pattern (``models.<m>.path``, a facts file's template) with a field it does not take."""


def fill_pattern(pattern: str, **values) -> str:
    """``pattern`` with its ``{name}`` fields filled from ``values``: only those names, no attribute or index
    (``{step.__class__}``), no conversion, a format spec only of a number's width and fill (``{step:07d}``);
    ``{{`` and ``}}`` are literal braces. A user's string is data: nothing in it is evaluated."""
    import string

    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(pattern) if name is not None]
    except ValueError as err:
        raise PatternError(f"{pattern!r} is not a pattern ({err}); write literal braces as {{{{ and }}}}") from None
    names = " or ".join(f"{{{n}}}" for n in values)
    for name, spec, conversion in fields:
        if name not in values or conversion or not re.fullmatch(r"[0<>^=]?[0-9]*d?", spec or ""):
            shown = f"{{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}"
            raise PatternError(f"{pattern!r}: field {shown} is not {names}: the only field(s) it takes")
    return pattern.format(**values)


def step_path(pattern: str, step: int) -> str:
    """``pattern`` (``models.<m>.path``, e.g. ``/data/run/step{step}`` or ``ckpt-{step:07d}``) at ``step``."""
    import string

    path = fill_pattern(pattern, step=int(step))
    if "step" not in {name for _, name, _, _ in string.Formatter().parse(pattern)}:
        raise PatternError(f"{pattern!r} has no {{step}} field")
    return path


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


#: A pretraining trajectory of a ``source: pretrain`` model with a seed other than the global one is named
#: ``<model>-traj<seed>``: the ``{model}`` wildcard and the folders of its checkpoints and results.
_TRAJECTORY = re.compile(r"(?P<model>.+)-traj(?P<seed>\d+)")


def trajectory_name(model: str, seed: int, global_seed: int) -> str:
    """The name of ``model``'s trajectory pretrained with ``seed``: the model's own name for the global seed
    (so a single-trajectory config names its folders as before), else ``<model>-traj<seed>``."""
    return model if seed == global_seed else f"{model}-traj{seed}"


def parse_trajectory_name(name: str, global_seed: int) -> tuple[str, int]:
    """(model, trajectory seed) of a name made by ``trajectory_name``; a checkpoint not pretrained here has
    one trajectory, the published one, keyed by the global seed."""
    match = _TRAJECTORY.fullmatch(name)
    return (match["model"], int(match["seed"])) if match else (name, global_seed)


def model_keys(name: str, global_seed: int) -> dict:
    """The ``model`` and ``trajectory`` key columns of the trajectory named ``name``."""
    model, trajectory = parse_trajectory_name(name, global_seed)
    return {"model": model, "trajectory": trajectory}


#: Key columns of every table, in the order ``with_keys`` writes them: ``trajectory`` is the pretraining
#: seed of the checkpoint, ``seed`` the continual-training seed of the run.
KEY_COLUMNS = ("model", "trajectory", "step", "variant", "run", "seed", "state")
#: The key columns of one trained run's row (continual, totals, forgetting fits): all but the state.
RUN_KEYS = [k for k in KEY_COLUMNS if k != "state"]


def with_keys(table, **keys):
    """``table`` with the given key columns (names from ``KEY_COLUMNS``) first, in that order; ``step`` and
    ``trajectory``, ``step`` and ``seed`` as int."""
    unknown = set(keys) - set(KEY_COLUMNS)
    if unknown:
        raise LayoutError(f"not key columns: {sorted(unknown)} (keys are {KEY_COLUMNS})")
    table = table.drop(columns=[k for k in keys if k in table.columns])
    for i, key in enumerate(k for k in KEY_COLUMNS if k in keys):
        table.insert(i, key, int(keys[key]) if key in ("trajectory", "step", "seed") else keys[key])
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

    def logs(self, rule: str) -> str:
        """The folder of every ``log(rule, …)`` of a rule with keys."""
        return self._under("logs", rule)

    def monitor(self) -> str:
        """Root of the training jobs' live logs (kentropy.training.monitor): one folder per backend below it."""
        return self._under("logs", "monitor")

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
            return step_path(spec["path"], step)
        if spec["source"] == "pretrain":
            return self.pretrained_checkpoint(model, step)
        return self.hub_checkpoint(model, step)

    def pretrained_checkpoint(self, model, step) -> str:
        return self.resource("checkpoints", model, f"step{step}")

    def resuscitated_checkpoint(self, model, step, variant) -> str:
        return self.resource("resuscitated", model, f"step{step}", variant)

    def tokenizer(self, vocab_size) -> str:
        """The pipeline's BPE tokenizer of ``vocab_size`` tokens, trained on the world alone: one for every
        model pretrained here with that size (``{vocab}`` wildcard)."""
        return self.resource("tokenizers", f"vocab{vocab_size}")

    # --- data ---
    def world(self, role) -> str:
        """The generated world's file of ``role`` (a key of ``WORLD_FILES``)."""
        return self.resource("world", WORLD_FILES[_known(role, WORLD_FILES, "a world file")])

    def entropy_documents(self) -> str:
        """The world's held-out documents of the generated entropy corpus (sources.world.write_entropy_documents)."""
        return self.resource("world", "entropy.parquet")

    def skewed_pretraining_corpus(self, person_zipf, object_zipf) -> str:
        """The pretraining corpus of the world at a model's own ``skew`` (``{person}``/``{object}`` wildcards)."""
        return self.resource("world", f"pretrain-person{_number(person_zipf)}-object{_number(object_zipf)}.parquet")

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

    def document_sums(self, model) -> str:
        """Each evaluation document's |coefficient| sums at every configured step of a trajectory (the lab's
        bootstrap input, kentropy.analysis.lab_design): (steps, documents, layers, d_ff) float64."""
        return self.result("document_sums", f"{model}.npy")

    def stream(self, model, run, name) -> str:
        """``tokens.npy`` or ``manifest.parquet`` of a run's training stream."""
        return self.result("streams", model, run, _known(name, STREAM_FILES, "a stream file"))

    def training(self, model, step, variant, run, name) -> str:
        """``model`` (folder), ``loss.parquet``, ``retention.parquet`` or ``work`` of one training run."""
        return self.result("continual", model, f"step{step}", variant, run, _known(name, TRAINING_FILES, "a run file"))

    def evaluation(self, model, step, variant, state, kind) -> str:
        """``probes`` or ``downstream`` table of one model state (``before`` or after a run)."""
        kind = _known(kind, EVALUATION_KINDS, "an evaluation kind")
        return self.result("evaluation", model, f"step{step}", variant, state, f"{kind}.parquet")

    def facts(self, model, step, kind) -> str:
        """``answers`` (closed-book QA) or ``specialization`` (PSS) table of one original checkpoint."""
        kind = _known(kind, FACTS_KINDS, "a facts table")
        return self.result("facts", model, f"step{step}", f"{kind}.parquet")

    # --- aggregates ---
    def table(self, name) -> str:
        return self.result("tables", _known(name, TABLES, "a table"))

    def figure(self, name, fmt) -> str:
        return self.result("figures", f"{name}.{fmt}")
