"""Acquisition (Eq. 4), forgetting (Eq. 5) and their correlation with knowledge entropy."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.layout import RUN_KEYS
from ..core.vocabulary import SCORES
from ..sources.fictional_knowledge import ALL

CONTINUAL_COLUMNS = [*RUN_KEYS, "metric", "score", "split", "kind", "before", "after", "value"]
#: The correlations of one trajectory (``correlations``) and their summary over trajectories
#: (``across_trajectories``): ``n`` steps, ``trajectories`` and the fewest continual ``seeds`` behind a step.
TRAJECTORY_CORRELATION_COLUMNS = [
    "model", "trajectory", "run", "x", "y", "method", "r", "p_value", "ci_low", "ci_high", "n", "seeds", "ci_method"
]  # fmt: skip
CORRELATION_COLUMNS = [
    "model", "run", "x", "y", "method", "r", "p_value", "ci_low", "ci_high", "n", "trajectories", "seeds", "ci_method"
]  # fmt: skip
#: Correlation columns that are NaN by definition below 3 steps or when either side is constant
#: (kentropy.core.io.write_table refuses NaN anywhere else).
CORRELATION_MISSING = ("r", "p_value", "ci_low", "ci_high")


def mean_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and the two-sided Student-t interval of the mean at ``level`` (across seeds): NaN bounds for
    a single value, where no spread can be estimated."""
    from scipy import stats  # here, not at the top: the training and evaluation jobs import this module

    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, np.nan, np.nan
    half = stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return mean, float(mean - half), float(mean + half)


def hierarchical_interval(values, trajectories, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and 95% interval of a quantity measured on several pretraining trajectories and, within each, on
    several continual seeds: the mean of the trajectory means, with the Student-t interval over those means
    (T - 1 degrees of freedom). In a nested design the spread of the trajectory means carries both sources,
    var = sigma_T^2 + sigma_S^2 / S, so this interval is exact for normal errors and equal seed counts (and
    does not need the two variances apart). With one trajectory it is the interval over that trajectory's
    seeds, which carries the seeds only."""
    x = pd.DataFrame({"trajectory": np.asarray(trajectories), "value": np.asarray(values, dtype=np.float64)})
    means = x.groupby("trajectory", sort=True).value.mean()
    return mean_interval(means if len(means) > 1 else x.value, level)


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


def decay_exponents(fits: pd.DataFrame, variant: str = "original") -> pd.DataFrame:
    """The reported forgetting-curve exponent of each trained run (kentropy.analysis.forgetting): the fit over all
    items (split and kind ``all``); key columns and ``a``."""
    overall = fits[(fits.variant == variant) & (fits.split == ALL) & (fits.kind == ALL)]
    return overall[[*RUN_KEYS, "exponent"]].rename(columns={"exponent": "a"})


#: How ``correlate`` draws its interval (written beside every interval in the correlations table).
CI_METHOD = "percentile bootstrap, 95%: steps resampled, then seeds within each drawn step"


def _rows_r(x: np.ndarray, y: np.ndarray, method: str) -> np.ndarray:
    """Pearson (or Spearman: Pearson on ranks) r of each row pair of two (resamples, steps) arrays; NaN
    where a row is constant."""
    if method == "spearman":
        from scipy import stats

        x, y = stats.rankdata(x, axis=1), stats.rankdata(y, axis=1)
    dx, dy = x - x.mean(1, keepdims=True), y - y.mean(1, keepdims=True)
    denominator = np.sqrt((dx * dx).sum(1) * (dy * dy).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (dx * dy).sum(1) / denominator
    constant = (np.ptp(x, axis=1) == 0) | (np.ptp(y, axis=1) == 0)
    return np.where(constant, np.nan, r)


def _bootstrap_ci(x: np.ndarray, ys: list[np.ndarray], method: str, seed: int, n_resamples: int) -> tuple[float, float]:
    """Two-stage percentile bootstrap of r(x, mean y): draw the steps with replacement, then within each
    drawn step its seeds with replacement, and correlate x with the resampled seed means. With one seed per
    step it is the paired bootstrap over steps. Resamples with a constant side (no r) are left out.
    (scipy.stats.bootstrap resamples one level only, hence this.)"""
    rng = np.random.default_rng(seed)
    counts = np.array([len(y) for y in ys])
    values = np.zeros((len(ys), counts.max()))
    for i, y in enumerate(ys):
        values[i, : len(y)] = y
    steps = rng.integers(0, len(x), (n_resamples, len(x)))
    n = counts[steps][..., None]  # seeds of each drawn step
    draws = np.floor(rng.random((n_resamples, len(x), counts.max())) * n).astype(int)  # seed indices < n
    used = np.arange(counts.max()) < n  # the first n draws of a step with n seeds
    means = (values[steps[..., None], draws] * used).sum(-1) / n[..., 0]
    low, high = np.nanpercentile(_rows_r(x[steps], means, method), [2.5, 97.5])
    return float(low), float(high)


def correlate(x, ys, seed: int = 0, n_resamples: int = 2000) -> list[dict]:
    """Pearson and Spearman r between ``x`` (one value per step) and the mean over seeds of ``ys`` (per
    step, an array of one value per seed, or a plain value), with p-values over the steps and 95%
    intervals from ``_bootstrap_ci`` (NaN below 3 steps)."""
    from scipy import stats

    x = np.asarray(x, dtype=np.float64)
    ys = [np.atleast_1d(np.asarray(y, dtype=np.float64)) for y in ys]
    means = np.array([y.mean() for y in ys])
    out = []
    for method, fn in (("pearson", stats.pearsonr), ("spearman", stats.spearmanr)):
        if len(x) < 3 or np.ptp(x) == 0 or np.ptp(means) == 0:
            r = p = low = high = np.nan
        else:
            res = fn(x, means)
            r, p = float(res.statistic), float(res.pvalue)
            low, high = _bootstrap_ci(x, ys, method, seed, n_resamples)
        seeds = min(len(y) for y in ys) if ys else 0
        out.append({"method": method, "r": r, "p_value": p, "ci_low": low, "ci_high": high, "n": len(x),
                    "seeds": seeds, "ci_method": CI_METHOD})  # fmt: skip
    return out


def correlations(
    entropy: pd.DataFrame,
    continual: pd.DataFrame,
    x_metrics,
    variant: str = "original",
    seed: int = 0,
    fits: pd.DataFrame | None = None,
    checkpoints: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Across steps, per (model, trajectory, run): each whole-model entropy metric vs acquisition, forgetting
    and (for the runs in ``fits``) the forgetting-curve decay exponent, the latter averaged over seeds
    (``correlate``: the interval accounts for both the steps and the seeds), and vs any quantity of the
    checkpoints themselves (``checkpoints``: long model, trajectory, step, run, seed, metric, value, in the
    order of first appearance; kentropy.analysis.fact_tables.checkpoint_outcomes).
    A correlation across steps is a property of one pretraining trajectory; ``across_trajectories``
    summarises them.

    Acquisition is the total over splits and probe kinds, the exponent the fit over all items (split and
    kind ``all``).
    """

    whole = entropy[entropy.layer.isna()].pivot_table(
        index=["model", "trajectory", "step"], columns="metric", values="value"
    )
    rows = continual[
        (continual.variant == variant)
        & ((continual.metric == "forgetting") | ((continual.split == ALL) & (continual.kind == ALL)))
    ]
    if fits is not None:
        exponents = decay_exponents(fits, variant).rename(columns={"a": "value"}).assign(metric="decay_exponent")
        rows = pd.concat([rows, exponents], ignore_index=True)
    if checkpoints is not None:
        rows = pd.concat([rows, checkpoints], ignore_index=True)
    index = ["model", "trajectory", "run", "step", "seed"]
    ys = rows.pivot_table(index=index, columns="metric", values="value").reset_index()
    # The outcomes of a run, on any of its trajectories: every trajectory gets a row for each (NaN r where it
    # has fewer than 3 steps with a value), so the summary over trajectories sees them all.
    own = () if checkpoints is None else tuple(dict.fromkeys(checkpoints.metric))
    candidates = ("acquisition", "forgetting", "decay_exponent", *own)
    present = {
        key: [y for y in candidates if y in group and group[y].notna().any()]
        for key, group in ys.groupby(["model", "run"], sort=True)
    }
    out = []
    for (model, trajectory, run), group in ys.groupby(["model", "trajectory", "run"], sort=True):
        for x in x_metrics:
            for y in present[(model, run)]:
                steps = sorted(group.step[group[y].notna()].unique())
                xs = whole[x].reindex([(model, trajectory, s) for s in steps]).to_numpy()
                per_step = [group[group.step == s][y].dropna().to_numpy() for s in steps]
                for res in correlate(xs, per_step, seed=seed):
                    out.append({"model": model, "trajectory": trajectory, "run": run, "x": x, "y": y, **res})
    return pd.DataFrame(out, columns=TRAJECTORY_CORRELATION_COLUMNS)


#: How ``across_trajectories`` draws its interval over several trajectories.
ACROSS_METHOD = "Student-t 95% over the trajectories' Fisher z = artanh r, back-transformed"


def across_trajectories(per_trajectory: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """The correlations of ``correlations`` summarised over trajectories, per (model, run, x, y, method): with
    two or more trajectories with an r, r = tanh of the mean Fisher z over them, its interval the Student-t
    interval of that mean (T - 1 degrees of freedom) back-transformed, and the p-value the one-sample t-test
    of z = 0: each trajectory is one independent replicate of the whole experiment, so their spread is the
    uncertainty of "another pretraining would show it" (it carries the steps' and seeds' noise inside each
    r). With one trajectory, its row (``CI_METHOD``'s bootstrap over steps and seeds)."""
    from scipy import stats

    out = []
    keys = ["model", "run", "x", "y", "method"]
    for key, group in per_trajectory.groupby(keys, sort=False):  # in the order of the metrics registry
        present = group[group.r.notna()]
        behind = present if len(present) else group  # the trajectories the summary rests on
        row = {**dict(zip(keys, key)), "n": int(behind.n.max()), "trajectories": len(present),
               "seeds": int(behind.seeds.min())}  # fmt: skip
        if len(present) < 2:
            only = present if len(present) else group.iloc[:1]
            out.append({**row, **only.iloc[0][["r", "p_value", "ci_low", "ci_high", "ci_method"]].to_dict()})
            continue
        z = np.arctanh(np.clip(present.r.to_numpy(dtype=np.float64), -1 + 1e-12, 1 - 1e-12))
        mean, low, high = mean_interval(z, level)
        p = stats.ttest_1samp(z, 0.0).pvalue if np.ptp(z) > 0 else np.nan
        out.append({**row, "r": float(np.tanh(mean)), "p_value": float(p), "ci_low": float(np.tanh(low)),
                    "ci_high": float(np.tanh(high)), "ci_method": ACROSS_METHOD})  # fmt: skip
    return pd.DataFrame(out, columns=CORRELATION_COLUMNS)
