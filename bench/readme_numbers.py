"""The numbers the README and docs/results.md quote from a finished default run, printed from its tables so
that nobody copies them by hand:

    python bench/readme_numbers.py [PROJECT] [--model tiny] [--run baseline]

Per checkpoint, the mean over the pretraining trajectories (and their continual seeds) ± the half-width of its
95% Student-t interval (``kentropy.tables.over_replicates``, the tables' own rule): knowledge entropy and the
other whole-model metrics; A, F and the forgetting-curve exponent of every run (probe score ``--score``, the
config's ``probe.score``); closed-book QA accuracy.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from kentropy.analysis.continual_tables import over_replicates, replicates_label, table2
from kentropy.analysis.outcomes import reported
from kentropy.sources.facts_file import CORPUS_TEMPLATES


def cell(row) -> str:
    half = (row.ci_high - row.ci_low) / 2
    return f"{row.mean:.2f}" if pd.isna(half) else f"{row.mean:.2f} ± {half:.2f}"


def rows(summary: pd.DataFrame, label: str) -> list[str]:
    """One Markdown row per quantity of ``summary`` (over_replicates' long table with a ``step`` key)."""
    lines = []
    for quantity, group in summary.groupby("quantity", sort=False, observed=True):
        rests_on = replicates_label(int(group.trajectories.min()), int(group.seeds.min()))
        lines.append(f"| {label}{quantity} ({rests_on}) | " + " | ".join(cell(r) for r in group.itertuples()) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path, nargs="?", default=Path("."))
    parser.add_argument("--experiment", default="tiny")
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--score", default="per_token", help="the probe score the config reports (probe.score)")
    args = parser.parse_args()
    tables = args.project / "results" / args.experiment / "tables"

    entropy = pd.read_parquet(tables / "entropy.parquet")
    whole = entropy[(entropy.model == args.model) & (entropy.variant == "original") & entropy.layer.isna()]
    wide = whole.pivot_table(index=["trajectory", "step"], columns="metric", values="value").reset_index()
    metrics = [m for m in wide.columns if m not in ("trajectory", "step")]
    steps = sorted(wide.step.unique())
    print("| step | " + " | ".join(map(str, steps)) + " |\n|---|" + "---|" * len(steps))
    for line in rows(over_replicates(wide, ["step"], metrics), ""):
        print(line)

    continual = reported(pd.read_parquet(tables / "continual.parquet"), args.score)
    forgetting = reported(pd.read_parquet(tables / "forgetting.parquet"), args.score)
    summary = table2(continual[continual.model == args.model], forgetting)
    for run, group in summary.groupby("run", sort=True):
        for line in rows(group.drop(columns=["model", "run"]), f"`{run}`: "):
            print(line)

    qa = pd.read_parquet(tables / "qa.parquet")
    qa = qa[qa.model == args.model]
    for templates, group in qa.groupby("templates", sort=True):
        per_trajectory = group.groupby(["trajectory", "step"], as_index=False).accuracy.mean()
        label = f"QA accuracy, {templates} templates{' (the corpus’s)' if templates == CORPUS_TEMPLATES else ''}: "
        for line in rows(over_replicates(per_trajectory, ["step"], ["accuracy"]), label):
            print(line)


if __name__ == "__main__":
    main()
