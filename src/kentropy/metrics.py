"""Acquisition (Eq. 4), forgetting (Eq. 5) and their correlation with knowledge entropy."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

CONTINUAL_COLUMNS = ["model", "step", "variant", "run", "metric", "score", "split", "kind", "before", "after", "value"]
CORRELATION_COLUMNS = ["model", "run", "x", "y", "method", "r", "p_value", "ci_low", "ci_high", "n"]
ALL = "all"
#: The probe-score definitions (kentropy.probes), a column each in probes.parquet.
SCORES = ("per_token", "released")


def acquisition(before: float, after: float) -> float:
    """Eq. 4, in percent: relative gain of the probe score P (a log-probability, so negative)."""
    return 100.0 * (after - before) / abs(before)


def forgetting(before: float, after: float) -> float:
    """Eq. 5, in percent: relative loss of the mean downstream accuracy D."""
    return 100.0 * (before - after) / before


def probe_scores(probes: pd.DataFrame) -> pd.DataFrame:
    """P per (split, kind, score definition), plus kind ``all`` per split and split ``all`` (splits
    weighted by paragraphs, as the paper's K(θ)).

    ``probes`` has one row per probe: split, paragraph, kind and one column per definition in ``SCORES``.
    """
    rows = []
    for score in SCORES:
        for split, group in probes.groupby("split", sort=True):
            for kind, sub in group.groupby("kind", sort=True):
                rows.append(
                    {
                        "split": split,
                        "kind": kind,
                        "score": score,
                        "P": sub[score].mean(),
                        "paragraphs": sub.paragraph.nunique(),
                    }
                )
            rows.append(
                {
                    "split": split,
                    "kind": ALL,
                    "score": score,
                    "P": group[score].mean(),
                    "paragraphs": group.paragraph.nunique(),
                }
            )
    table = pd.DataFrame(rows)
    overall = [
        {"split": ALL, "kind": kind, "score": score, "P": np.average(sub.P, weights=sub.paragraphs)}
        for (score, kind), sub in table.groupby(["score", "kind"], sort=False)
    ]
    return pd.concat([table, pd.DataFrame(overall)], ignore_index=True)[["split", "kind", "score", "P"]]


def reported(table: pd.DataFrame, score: str) -> pd.DataFrame:
    """The rows of a continual or retention table that a config reports: probe scores of definition
    ``score`` (``probe.score``) and the rows that carry no probe score (forgetting)."""
    return table[table.score.isna() | (table.score == score)]


def downstream_score(downstream: pd.DataFrame) -> float:
    """D: the unweighted mean of the tasks' reported metrics."""
    return float(downstream.value.mean())


def continual_rows(
    key: dict,
    probes_before: pd.DataFrame,
    probes_after: pd.DataFrame,
    downstream_before: pd.DataFrame,
    downstream_after: pd.DataFrame,
) -> list[dict]:
    """Acquisition per (score definition, split, kind) and forgetting of one trained model; ``key`` =
    model/step/variant/run."""
    before = probe_scores(probes_before).set_index(["score", "split", "kind"]).P
    after = probe_scores(probes_after).set_index(["score", "split", "kind"]).P
    rows = [
        {
            **key,
            "metric": "acquisition",
            "score": c,
            "split": s,
            "kind": k,
            "before": before[(c, s, k)],
            "after": after[(c, s, k)],
            "value": acquisition(before[(c, s, k)], after[(c, s, k)]),
        }
        for c, s, k in before.index
    ]
    d_before, d_after = downstream_score(downstream_before), downstream_score(downstream_after)
    rows.append(
        {
            **key,
            "metric": "forgetting",
            "score": None,
            "split": None,
            "kind": None,
            "before": d_before,
            "after": d_after,
            "value": forgetting(d_before, d_after),
        }
    )
    return rows


def _bootstrap_ci(x: np.ndarray, y: np.ndarray, method: str, seed: int, n_resamples: int) -> tuple[float, float]:
    """Percentile 95% CI over paired resamples of the steps; resamples with a constant side (no
    correlation defined) are left out rather than turning the interval into NaN."""

    def statistic(a, b):
        if np.ptp(a) == 0 or np.ptp(b) == 0:
            return np.nan
        return stats.pearsonr(a, b).statistic if method == "pearson" else stats.spearmanr(a, b).statistic

    with warnings.catch_warnings():  # scipy warns when the resampled r is constant (e.g. a perfect rank order)
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap(
            (x, y),
            statistic,
            paired=True,
            vectorized=False,
            n_resamples=n_resamples,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    low, high = np.nanpercentile(result.bootstrap_distribution, [2.5, 97.5])
    return float(low), float(high)


def correlate(x: np.ndarray, y: np.ndarray, seed: int = 0, n_resamples: int = 2000) -> list[dict]:
    """Pearson and Spearman r with p-values and percentile-bootstrap 95% CIs (NaN below 3 points)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    out = []
    for method, fn in (("pearson", stats.pearsonr), ("spearman", stats.spearmanr)):
        if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
            r = p = low = high = np.nan
        else:
            res = fn(x, y)
            r, p = float(res.statistic), float(res.pvalue)
            low, high = _bootstrap_ci(x, y, method, seed, n_resamples)
        out.append({"method": method, "r": r, "p_value": p, "ci_low": low, "ci_high": high, "n": len(x)})
    return out


def correlations(
    entropy: pd.DataFrame,
    continual: pd.DataFrame,
    x_metrics=("knowledge_entropy",),
    variant: str = "original",
    seed: int = 0,
) -> pd.DataFrame:
    """Across steps, per (model, run): each whole-model entropy metric vs acquisition and forgetting.

    Acquisition is the total over splits and probe kinds (split and kind ``all``).
    """
    whole = entropy[entropy.layer.isna()].pivot_table(index=["model", "step"], columns="metric", values="value")
    rows = continual[
        (continual.variant == variant)
        & ((continual.metric == "forgetting") | ((continual.split == ALL) & (continual.kind == ALL)))
    ]
    ys = rows.pivot_table(index=["model", "run", "step"], columns="metric", values="value").reset_index()
    out = []
    for (model, run), group in ys.groupby(["model", "run"], sort=True):
        group = group.join(whole, on=["model", "step"]).sort_values("step")
        for x in x_metrics:
            for y in ("acquisition", "forgetting"):
                for res in correlate(group[x].to_numpy(), group[y].to_numpy(), seed=seed):
                    out.append({"model": model, "run": run, "x": x, "y": y, **res})
    return pd.DataFrame(out, columns=CORRELATION_COLUMNS)
