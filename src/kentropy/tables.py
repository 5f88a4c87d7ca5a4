"""Tables built from the continual table: per-run totals and Table 2 (with the paper's values beside ours)."""

from __future__ import annotations

import pandas as pd

from .layout import Variant

#: Table 2's quantities: the paper's A/F block and its K/P block (probe score and downstream mean after training).
TABLE2_QUANTITIES = {
    "A": "acquisition (%)",
    "F": "forgetting (%)",
    "P_after": "final probe score",
    "D_after": "final downstream mean (%)",
}


def totals(continual: pd.DataFrame) -> pd.DataFrame:
    """Per model/step/variant/run: P before/after, acquisition A, D before/after, forgetting F (wide).

    ``continual`` holds one probe-score definition (``kentropy.metrics.reported``).
    """
    acq = continual[(continual.metric == "acquisition") & (continual.split == "all") & (continual.kind == "all")]
    fgt = continual[continual.metric == "forgetting"]
    key = ["model", "step", "variant", "run"]
    a = acq[key + ["before", "after", "value"]].rename(columns={"before": "P_before", "after": "P_after", "value": "A"})
    f = fgt[key + ["before", "after", "value"]].rename(columns={"before": "D_before", "after": "D_after", "value": "F"})
    return a.merge(f, on=key)


def table2(continual: pd.DataFrame, variant: str = "original") -> pd.DataFrame:
    """Rows: model, run, quantity (A, F, final P, final D); columns: checkpoint steps."""
    wide = totals(continual[continual.variant == variant])
    long = wide.melt(id_vars=["model", "run", "step"], value_vars=list(TABLE2_QUANTITIES), var_name="quantity")
    long["quantity"] = pd.Categorical(long.quantity.map(TABLE2_QUANTITIES), list(TABLE2_QUANTITIES.values()))
    return long.pivot_table(index=["model", "run", "quantity"], columns="step", values="value", observed=True)


def table2_markdown(table: pd.DataFrame, paper: pd.DataFrame | None = None) -> str:
    """Table 2 as Markdown; where ``paper`` (model, run, quantity, step, value in our names) has the cell,
    the paper's value follows ours in brackets."""
    lookup = {}
    if paper is not None:
        lookup = {(r.model, r.run, TABLE2_QUANTITIES[r.quantity], r.step): r.value for r in paper.itertuples()}
    rows = []
    for (model, run, quantity), values in table.iterrows():
        cells = []
        for step, value in values.items():
            cell = "" if pd.isna(value) else f"{value:.3f}"
            if (model, run, quantity, step) in lookup:
                cell += f" [{lookup[(model, run, quantity, step)]:g}]"
            cells.append(cell)
        rows.append([model, run, quantity, *cells])
    header = ["model", "run", "quantity", *map(str, table.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    note = "\n\n[x]: the paper's value (Kim et al., 2025), where it reports the cell.\n" if lookup else "\n"
    return "\n".join(lines) + note


def resuscitation_table(entropy: pd.DataFrame, continual: pd.DataFrame, runs: list[str]) -> pd.DataFrame:
    """Per model, step, variant and run of ``runs``: p, q, knowledge entropy of the starting checkpoint, A, F.

    ``entropy`` is the long entropy table with a ``variant`` column; only the (model, step) pairs that
    have resuscitated variants are kept, with their originals as the reference.
    """
    ke = entropy[entropy.layer.isna() & (entropy.metric == "knowledge_entropy")]
    ke = ke[["model", "step", "variant", "value"]].rename(columns={"value": "knowledge_entropy"})
    wide = totals(continual[continual.run.isin(runs)])[["model", "step", "variant", "run", "A", "F"]]
    table = ke.merge(wide, on=["model", "step", "variant"], how="inner")
    variants = [Variant.parse(v) for v in table.variant]  # the original has no p, q: NaN
    table.insert(3, "p", [float("nan") if v.p is None else v.p for v in variants])
    table.insert(4, "q", [float("nan") if v.q is None else v.q for v in variants])
    return table.sort_values(["model", "run", "step", "p", "q"], na_position="first").reset_index(drop=True)
