"""Acquisition, forgetting and correlations on hand-made tables."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from kentropy.analysis.outcomes import (
    acquisition,
    continual_rows,
    correlate,
    correlations,
    forgetting,
    probe_scores,
    reported,
)


def test_equations_4_and_5():
    assert acquisition(-4.0, -3.0) == pytest.approx(25.0)
    assert acquisition(-2.0, -3.0) == pytest.approx(-50.0)
    assert forgetting(0.5, 0.4) == pytest.approx(20.0)
    assert forgetting(0.5, 0.55) == pytest.approx(-10.0)


def probes(values: dict[str, list[list[float]]]) -> pd.DataFrame:
    """{split: [[paragraph 0 scores], ...]}, kinds cycling memorization/semantic/composition; the released
    score is a tenth of the per-token one."""
    kinds = ["memorization", "semantic", "composition"]
    return pd.DataFrame(
        [
            {"split": s, "paragraph": p, "kind": kinds[i % 3], "per_token": v, "released": v / 10}
            for s, paras in values.items()
            for p, vals in enumerate(paras)
            for i, v in enumerate(vals)
        ]
    )


def test_probe_scores_weight_splits_by_paragraphs():
    table = probe_scores(probes({"paraphrase": [[-1, -2, -3]], "once": [[-4, -5, -6], [-7, -8, -9]]}))
    released = table[table.score == "released"].set_index(["split", "kind"]).P
    p = table[table.score == "per_token"].set_index(["split", "kind"]).P
    pd.testing.assert_series_equal(released, p / 10)
    assert p[("paraphrase", "all")] == pytest.approx(-2.0)
    assert p[("once", "all")] == pytest.approx(-6.5)
    assert p[("once", "memorization")] == pytest.approx(-5.5)
    assert p[("all", "all")] == pytest.approx((1 * -2.0 + 2 * -6.5) / 3)
    assert p[("all", "semantic")] == pytest.approx((1 * -2.0 + 2 * -6.5) / 3)
    assert p[("all", "composition")] == pytest.approx((1 * -3.0 + 2 * -7.5) / 3)


def test_continual_rows():
    before = probes({"paraphrase": [[-4, -4, -4]], "once": [[-8, -8, -8]]})
    after = probes({"paraphrase": [[-2, -2, -2]], "once": [[-6, -6, -6]]})
    d_before = pd.DataFrame({"task": ["a", "b"], "value": [0.6, 0.4]})
    d_after = pd.DataFrame({"task": ["a", "b"], "value": [0.5, 0.3]})
    rows = pd.DataFrame(
        continual_rows(
            {"model": "m", "trajectory": 0, "step": 1, "variant": "original", "run": "r"},
            before,
            after,
            d_before,
            d_after,
        )
    )
    assert set(rows.score.dropna()) == {"per_token", "released"}
    assert len(reported(rows, "released")) == len(reported(rows, "per_token")) == 3 * 4 + 1  # + forgetting
    acq = reported(rows, "released")
    acq = acq[acq.metric == "acquisition"].set_index(["split", "kind"]).value
    assert acq[("paraphrase", "all")] == pytest.approx(50.0)
    assert acq[("once", "semantic")] == pytest.approx(25.0)
    assert acq[("all", "all")] == pytest.approx(100 * 2 / 6)
    fgt = rows[rows.metric == "forgetting"].iloc[0]
    assert (fgt.before, fgt.after, fgt.value) == pytest.approx((0.5, 0.4, 20.0))


def test_correlate_against_hand_formulas():
    x = np.array([3.0, 1.0, 4.0, 1.5, 5.0, 9.0])
    y = np.array([2.0, 7.0, 1.0, 8.0, 2.5, 0.5])
    pearson, spearman = correlate(x, y, seed=0, n_resamples=500)
    dx, dy = x - x.mean(), y - y.mean()
    assert pearson["r"] == pytest.approx((dx @ dy) / np.sqrt((dx @ dx) * (dy @ dy)), rel=1e-12)
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    drx, dry = rx - rx.mean(), ry - ry.mean()
    assert spearman["r"] == pytest.approx((drx @ dry) / np.sqrt((drx @ drx) * (dry @ dry)), rel=1e-12)
    # p-value of Pearson r from the t distribution with n - 2 degrees of freedom
    r, n = pearson["r"], len(x)
    t = r * np.sqrt((n - 2) / (1 - r * r))
    assert pearson["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), n - 2), rel=1e-9)
    for res in (pearson, spearman):
        assert res["n"] == 6 and -1 <= res["ci_low"] <= res["r"] <= res["ci_high"] <= 1


def test_correlate_needs_three_points():
    for res in correlate([1.0, 2.0], [2.0, 1.0]):
        assert np.isnan(res["r"]) and np.isnan(res["ci_low"]) and res["n"] == 2


def test_correlations_join_entropy_and_continual_by_step():
    steps = [10, 20, 30, 40]
    entropy = pd.DataFrame(
        {
            "model": "m",
            "trajectory": 0,
            "step": steps,
            "metric": "knowledge_entropy",
            "layer": np.nan,
            "value": [4.0, 3.0, 2.5, 1.0],
        }
    )
    rows = []
    for step, a, f in zip(steps, [30.0, 20.0, 22.0, 5.0], [1.0, 2.0, 3.0, 4.0]):
        key = {"model": "m", "trajectory": 0, "step": step, "variant": "original", "run": "base", "seed": 0}
        rows.append({**key, "metric": "acquisition", "split": "all", "kind": "all", "value": a})
        rows.append({**key, "metric": "acquisition", "split": "once", "kind": "all", "value": -99.0})  # ignored
        rows.append({**key, "metric": "forgetting", "split": None, "kind": None, "value": f})
    table = correlations(entropy, pd.DataFrame(rows), ["knowledge_entropy"]).set_index(["y", "method"])
    assert table.loc[("acquisition", "pearson"), "r"] == pytest.approx(
        stats.pearsonr([4.0, 3.0, 2.5, 1.0], [30.0, 20.0, 22.0, 5.0]).statistic
    )
    assert table.loc[("forgetting", "spearman"), "r"] == pytest.approx(-1.0)
    assert set(table.n) == {4}
