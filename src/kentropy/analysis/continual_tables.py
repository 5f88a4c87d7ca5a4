"""Tables built from the continual table: per-run totals, their means over seeds with 95% intervals, and
Table 2 (with the paper's values beside ours)."""

from __future__ import annotations

import functools

import pandas as pd

from ..core.layout import RUN_KEYS, Variant
from ..measurement.meters import KNOWLEDGE_ENTROPY
from ..sources.fictional_knowledge import ALL
from .outcomes import decay_exponents, hierarchical_interval

#: Table 2's quantities: the paper's A/F block and its K/P block (probe score and downstream mean after training).
TABLE2_QUANTITIES = {
    "A": "acquisition (%)",
    "F": "forgetting (%)",
    "P_after": "final probe score",
    "D_after": "final downstream mean (%)",
    "a": "decay exponent a (forgetting curve)",
}


#: The quantities ``totals`` gives each trained run, after its key columns.
TOTALS = ("P_before", "P_after", "A", "D_before", "D_after", "F")


def totals(continual: pd.DataFrame) -> pd.DataFrame:
    """Per model/step/variant/run: P before/after, acquisition A, D before/after, forgetting F (wide).

    ``continual`` holds one probe-score definition (``kentropy.analysis.outcomes.reported``).
    """
    acq = continual[(continual.metric == "acquisition") & (continual.split == ALL) & (continual.kind == ALL)]
    fgt = continual[continual.metric == "forgetting"]
    a = acq[RUN_KEYS + ["before", "after", "value"]].rename(
        columns={"before": "P_before", "after": "P_after", "value": "A"}
    )
    f = fgt[RUN_KEYS + ["before", "after", "value"]].rename(
        columns={"before": "D_before", "after": "D_after", "value": "F"}
    )
    return a.merge(f, on=RUN_KEYS)


#: Columns of a quantity summarised over trajectories and seeds (``over_replicates``): ``trajectories`` with a
#: value, and the fewest continual seeds any of them has.
INTERVAL_COLUMNS = ["mean", "ci_low", "ci_high", "trajectories", "seeds"]


def over_replicates(table: pd.DataFrame, keys: list[str], values: list[str]) -> pd.DataFrame:
    """Each of ``values`` summarised over the trajectories and, within them, the seeds of each ``keys`` group
    (``kentropy.analysis.outcomes.hierarchical_interval``): long, one row per group and quantity that has a value, with
    the mean, its 95% interval (NaN bounds for a single value) and how many trajectories and seeds it rests on.
    A table without a ``seed`` column (entropy) has one value per trajectory."""
    rows = []
    for group, sub in table.groupby(keys, sort=True, dropna=False):
        for quantity in values:
            present = sub[sub[quantity].notna()]
            if present.empty:
                continue
            mean, low, high = hierarchical_interval(present[quantity], present.trajectory)
            seeds = present.groupby("trajectory").seed.nunique().min() if "seed" in present else 1
            rows.append({**dict(zip(keys, group)), "quantity": quantity, "mean": mean, "ci_low": low, "ci_high": high,
                         "trajectories": int(present.trajectory.nunique()), "seeds": int(seeds)})  # fmt: skip
    return pd.DataFrame(rows, columns=[*keys, "quantity", *INTERVAL_COLUMNS])


def replicates_label(trajectories: int, seeds: int) -> str:
    """'T trajectories x S seeds', as every table and caption states what a cell rests on."""
    return f"{trajectories} trajector{'y' if trajectories == 1 else 'ies'} × {seeds} seed{'' if seeds == 1 else 's'}"


#: What the ± of a table cell is.
INTERVAL_NOTE = (
    "± half-width of the 95% interval of the mean: Student-t over the trajectories' means (each the mean over its "
    "continual seeds); with one trajectory, over its seeds alone (none for a single value)."
)


def table2(continual: pd.DataFrame, fits: pd.DataFrame | None = None, variant: str = "original") -> pd.DataFrame:
    """Long: model, run, quantity (A, F, final P, final D and, for the runs in ``fits``, the decay exponent a
    of all items, kentropy.analysis.forgetting), step, and the mean over seeds with its 95% interval
    (``INTERVAL_COLUMNS``)."""
    wide = totals(continual[continual.variant == variant])
    if fits is None:
        wide["a"] = float("nan")
    else:
        wide = wide.merge(decay_exponents(fits, variant), on=RUN_KEYS, how="left")
    table = over_replicates(wide, ["model", "run", "step"], list(TABLE2_QUANTITIES))
    table["quantity"] = pd.Categorical(table.quantity.map(TABLE2_QUANTITIES), list(TABLE2_QUANTITIES.values()))
    return table.sort_values(["model", "run", "quantity", "step"]).reset_index(drop=True)


def interval_cell(mean: float, low: float, high: float) -> str:
    """``mean ± half-width`` of a symmetric interval, or the mean alone without one."""
    if pd.isna(mean):
        return ""
    return f"{mean:.3f}" if pd.isna(low) else f"{mean:.3f} ± {(high - low) / 2:.3f}"


def table2_markdown(table: pd.DataFrame, paper: pd.DataFrame | None = None) -> str:
    """Table 2 (``table2``) as Markdown, runs x steps, each cell the mean over trajectories and seeds ± the
    half-width of its 95% interval; where ``paper`` (model, run, quantity, step, value in our names) has the cell, the
    paper's value follows ours in brackets."""
    lookup = {}
    if paper is not None:
        lookup = {(r.model, r.run, TABLE2_QUANTITIES[r.quantity], r.step): r.value for r in paper.itertuples()}
    steps = sorted(table.step.unique())
    rows = []
    for (model, run, quantity), group in table.groupby(["model", "run", "quantity"], sort=True, observed=True):
        cells = dict.fromkeys(steps, "")
        for r in group.itertuples():
            cells[r.step] = interval_cell(r.mean, r.ci_low, r.ci_high)
            if (model, run, quantity, r.step) in lookup:
                cells[r.step] += f" [{lookup[(model, run, quantity, r.step)]:g}]"
        label = replicates_label(int(group.trajectories.min()), int(group.seeds.min()))
        rows.append([model, run, f"{quantity}, {label}", *cells.values()])
    header = ["model", "run", "quantity", *map(str, steps)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    notes = [INTERVAL_NOTE]
    if lookup:
        notes.append("[x]: the paper's value (Kim et al., 2025), where it reports the cell.")
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


#: Resuscitation-table columns that are NaN by definition: p and q of the original checkpoint, and the
#: interval of a cell that rests on a single value.
RESUSCITATION_QUANTITIES = (KNOWLEDGE_ENTROPY, "A", "F")
RESUSCITATION_MISSING = ("p", "q", *(f"{q}_ci_{end}" for q in RESUSCITATION_QUANTITIES for end in ("low", "high")))


def resuscitation_table(entropy: pd.DataFrame, continual: pd.DataFrame, runs: list[str]) -> pd.DataFrame:
    """Per model, step, variant and run of ``runs``: p, q, and knowledge entropy of the starting checkpoint,
    A and F, each the mean over trajectories (and, for A and F, their seeds) with its 95% interval
    (``over_replicates``: ``<quantity>``, ``<quantity>_ci_low``, ``<quantity>_ci_high``), and the
    ``trajectories`` and ``seeds`` A and F rest on.

    ``entropy`` is the long entropy table with a ``variant`` column; only the (model, step) pairs that
    have resuscitated variants are kept, with their originals as the reference.
    """

    def wide(long, key, quantities):
        parts = [
            long[long.quantity == q]
            .drop(columns=["quantity", "trajectories", "seeds"])
            .rename(columns={"mean": q, "ci_low": f"{q}_ci_low", "ci_high": f"{q}_ci_high"})
            for q in quantities
        ]
        return functools.reduce(lambda left, right: left.merge(right, on=key), parts)

    ke = entropy[entropy.layer.isna() & (entropy.metric == KNOWLEDGE_ENTROPY)].rename(
        columns={"value": KNOWLEDGE_ENTROPY}
    )
    state = ["model", "step", "variant"]
    entropies = wide(over_replicates(ke, state, [KNOWLEDGE_ENTROPY]), state, [KNOWLEDGE_ENTROPY])
    key = ["model", "step", "variant", "run"]
    long = over_replicates(totals(continual[continual.run.isin(runs)]), key, ["A", "F"])
    counts = long[long.quantity == "A"][[*key, "trajectories", "seeds"]]
    table = entropies.merge(wide(long, key, ["A", "F"]).merge(counts, on=key), on=["model", "step", "variant"])
    variants = [Variant.parse(v) for v in table.variant]  # the original has no p, q: NaN
    table.insert(3, "p", [float("nan") if v.p is None else v.p for v in variants])
    table.insert(4, "q", [float("nan") if v.q is None else v.q for v in variants])
    return table.sort_values(["model", "run", "step", "p", "q"], na_position="first").reset_index(drop=True)
