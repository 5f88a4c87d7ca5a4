"""Do two runs of one config agree within each other's intervals? For the same DAG run under two CPU kernel
settings (``ATEN_CPU_CAPABILITY``, ``MKL_ENABLE_INSTRUCTIONS``), whose pretraining trajectories part:

    python bench/kernel_agreement.py A B [--config config/config.yaml]

For every number the tables report with a 95% interval — Table 2's cells (``table2.csv``), every whole-model
entropy metric per step (mean over trajectories, ``kentropy.analysis.continual_tables.over_replicates``), the
resuscitation table's knowledge entropy, A and F, and the correlations' r — whether A's mean lies inside B's interval
and B's inside A's; then the counts per table, the spread |A - B| per quantity, and every number that falls
outside.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from kentropy.analysis.continual_tables import RESUSCITATION_QUANTITIES, over_replicates
from kentropy.core.config import load_config
from kentropy.core.layout import Layout
from kentropy.measurement.meters import METRICS


def summaries(root: Path, layout: Layout) -> pd.DataFrame:
    """Every reported mean with its interval: columns table, key, quantity, mean, ci_low, ci_high."""
    parts = []
    t2 = pd.read_csv(root / layout.table("table2.csv"))
    t2["key"] = t2.model + "/" + t2.run + "/step" + t2.step.astype(str)
    parts.append(t2.assign(table="table2"))
    entropy = pd.read_parquet(root / layout.table("entropy.parquet"))
    whole = entropy[entropy.layer.isna() & (entropy.variant == "original")]
    wide = whole.pivot_table(index=["model", "trajectory", "step"], columns="metric", values="value").reset_index()
    metrics = [m for m in METRICS if m in wide]
    ent = over_replicates(wide, ["model", "step"], metrics)
    ent["key"] = ent.model + "/step" + ent.step.astype(str)
    parts.append(ent.assign(table="entropy"))
    resus = pd.read_parquet(root / layout.table("resuscitation.parquet"))
    for q in RESUSCITATION_QUANTITIES:
        part = resus[["model", "run", "step", "variant", q, f"{q}_ci_low", f"{q}_ci_high"]].rename(
            columns={q: "mean", f"{q}_ci_low": "ci_low", f"{q}_ci_high": "ci_high"}
        )
        part["key"] = part.model + "/" + part.run + "/step" + part.step.astype(str) + "/" + part.variant
        parts.append(part.assign(table="resuscitation", quantity=q).drop_duplicates(["key", "quantity"]))
    corr = pd.read_parquet(root / layout.table("correlations.parquet")).rename(columns={"r": "mean"})
    corr["key"] = corr.model + "/" + corr.run + "/" + corr.method
    corr["quantity"] = "r(" + corr.x + ", " + corr.y + ")"
    parts.append(corr.assign(table="correlations"))
    columns = ["table", "key", "quantity", "mean", "ci_low", "ci_high"]
    return pd.concat([p[columns] for p in parts], ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="project folder (the --directory of one run)")
    parser.add_argument("b", type=Path, help="project folder of the other run")
    parser.add_argument("--config", type=Path, default=Path(__file__).resolve().parents[1] / "config/config.yaml")
    args = parser.parse_args()
    layout = Layout(load_config(args.config)["experiment"])
    both = summaries(args.a, layout).merge(
        summaries(args.b, layout), on=["table", "key", "quantity"], suffixes=("_a", "_b")
    )
    both = both.dropna(subset=["mean_a", "mean_b", "ci_low_a", "ci_low_b"])
    both["a_in_b"] = both.mean_a.between(both.ci_low_b, both.ci_high_b)
    both["b_in_a"] = both.mean_b.between(both.ci_low_a, both.ci_high_a)
    both["spread"] = (both.mean_a - both.mean_b).abs()
    both["half_width_a"] = (both.ci_high_a - both.ci_low_a) / 2
    print(f"{args.a} vs {args.b}: {len(both)} numbers with intervals in both")
    counts = both.groupby("table").agg(numbers=("key", "size"), a_in_b=("a_in_b", "sum"), b_in_a=("b_in_a", "sum"))
    print(counts.to_string())
    spread = both.groupby(["table", "quantity"]).agg(
        median_spread=("spread", "median"), max_spread=("spread", "max"), median_half_width_a=("half_width_a", "median")
    )
    print(spread.to_string(float_format=lambda v: f"{v:.4g}"))
    outside = both[~(both.a_in_b & both.b_in_a)]
    print(f"{len(outside)} outside the other's interval:")
    if len(outside):
        cols = ["table", "key", "quantity", "mean_a", "ci_low_a", "ci_high_a", "mean_b", "ci_low_b", "ci_high_b"]
        print(outside[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    main()
