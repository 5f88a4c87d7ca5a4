"""The paper's published numbers (``data/paper_kim2025.yaml``) and their comparison with ours.

A config that reproduces a paper experiment names, in ``paper_comparison``, which of its models and runs
correspond to the paper's; the comparison is then per cell: ours, the paper's, the difference.
"""

from __future__ import annotations

from importlib.resources import files

import pandas as pd
import yaml

from .continual_tables import totals

COMPARISON_COLUMNS = ["item", "model", "run", "quantity", "step", "ours", "paper", "difference"]
#: NaN by definition: a published cell this config did not compute (``ours``, and so ``difference``).
COMPARISON_MISSING = ("ours", "difference")


def published() -> dict:
    """The transcribed numbers, as in the data file."""
    return yaml.safe_load(files("kentropy").joinpath("data/paper_kim2025.yaml").read_text())


def paper_table2(mapping: dict) -> pd.DataFrame:
    """The paper's Table 2 cells in our names: model, run, quantity (A, F, P_after, D_after), step, value.

    ``mapping`` is the config's ``paper_comparison`` ({models: {ours: paper's}, runs: {ours: paper's}}).
    """
    data = published()
    rows = []
    for model, paper_model in mapping["models"].items():
        for run, setting in mapping["runs"].items():
            cells = data["table2"].get(paper_model, {}).get(setting, {})
            for quantity, values in cells.items():
                rows += [
                    {"model": model, "run": run, "quantity": quantity, "step": step, "value": value}
                    for step, value in zip(data["steps"], values)
                ]
    return pd.DataFrame(rows, columns=["model", "run", "quantity", "step", "value"])


def comparison(continual: pd.DataFrame, correlations: pd.DataFrame, mapping: dict) -> pd.DataFrame:
    """Every published number this config reproduces, beside ours (``COMPARISON_COLUMNS``).

    ``continual`` holds the reported probe-score definition (``kentropy.analysis.outcomes.reported``). Items:
    ``table2`` cells, ``correlation`` (Pearson r and p-value) and ``acquisition_gap`` (A at the last
    minus A at the first step). A cell we did not compute has ``ours`` NaN.
    """
    data = published()
    quantities = ["A", "F", "P_after", "D_after"]  # ours: the mean over seeds
    wide = totals(continual[continual.variant == "original"]).groupby(["model", "run", "step"])[quantities].mean()
    rows = []
    for r in paper_table2(mapping).itertuples():
        ours = wide[r.quantity].get((r.model, r.run, r.step), float("nan"))
        rows.append(
            {
                "item": "table2",
                "model": r.model,
                "run": r.run,
                "quantity": r.quantity,
                "step": r.step,
                "ours": ours,
                "paper": r.value,
            }
        )
    ours_models = {paper: ours for ours, paper in mapping["models"].items()}
    ours_runs = {paper: ours for ours, paper in mapping["runs"].items()}
    corr = correlations.set_index(["model", "run", "x", "y", "method"])
    for c in data["correlations"]:
        model, run = ours_models.get(c["model"]), ours_runs.get(c["setting"])
        if model is None or run is None:
            continue
        key = (model, run, c["x"], c["y"], c["method"])
        found = corr.loc[key] if key in corr.index else None
        for quantity in ("r", "p_value"):
            rows.append(
                {
                    "item": "correlation",
                    "model": model,
                    "run": run,
                    "quantity": f"{c['method']} {quantity}({c['x']}, {c['y']})",
                    "step": None,
                    "ours": float("nan") if found is None else float(found[quantity]),
                    "paper": c[quantity],
                }
            )
    for g in data["acquisition_gaps"]:
        model, run = ours_models.get(g["model"]), ours_runs.get(g["setting"])
        if model is None or run is None:
            continue
        a = wide.A
        ours = a.get((model, run, g["to_step"]), float("nan")) - a.get((model, run, g["from_step"]), float("nan"))
        rows.append(
            {
                "item": "acquisition_gap",
                "model": model,
                "run": run,
                "quantity": f"A({g['to_step']}) - A({g['from_step']})",
                "step": None,
                "ours": ours,
                "paper": g["value"],
            }
        )
    table = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    table["difference"] = table.ours - table.paper
    return table
