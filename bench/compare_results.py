"""Two finished projects of one config, table by table: are the results the same, value for value?

For a change that should not alter results (a refactor): run the DAG with the old code in one checkout and
with the new in another, then

    python bench/compare_results.py OLD_CHECKOUT NEW_CHECKOUT [--added-metric NAME ...]

compares every Parquet table under ``results/`` exactly (``pandas.testing.assert_frame_equal(check_exact=True)``)
and every PNG figure byte for byte. Rows of metrics the new code adds (``--added-metric``, a registered
per-checkpoint metric, kentropy.measurement.meters) are left out of the new entropy and correlation tables first.
Exits 1 when a table differs or is missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--added-metric", action="append", default=[], help="a metric only the new code has")
    args = parser.parse_args()
    added = set(args.added_metric)
    tables = sorted(p.relative_to(args.old) for p in (args.old / "results").rglob("*.parquet"))
    differ = []
    for rel in tables:
        if not (args.new / rel).is_file():
            differ.append(f"{rel}: missing in {args.new}")
            continue
        old, new = pd.read_parquet(args.old / rel), pd.read_parquet(args.new / rel)
        if {"metric", "layer"} <= set(new.columns):  # an entropy table: a row per metric and layer
            new = new[~new.metric.isin(added)].reset_index(drop=True)
        if rel.name == "correlations.parquet":
            new = new[~new.x.isin(added)].reset_index(drop=True)
        try:
            pd.testing.assert_frame_equal(old, new, check_exact=True)
        except AssertionError as err:
            differ.append(f"{rel}: {str(err).splitlines()[0]}")
    figures = sorted(p.relative_to(args.old) for p in (args.old / "results").rglob("*.png"))
    changed = [
        str(p)
        for p in figures
        if not (args.new / p).is_file() or (args.old / p).read_bytes() != (args.new / p).read_bytes()
    ]
    print(f"{len(tables) - len(differ)} of {len(tables)} tables equal value for value")
    print(
        f"{len(figures) - len(changed)} of {len(figures)} figures byte-identical; changed: {', '.join(changed) or '-'}"
    )
    for line in differ:
        print(f"differs: {line}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
