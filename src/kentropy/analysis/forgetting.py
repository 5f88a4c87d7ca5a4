"""Forgetting curves after Chang et al. (2024): how fast an injected item's log-probability decays with the
training steps since its last injection, fitted per trained run.

An item is one paragraph's probes of one kind. Its curve is P(t), the mean over its probes of a probe score
(a log-probability per target token), at the scoring steps t >= 1 steps after the item's last injection.
The fit is P_i(t) = c_i - a ln t: one intercept per item (items differ in how well they were learned), one
decay exponent ``a`` shared by the items of a (split, kind) cell. Since P is a log-probability, the
probability falls as a power law t^(-a) in steps. Chang et al. fit their retainability (the share of the
log-probability gain left, which needs the score at the local acquisition maximum right after the
injection, a step our schedule does not score) linearly in log t; see docs/design.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.vocabulary import SCORES
from ..sources.fictional_knowledge import ALL
from .outcomes import probe_scores

#: Columns of ``fit`` results, after the key columns.
FIT_COLUMNS = ["split", "kind", "score", "exponent", "se", "intercept", "r2", "items", "points", "t_min", "t_max"]
#: Fit columns that are NaN by definition (``decay_fit``): no item scored at two t, no residual degree of
#: freedom, or no variance to explain.
FIT_MISSING = ("exponent", "se", "intercept", "r2", "t_min", "t_max")
#: Columns of ``curve_points``, after the key columns.
CURVE_COLUMNS = ["split", "kind", "score", "t", "P", "items"]


def retention_scores(probes: pd.DataFrame) -> pd.DataFrame:
    """The retention curve of one run: P per scoring step, split, kind and score (``probe_scores`` per step)."""
    per_step = [probe_scores(group).assign(step=step) for step, group in probes.groupby("step", sort=True)]
    return pd.concat(per_step, ignore_index=True)[["step", "split", "kind", "score", "P"]]


def item_curves(probes: pd.DataFrame, manifest: pd.DataFrame) -> pd.DataFrame:
    """Long: split, paragraph, kind, score, t (steps since the item's last injection, >= 1) and P, the mean
    of the item's probes. ``manifest``: the run's injections (kentropy.training.streams.MANIFEST_COLUMNS)."""
    last = manifest.groupby(["split", "paragraph"], as_index=False).step.max().rename(columns={"step": "injected"})
    items = probes.groupby(["step", "split", "paragraph", "kind"], as_index=False)[list(SCORES)].mean()
    items = items.merge(last, on=["split", "paragraph"], how="inner")
    items = items.assign(t=items.step - items.injected)
    items = items[items.t >= 1]
    long = items.melt(["split", "paragraph", "kind", "t"], list(SCORES), var_name="score", value_name="P")
    return long.sort_values(["score", "split", "kind", "paragraph", "t"], ignore_index=True)


def decay_fit(t, P, item) -> dict:
    """Least squares of P = c_item - exponent * ln t (the within-item slope). Items scored at a single t
    carry no slope information and are left out; NaN exponent when no item has two. ``se``: the slope's
    standard error; ``intercept``: the mean item intercept, so the fitted mean curve is
    intercept - exponent * ln t; ``r2``: the share of the within-item variance the slope explains."""
    frame = pd.DataFrame({"x": np.log(np.asarray(t, dtype=np.float64)), "y": np.asarray(P, dtype=np.float64),
                          "item": list(item)})  # fmt: skip
    frame = frame[frame.groupby("item").x.transform("nunique") >= 2]
    out = {"exponent": np.nan, "se": np.nan, "intercept": np.nan, "r2": np.nan, "items": frame.item.nunique(),
           "points": len(frame), "t_min": np.nan, "t_max": np.nan}  # fmt: skip
    if frame.empty:
        return out
    by_item = frame.groupby("item")[["x", "y"]]
    means, item_means = by_item.transform("mean"), by_item.mean()
    dx, dy = frame.x - means.x, frame.y - means.y
    slope = float((dx * dy).sum() / (dx * dx).sum())
    residual = dy - slope * dx
    dof = len(frame) - out["items"] - 1
    ssr, sst = float((residual**2).sum()), float((dy**2).sum())
    intercepts = item_means.y - slope * item_means.x
    out.update(
        exponent=-slope,
        se=float(np.sqrt(ssr / dof / (dx * dx).sum())) if dof > 0 else np.nan,
        intercept=float(intercepts.mean()),
        r2=1 - ssr / sst if sst > 0 else np.nan,
        t_min=float(np.exp(frame.x.min())),
        t_max=float(np.exp(frame.x.max())),
    )
    return out


def _cells(curves: pd.DataFrame):
    """(split, kind, rows) of every fitted cell: each split and kind, each split over all kinds, and all
    splits together (an item is a split, paragraph and kind)."""
    for split, by_split in [*curves.groupby("split", sort=True), (ALL, curves)]:
        for kind, rows in [*by_split.groupby("kind", sort=True), (ALL, by_split)]:
            yield split, kind, rows


def fit(curves: pd.DataFrame) -> pd.DataFrame:
    """``decay_fit`` per score definition and cell (``_cells``) of one run's ``item_curves``."""
    rows = []
    for score, by_score in curves.groupby("score", sort=True):
        for split, kind, sub in _cells(by_score):
            item = sub.split + "/" + sub.paragraph.astype(str) + "/" + sub.kind
            rows.append({"split": split, "kind": kind, "score": score, **decay_fit(sub.t, sub.P, item)})
    return pd.DataFrame(rows, columns=FIT_COLUMNS)


def curve_points(curves: pd.DataFrame) -> pd.DataFrame:
    """The mean curve of each cell (``_cells``): P averaged over the items scored t steps after their last
    injection, per t."""
    rows = []
    for score, by_score in curves.groupby("score", sort=True):
        for split, kind, sub in _cells(by_score):
            for t, at in sub.groupby("t", sort=True):
                rows.append({"split": split, "kind": kind, "score": score, "t": t, "P": at.P.mean(), "items": len(at)})
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)
