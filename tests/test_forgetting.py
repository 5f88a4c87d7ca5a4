"""Forgetting curves and their decay-exponent fits (kentropy.analysis.forgetting), on hand-made tables; the fit
against a brute-force least squares with one dummy column per item (float64, every quantity checked)."""

import numpy as np
import pandas as pd
import pytest

from kentropy.analysis.continual_tables import table2, table2_markdown
from kentropy.analysis.forgetting import curve_points, decay_fit, fit, item_curves, retention_scores
from kentropy.analysis.outcomes import correlations, probe_scores
from kentropy.core.vocabulary import PROBE_COLUMNS
from kentropy.report.figures import forgetting_curves

from .test_seeds import continual


def brute_force(t, P, item):
    """OLS of P on [one dummy per item, ln t] by lstsq: slope, its classical standard error, within R²."""
    items = sorted(set(item))
    X = np.zeros((len(P), len(items) + 1))
    for row, name in enumerate(item):
        X[row, items.index(name)] = 1.0
    X[:, -1] = np.log(t)
    beta, *_ = np.linalg.lstsq(X, P, rcond=None)
    residual = P - X @ beta
    sigma2 = residual @ residual / (len(P) - X.shape[1])
    cov = sigma2 * np.linalg.inv(X.T @ X)
    within = P - np.array([P[np.array(item) == name].mean() for name in item])
    return beta[-1], np.sqrt(cov[-1, -1]), 1 - residual @ residual / (within @ within), beta[:-1].mean()


def test_decay_fit_is_the_within_item_least_squares_slope():
    rng = np.random.default_rng(0)
    item = ["a"] * 5 + ["b"] * 4 + ["c"] * 6
    t = np.concatenate([[1, 2, 4, 8, 16], [3, 6, 12, 24], [1, 2, 3, 5, 8, 13]]).astype(float)
    offsets = {"a": -2.0, "b": -3.5, "c": -1.0}
    P = np.array([offsets[i] for i in item]) - 0.3 * np.log(t) + rng.normal(0, 0.05, len(t))
    got = decay_fit(t, P, item)
    slope, se, r2, intercept = brute_force(t, P, item)
    assert got["exponent"] == pytest.approx(-slope, rel=1e-10) and got["se"] == pytest.approx(se, rel=1e-10)
    assert got["r2"] == pytest.approx(r2, rel=1e-10) and got["intercept"] == pytest.approx(intercept, rel=1e-10)
    assert (got["items"], got["points"], got["t_min"], got["t_max"]) == (3, 15, pytest.approx(1.0), pytest.approx(24.0))


def test_decay_fit_recovers_an_exact_power_law_and_drops_single_step_items():
    t = np.array([1.0, 10.0, 100.0, 5.0, 50.0, 7.0])
    item = ["x", "x", "x", "y", "y", "z"]  # z is scored at one t only: no slope information
    P = np.array([-1.0, -1.0, -1.0, -2.0, -2.0, -9.0]) - 0.25 * np.log(t)
    got = decay_fit(t, P, item)
    assert got["exponent"] == pytest.approx(0.25, abs=1e-12) and got["se"] == pytest.approx(0.0, abs=1e-12)
    assert got["r2"] == pytest.approx(1.0) and (got["items"], got["points"]) == (2, 5)
    nothing = decay_fit([3.0, 4.0], [-1.0, -2.0], ["u", "v"])
    assert np.isnan(nothing["exponent"]) and nothing["items"] == 0


def probes(scores: dict) -> pd.DataFrame:
    """Per-probe retention rows: ``scores[(step, split, paragraph, kind, probe)] = per_token`` (released = 2x)."""
    rows = [{"step": step, "split": split, "paragraph": paragraph, "kind": kind, "probe": probe,
             "per_token": value, "released": 2 * value}
            for (step, split, paragraph, kind, probe), value in scores.items()]  # fmt: skip
    return pd.DataFrame(rows, columns=PROBE_COLUMNS)


MANIFEST = pd.DataFrame(
    {"step": [2, 2, 4, 4, 6, 6], "row": [0, 1, 0, 1, 0, 1], "split": ["paraphrase", "once"] * 3,
     "paragraph": [0, 0, 0, 1, 0, 2], "paraphrase": [0, 0, 1, 0, 2, 0], "n_tokens": 9}
)  # fmt: skip


def test_item_curves_count_steps_from_each_items_last_injection():
    scores = {}
    for step in (3, 5, 6):
        for split, paragraph in (("paraphrase", 0), ("once", 0), ("once", 1), ("once", 2)):
            for probe in (0, 1):
                scores[(step, split, paragraph, "memorization", probe)] = -float(step + paragraph + probe)
    curves = item_curves(probes(scores), MANIFEST)
    per_token = curves[curves.score == "per_token"]
    # paraphrase 0 was last injected in step 6 and once 2 in step 6: scored at t = 0 only, so absent.
    assert set(zip(per_token.split, per_token.paragraph)) == {("once", 0), ("once", 1)}
    once0 = per_token[per_token.paragraph == 0].set_index("t").P
    assert once0.to_dict() == {1: -3.5, 3: -5.5, 4: -6.5}  # steps 3, 5, 6 after step 2; mean of probes 0 and 1
    once1 = per_token[per_token.paragraph == 1].set_index("t").P
    assert once1.to_dict() == {1: -6.5, 2: -7.5}
    released = curves[curves.score == "released"].set_index(["paragraph", "t"]).P
    assert released[(0, 1)] == -7.0


def test_fit_and_curve_points_cover_every_cell():
    scores = {}
    for step in (3, 5, 6):
        for paragraph in (0, 1):
            for kind in ("memorization", "semantic"):
                scores[(step, "once", paragraph, kind, 0)] = (
                    -1.0 - paragraph - 0.5 * np.log(max(step - 2 * (paragraph + 1), 1))
                )
    curves = item_curves(probes(scores), MANIFEST)
    fits = fit(curves)
    cells = {(split, kind) for split in ("once", "all") for kind in ("memorization", "semantic", "all")}
    assert set(zip(fits.split, fits.kind)) == cells
    per_token = fits[fits.score == "per_token"].set_index(["split", "kind"])
    assert per_token.exponent.to_numpy() == pytest.approx(0.5)
    assert per_token.loc[("all", "all"), "items"] == 4 and per_token.loc[("all", "all"), "points"] == 10
    assert fits[fits.score == "released"].exponent.to_numpy() == pytest.approx(1.0)
    points = curve_points(curves)
    at1 = points[(points.split == "all") & (points.kind == "all") & (points.score == "per_token") & (points.t == 1)]
    assert at1.P.item() == pytest.approx(np.mean([-1.0, -1.0, -2.0, -2.0])) and at1["items"].item() == 4


def test_retention_scores_are_probe_scores_per_step():
    scores = {
        (s, sp, p, "memorization", 0): -float(s + p) for s in (3, 6) for sp in ("once", "paraphrase") for p in (0, 1)
    }
    table = retention_scores(probes(scores))
    frame = probes(scores)
    for step in (3, 6):
        expected = probe_scores(frame[frame.step == step]).P.to_numpy()
        assert table[table.step == step].P.to_numpy() == pytest.approx(expected)


def fits_table(values: dict) -> pd.DataFrame:
    """Fit rows of split and kind ``all``: ``values[(step, seed)] = exponent``."""
    return pd.DataFrame([{"model": "m", "trajectory": 0, "step": step, "variant": "original", "run": "base",
                          "seed": seed,
                          "split": "all", "kind": "all", "score": "per_token", "exponent": a}
                         for (step, seed), a in values.items()])  # fmt: skip


def test_table2_and_correlations_report_the_exponent_of_the_runs_that_have_one():
    cont = continual({(run, step, seed): (10.0 + step, 1.0) for run in ("base", "other") for step in (10, 20, 30)
                      for seed in (0, 1)})  # fmt: skip
    a = {(10, 0): 0.30, (10, 1): 0.34, (20, 0): 0.20, (20, 1): 0.22, (30, 0): 0.10, (30, 1): 0.14}
    table = table2(cont, fits_table(a))
    decay = table[table.quantity == "decay exponent a (forgetting curve)"]
    assert set(decay.run) == {"base"} and decay.set_index("step")["mean"].to_dict() == pytest.approx(
        {10: 0.32, 20: 0.21, 30: 0.12}
    )
    assert "| m | base | decay exponent a (forgetting curve), 1 trajectory × 2 seeds |" in table2_markdown(table)
    entropy = pd.DataFrame({"model": "m", "trajectory": 0, "step": [10, 20, 30], "metric": "knowledge_entropy",
                            "layer": np.nan,
                            "value": [3.0, 2.5, 2.0]})  # fmt: skip
    corr = correlations(entropy, cont, ["knowledge_entropy"], fits=fits_table(a))
    base = corr[(corr.run == "base") & (corr.method == "pearson")].set_index("y")
    assert set(base.index) == {"acquisition", "forgetting", "decay_exponent"}
    assert base.loc["decay_exponent", "r"] == pytest.approx(np.corrcoef([3.0, 2.5, 2.0], [0.32, 0.21, 0.12])[0, 1])
    assert "decay_exponent" not in set(corr[corr.run == "other"].y)


def test_forgetting_figure_draws_points_and_fits():
    scores = {}
    for step in (3, 5, 6):
        for paragraph in (0, 1):
            scores[(step, "once", paragraph, "memorization", 0)] = -1.0 - 0.5 * np.log(
                max(step - 2 * (paragraph + 1), 1)
            )
    curves = item_curves(probes(scores), MANIFEST)
    keys = {"model": "m", "trajectory": 0, "variant": "original", "run": "base"}
    points = pd.concat([curve_points(curves).assign(**keys, step=s, seed=d) for s in (10, 20) for d in (0, 1)])
    fits = pd.concat([fit(curves).assign(**keys, step=s, seed=d) for s in (10, 20) for d in (0, 1)])
    fig = forgetting_curves(points[points.score == "per_token"], fits[fits.score == "per_token"])
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and len(ax.lines) >= 2  # a fitted line per checkpoint
    assert "a = 0.500" in " ".join(t.get_text() for t in ax.get_legend().get_texts())
