"""Every figure the workflow draws: which aggregated table it reads, how it is drawn, where the report files
it. One rule (``figure``, wildcard ``{name}``) and one script draw them all; each name is also a target.

Adding a figure: a drawing function in ``kentropy.report.figures`` taking the table and the options, one entry
here, and its caption block in ``workflow/report/figure.rst``. Light on purpose: the workflow imports it at
DAG build, and matplotlib is only imported by the job that draws.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.config import canonical
from ..core.layout import Variant
from ..core.plan import ResuscitationGrid, Run
from ..sources.manifests import tokens_seen


@dataclass(frozen=True)
class FigureSpec:
    """One figure: ``kentropy.report.figures.<draw>(*tables, **options(config))``."""

    draw: str  #: name of the drawing function in kentropy.report.figures
    table: str | tuple[str, ...]  #: the aggregated table(s) it reads (``Layout.table``), in the function's order
    category: str  #: report category
    options: Callable[[dict], dict] = field(default=lambda config: {})  #: keyword arguments from the config
    needs: Callable[[dict], bool] | None = None  #: whether a config draws it (None: every config)

    @property
    def tables(self) -> tuple[str, ...]:
        return (self.table,) if isinstance(self.table, str) else self.table

    @property
    def scored(self) -> bool:
        """Whether a table holds both probe-score definitions (the config's ``probe.score`` picks one)."""
        return any(t in SCORED_TABLES for t in self.tables)


#: Tables with a ``score`` column: one row per probe-score definition.
SCORED_TABLES = frozenset({"continual.parquet", "retention.parquet", "forgetting_curves.parquet", "forgetting.parquet"})


def _baseline(config):
    return {"baseline": config["continual"]["baseline"], **_axis(config)}


def _axis(config):
    """The x-axis of a step-axis figure (``figures.x_axis``): tokens seen per model and step, or None for steps."""
    if config["figures"]["x_axis"] != "tokens":
        return {"tokens": None}
    return {"tokens": {model: tokens_seen(config, model) for model in config["models"]}}


def _retention(config):
    """The axis of the retention figure: with tokens, also the baseline's tokens per training step."""
    axis = _axis(config)
    if axis["tokens"] is not None:
        run = Run.from_config(config, config["continual"]["baseline"])
        axis["train_tokens_per_step"] = run.stream.batch_size * run.stream.seq_len
    return axis


def _grid(axis: str, fixed: str, steps: str = "steps"):
    """Options of a grid figure: ``fixed`` and ``steps`` name fields of kentropy.core.plan.ResuscitationGrid."""

    def options(config):
        grid = ResuscitationGrid.from_config(config)
        return {"axis": axis, "fixed": getattr(grid, fixed), "steps": list(getattr(grid, steps))}

    return options


def _has(section: str) -> Callable[[dict], bool]:
    """A config draws the figure when it has ``section``."""
    return lambda config: bool(config.get(section))


def _exposure(config) -> bool:
    """Each fact's exposures exist: the generated facts and a model pretrained here."""
    facts = config.get("facts")
    return (
        bool(facts)
        and facts["source"] == "generated"
        and any(m["source"] == "pretrain" for m in config["models"].values())
    )


def _figure14(config):
    return {"variant": Variant.resuscitated(*ResuscitationGrid.from_config(config).figure14).name, **_axis(config)}


RESUS = "resuscitation.parquet"
FACTS_CATEGORY = "Knowledge frequency"
LAB = "Lab"
FIGURES: dict[str, FigureSpec] = {
    "figure3": FigureSpec("figure3", "entropy.parquet", "Entropy", _axis),
    "figure8": FigureSpec("figure8", "entropy.parquet", "Entropy", _axis),
    "figure4": FigureSpec("figure4", "continual.parquet", "Continual learning", _baseline),
    "figure11": FigureSpec("figure11", "continual.parquet", "Continual learning", _baseline),
    "figure12": FigureSpec(
        "figure12",
        "continual.parquet",
        "Continual learning",
        lambda config: {"runs": canonical(config["continual"]["runs"]), **_baseline(config)},
    ),
    "retention": FigureSpec("retention", "retention.parquet", "Continual learning", _retention),
    "forgetting": FigureSpec(
        "forgetting_curves", ("forgetting_curves.parquet", "forgetting.parquet"), "Continual learning"
    ),
    "figure5": FigureSpec("resuscitation_grid", RESUS, "Resuscitation", _grid("q", "p_fixed"), _has("resuscitation")),
    "figure13": FigureSpec("resuscitation_grid", RESUS, "Resuscitation", _grid("p", "q_fixed"), _has("resuscitation")),
    "figure14": FigureSpec("resuscitation_across_steps", RESUS, "Resuscitation", _figure14, _has("resuscitation")),
    "figure15": FigureSpec(
        "resuscitation_grid", RESUS, "Resuscitation", _grid("q", "p_fixed", "figure15_steps"), _has("resuscitation")
    ),
    "smi": FigureSpec(
        "smi_figure",
        ("smi_bins.parquet", "smi.parquet"),
        FACTS_CATEGORY,
        lambda config: {"size": config["facts"]["size"]},
        _has("facts"),
    ),
    "specialization": FigureSpec(
        "specialization_figure",
        ("specialization.parquet", "entropy.parquet", "specialization_concepts.parquet"),
        FACTS_CATEGORY,
        needs=_has("facts"),
    ),
    "pretraining_acquisition": FigureSpec(
        "pretraining_acquisition_figure",
        ("pretraining_acquisition.parquet", "pretraining_acquisition_fits.parquet"),
        FACTS_CATEGORY,
        needs=_exposure,
    ),
    "lab_trajectories": FigureSpec("lab_trajectories", ("lab.parquet", "lab_cells.parquet"), LAB, needs=_has("lab")),
    "lab_effects": FigureSpec("lab_effects", "lab_effects.parquet", LAB, needs=_has("lab")),
    "lab_layers": FigureSpec("lab_layers", ("lab.parquet", "lab_cells.parquet"), LAB, needs=_has("lab")),
}

#: The figures of each target group (``snakemake figures`` etc.).
GROUPS = {
    "figures": ["figure3", "figure8"],
    "continual_figures": ["figure4", "figure11", "figure12", "retention", "forgetting"],
    "resuscitation_figures": ["figure5", "figure13", "figure14", "figure15"],
    "facts_figures": ["smi", "specialization", "pretraining_acquisition"],
    "lab_figures": ["lab_trajectories", "lab_effects", "lab_layers"],
}


def drawn(config: dict) -> list[str]:
    """The figures this config draws (those whose ``needs`` it meets)."""
    return [name for name, spec in FIGURES.items() if spec.needs is None or spec.needs(config)]
