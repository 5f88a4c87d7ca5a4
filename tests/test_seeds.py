"""Seeds as a grid dimension: run names, intervals over seeds and the two-stage bootstrap, on hand-made
tables."""

import itertools

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from kentropy.analysis.continual_tables import resuscitation_table, table2, table2_markdown
from kentropy.analysis.outcomes import correlate, correlations, mean_interval
from kentropy.core.layout import parse_run_name, run_name
from kentropy.core.plan import Run, run_names

from .conftest import ROOT


def test_run_names_carry_the_seed_unless_it_is_the_global_one():
    assert run_name("baseline", 0, 0) == "baseline" and run_name("baseline", 2, 0) == "baseline-seed2"
    assert parse_run_name("baseline-seed2", 0) == ("baseline", 2) and parse_run_name("baseline", 5) == ("baseline", 5)
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    config["continual"]["runs"]["baseline"]["seeds"] = [0, 1, 2]
    config["continual"]["seeds"] = [0, 7]
    names = run_names(config)
    assert names[:3] == ["baseline", "baseline-seed1", "baseline-seed2"]
    assert [n for n in names if n.startswith("general")] == ["general", "general-seed7"]
    runs = [Run.from_config(config, n) for n in names[:3]]
    assert [(r.run, r.seed) for r in runs] == [("baseline", 0), ("baseline", 1), ("baseline", 2)]
    # Each seed draws its own data order and injection rows and seeds the trainer; nothing else changes.
    assert len({tuple(sorted(r.stream_param().items())) for r in runs}) == 3
    assert {r.seed for r in runs} == {0, 1, 2} and len({r.tokens for r in runs}) == 1


def test_mean_interval_is_the_student_t_interval():
    x = np.array([2.0, 3.5, 1.0, 4.0])
    mean, low, high = mean_interval(x)
    sd = np.sqrt(((x - x.mean()) ** 2).sum() / 3)
    half = stats.t.ppf(0.975, 3) * sd / 2
    assert (mean, low, high) == pytest.approx((2.625, 2.625 - half, 2.625 + half), rel=1e-12)
    one = mean_interval([1.5])
    assert one[0] == 1.5 and np.isnan(one[1]) and np.isnan(one[2])


def continual(values: dict) -> pd.DataFrame:
    """Acquisition and forgetting rows: ``values[(run, step, seed)] = (A, F)``, P and D consistent with them."""
    rows = []
    for (run, step, seed), (a, f) in values.items():
        key = {"model": "m", "trajectory": 0, "step": step, "variant": "original", "run": run, "seed": seed}
        rows.append({**key, "metric": "acquisition", "score": "per_token", "split": "all", "kind": "all",
                     "before": -4.0, "after": -4.0 + 0.04 * a, "value": a})  # fmt: skip
        rows.append({**key, "metric": "forgetting", "score": None, "split": None, "kind": None,
                     "before": 50.0, "after": 50.0 - 0.5 * f, "value": f})  # fmt: skip
    return pd.DataFrame(rows)


def test_table2_reports_the_mean_and_interval_over_seeds():
    a = {(10, 0): 20.0, (10, 1): 24.0, (10, 2): 19.0, (20, 0): 12.0, (20, 1): 12.5, (20, 2): 10.0}
    table = table2(continual({("base", step, seed): (value, 5.0 + seed) for (step, seed), value in a.items()}))
    cell = table[(table.quantity == "acquisition (%)") & (table.step == 10)].iloc[0]
    expected = mean_interval([20.0, 24.0, 19.0])
    assert (cell["mean"], cell.ci_low, cell.ci_high, cell.seeds) == pytest.approx((*expected, 3))
    forgetting = table[(table.quantity == "forgetting (%)") & (table.step == 20)].iloc[0]
    assert forgetting["mean"] == pytest.approx(6.0)
    text = table2_markdown(table)
    line = next(row for row in text.splitlines() if "| base | acquisition (%), 1 trajectory × 3 seeds |" in row)
    assert f"{expected[0]:.3f} ± {(expected[2] - expected[1]) / 2:.3f}" in line


def test_resuscitation_table_averages_seeds_per_variant():
    values = {}
    for variant, base in (("original", 10.0), ("resus-p50-q2", 14.0)):
        for seed, noise in enumerate([0.0, 1.0, -1.0]):
            values[(variant, seed)] = base + noise
    rows = []
    for (variant, seed), a in values.items():
        part = continual({("base", 30, seed): (a, 2.0)})
        rows.append(part.assign(variant=variant))
    entropy = pd.DataFrame({"model": "m", "trajectory": 0, "step": 30, "variant": ["original", "resus-p50-q2"],
                            "metric": "knowledge_entropy", "layer": np.nan, "value": [3.0, 3.4]})  # fmt: skip
    table = resuscitation_table(entropy, pd.concat(rows, ignore_index=True), ["base"]).set_index("variant")
    assert table.loc["resus-p50-q2", "A"] == pytest.approx(14.0) and table.loc["original", "seeds"] == 3
    assert (table.loc["original", "A_ci_low"], table.loc["original", "A_ci_high"]) == pytest.approx(
        mean_interval([10.0, 11.0, 9.0])[1:]
    )
    assert table.loc["resus-p50-q2", ["p", "q", "knowledge_entropy"]].tolist() == [50, 2.0, 3.4]


def _exact_two_stage(x, ys, method):
    """Every outcome of the two-stage bootstrap, enumerated, with its probability: (r values, weights).
    Each step's seed draws (all ordered draws with replacement) are equally likely, so each drawn step
    contributes one of its draws' means, uniformly."""
    n = len(x)
    draw_means = [np.array([y[list(d)].mean() for d in itertools.product(range(len(y)), repeat=len(y))]) for y in ys]
    rs, weights = [], []
    for steps in itertools.product(range(n), repeat=n):
        xs = x[list(steps)]
        if np.ptp(xs) == 0:
            continue
        options = [draw_means[i] for i in steps]
        means = np.array(list(itertools.product(*options)))  # every combination of the drawn steps' means
        keep = np.ptp(means, axis=1) > 0
        a, b = np.broadcast_to(xs, means.shape)[keep], means[keep]
        if method == "spearman":
            a, b = stats.rankdata(a, axis=1), stats.rankdata(b, axis=1)
        da, db = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
        rs.append((da * db).sum(1) / np.sqrt((da * da).sum(1) * (db * db).sum(1)))
        weights.append(np.full(keep.sum(), 1.0 / len(means)))
    return np.concatenate(rs), np.concatenate(weights)


def _weighted_quantile(values, weights, q):
    order = np.argsort(values)
    cdf = np.cumsum(weights[order]) / weights.sum()
    return values[order][np.searchsorted(cdf, q)]


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_two_stage_bootstrap_matches_exact_enumeration(method):
    """The Monte Carlo interval against the exact bootstrap distribution (4 steps x 2 seeds, every draw of
    steps and of seeds within them enumerated), and the point estimate on the seed means."""
    x = np.array([4.0, 3.0, 2.0, 1.0])
    ys = [np.array([30.0, 24.0]), np.array([18.0, 26.0]), np.array([15.0, 12.0]), np.array([11.0, 3.0])]
    res = next(r for r in correlate(x, ys, seed=1, n_resamples=200_000) if r["method"] == method)
    means = np.array([y.mean() for y in ys])
    reference = stats.pearsonr(x, means) if method == "pearson" else stats.spearmanr(x, means)
    assert res["r"] == pytest.approx(reference.statistic, rel=1e-12) and res["seeds"] == 2 and res["n"] == 4
    assert res["p_value"] == pytest.approx(reference.pvalue, rel=1e-9)
    rs, weights = _exact_two_stage(x, ys, method)
    low, high = (_weighted_quantile(rs, weights, q) for q in (0.025, 0.975))
    assert res["ci_low"] == pytest.approx(low, abs=0.01) and res["ci_high"] == pytest.approx(high, abs=0.01)


def test_seed_spread_widens_the_correlation_interval():
    x = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
    means = np.array([30.0, 26.0, 27.0, 20.0, 15.0, 14.0])
    tight = correlate(x, [np.array([m, m, m]) for m in means], seed=0)[0]
    spread = correlate(x, [np.array([m - 6, m, m + 6]) for m in means], seed=0)[0]
    assert tight["r"] == pytest.approx(spread["r"])
    assert spread["ci_high"] - spread["ci_low"] > tight["ci_high"] - tight["ci_low"]


def test_correlations_average_seeds_within_steps():
    steps, ke = [10, 20, 30, 40], [4.0, 3.0, 2.5, 1.0]
    entropy = pd.DataFrame(
        {"model": "m", "trajectory": 0, "step": steps, "metric": "knowledge_entropy", "layer": np.nan, "value": ke}
    )
    a = {10: [30.0, 28.0], 20: [20.0, 23.0], 30: [22.0, 21.0], 40: [5.0, 9.0]}
    table = continual({("base", s, seed): (v, 1.0 + s / 10) for s, vs in a.items() for seed, v in enumerate(vs)})
    out = correlations(entropy, table, ["knowledge_entropy"]).set_index(["y", "method"])
    pearson = out.loc[("acquisition", "pearson")]
    assert pearson.r == pytest.approx(stats.pearsonr(ke, [np.mean(v) for v in a.values()]).statistic)
    assert pearson.seeds == 2 and pearson.n == 4 and "seeds within" in pearson.ci_method


def _bands(ax) -> int:
    """Filled bands drawn on ``ax`` (seaborn's error bands and ours are PolyCollections)."""
    from matplotlib.collections import PolyCollection

    return sum(isinstance(c, PolyCollection) and len(c.get_paths()) > 0 for c in ax.collections)


@pytest.mark.parametrize("seeds", [1, 3])
def test_figures_band_the_interval_over_seeds(seeds):
    from kentropy.report import figures

    values = {("base", step, seed): (20.0 - step / 10 + 2 * seed, 5.0 + seed) for step in (10, 20, 30)
              for seed in range(seeds)}  # fmt: skip
    fig = figures.figure4(continual(values), "base")
    assert (_bands(fig.axes[2]) > 0) == (seeds > 1) and "seed" in fig._suptitle.get_text()
    rows = [continual({("base", 30, s): (a + s, 2.0 + s)}).assign(variant=v) for v, a in (("original", 10.0),
            ("resus-p50-q2", 14.0), ("resus-p50-q3", 15.0)) for s in range(seeds)]  # fmt: skip
    entropy = pd.DataFrame({"model": "m", "trajectory": 0, "step": 30,
                            "variant": ["original", "resus-p50-q2", "resus-p50-q3"],
                            "metric": "knowledge_entropy", "layer": np.nan, "value": [3.0, 3.4, 3.5]})  # fmt: skip
    table = resuscitation_table(entropy, pd.concat(rows, ignore_index=True), ["base"])
    fig = figures.resuscitation_grid(table, "q", 50, [30])
    assert (_bands(fig.axes[0]) > 0) == (seeds > 1)
