"""Per-checkpoint metrics as plug-ins: the sparsity reductions against float64 brute force, every registered
metric measured, tabled and drawn, and a metric registered here flowing through all three."""

from __future__ import annotations

import itertools
import math

import matplotlib
import numpy as np
import pandas as pd
import pytest

from kentropy.measurement.meters import METRICS, Metric, correlated, per_layer
from kentropy.measurement.meters.memory_use import DORMANT_THRESHOLD
from kentropy.measurement.meters.reductions import (
    coefficient_of_variation,
    dormant_fraction,
    gini_coefficient,
    hoyer_sparsity,
)
from kentropy.measurement.meters.registry import RegistryError, register_metric
from tests.conftest import random_sequences, tiny_model
from tests.test_entropy import REL, reference, run, value

matplotlib.use("Agg")


def hoyer_brute(x) -> float:
    """Hoyer (2004) by its definition, element by element."""
    l1 = sum(abs(v) for v in x)
    l2 = math.sqrt(sum(v * v for v in x))
    n = len(x)
    return (math.sqrt(n) - l1 / l2) / (math.sqrt(n) - 1)


def gini_brute(x) -> float:
    """The Gini coefficient as the mean absolute difference over every ordered pair, over twice the mean."""
    n = len(x)
    return sum(abs(a - b) for a, b in itertools.product(x, x)) / (2 * n * sum(x))


def gap_brute(x) -> float:
    """ln n minus the Shannon entropy of x / sum(x), term by term (0 log 0 = 0)."""
    total = sum(x)
    return math.log(len(x)) + sum(v / total * math.log(v / total) for v in x if v > 0)


def cv_brute(x) -> float:
    """Population standard deviation over the mean, element by element."""
    mean = sum(x) / len(x)
    return math.sqrt(sum((v - mean) ** 2 for v in x) / len(x)) / mean


def dormant_brute(x, tau=DORMANT_THRESHOLD) -> float:
    """The share of entries whose score x_i / mean(x) is at most tau."""
    mean = sum(x) / len(x)
    return sum(1 for v in x if v / mean <= tau) / len(x)


@pytest.mark.parametrize("seed", range(5))
def test_memory_use_reductions_match_their_definitions(seed):
    x = np.random.default_rng(seed).gamma(0.2 + 0.5 * seed, size=9 + 11 * seed)
    assert coefficient_of_variation(x) == pytest.approx(cv_brute(list(x)), rel=1e-12)
    assert dormant_fraction(x, DORMANT_THRESHOLD) == dormant_brute(list(x))
    flat, one_hot = np.full(8, 0.3), np.eye(8)[2]
    assert coefficient_of_variation(flat) == pytest.approx(0, abs=1e-15) and dormant_fraction(flat, 0.1) == 0
    assert coefficient_of_variation(one_hot) == pytest.approx(math.sqrt(7)) and dormant_fraction(one_hot, 0.1) == 7 / 8


@pytest.mark.parametrize("average", ["instance", "token"])
def test_per_layer_memory_use_matches_brute_force(average):
    """The lab's per-layer measures (docs/lab.md) from the materialised float64 reference's corpus-mean
    |coefficient| vectors: the gap summed over layers, the CV and dormant fraction averaged over them."""
    model = tiny_model("olmo")
    sequences = random_sequences(9, seed=5)
    table = run(model, sequences, batch_size=4, average=average).table()
    ref = reference(model, sequences, average)
    for name, brute, whole in (
        ("knowledge_entropy_gap", gap_brute, sum),
        ("coefficient_cv", cv_brute, lambda v: sum(v) / len(v)),
        ("dormant_fraction", dormant_brute, lambda v: sum(v) / len(v)),
    ):
        layers = [brute(list(row)) for row in ref["coef"]]
        for i, want in enumerate(layers):
            assert value(table, name, i) == pytest.approx(want, rel=REL, abs=1e-12), (name, i)
        assert value(table, name) == pytest.approx(whole(layers), rel=REL, abs=1e-12), name
    # The gap is ln m minus knowledge entropy, layer by layer.
    m = len(ref["coef"][0])
    for i in range(len(ref["coef"])):
        assert value(table, "knowledge_entropy_gap", i) == pytest.approx(
            math.log(m) - value(table, "knowledge_entropy", i), rel=1e-12
        )


@pytest.mark.parametrize("seed", range(5))
def test_sparsity_reductions_match_their_definitions(seed):
    x = np.random.default_rng(seed).gamma(0.3 + seed, size=7 + 13 * seed)
    assert hoyer_sparsity(x) == pytest.approx(hoyer_brute(list(x)), rel=1e-12)
    assert gini_coefficient(x) == pytest.approx(gini_brute(list(x)), rel=1e-12)


def test_sparsity_of_flat_and_one_hot_vectors():
    flat, one_hot = np.full(8, 0.3), np.eye(8)[2]
    assert hoyer_sparsity(flat) == pytest.approx(0, abs=1e-15) and gini_coefficient(flat) == pytest.approx(0, abs=1e-15)
    assert hoyer_sparsity(one_hot) == pytest.approx(1) and gini_coefficient(one_hot) == pytest.approx(7 / 8)
    assert hoyer_sparsity(5 * flat + one_hot) == pytest.approx(hoyer_brute(list(5 * flat + one_hot)))


@pytest.mark.parametrize("average", ["instance", "token"])
def test_sparsity_of_memory_use_matches_brute_force(average):
    """Each layer's corpus-mean |coefficient| vector, from the materialised float64 reference, reduced by the
    definitions above; the whole-model value is the mean over layers."""
    model = tiny_model("olmo")
    sequences = random_sequences(9, seed=3)
    table = run(model, sequences, batch_size=4, average=average).table()
    ref = reference(model, sequences, average)
    for name, brute in (("coefficient_hoyer", hoyer_brute), ("coefficient_gini", gini_brute)):
        layers = [brute(list(row)) for row in ref["coef"]]
        for i, want in enumerate(layers):
            assert value(table, name, i) == pytest.approx(want, rel=REL)
        assert value(table, name) == pytest.approx(sum(layers) / len(layers), rel=REL)


def test_every_registered_metric_is_tabled_drawn_and_correlated():
    from kentropy.report import figures

    table = run(tiny_model("olmo"), random_sequences(6, seed=1)).table()
    assert list(dict.fromkeys(table.metric)) == list(METRICS)
    for name, metric in METRICS.items():
        rows = table[table.metric == name]
        assert rows.layer.isna().sum() == 1 and rows.layer.notna().any() == per_layer(metric)
    entropy = pd.concat([table.assign(model="tiny", trajectory=0, step=s) for s in (10, 20)], ignore_index=True)
    fig = figures.figure3(entropy)
    assert [ax.get_title() for ax in fig.axes] == [m.title for m in METRICS.values()]
    fig8 = figures.figure8(entropy)
    assert len(fig8.axes) == sum(per_layer(m) for m in METRICS.values())
    assert correlated() == ["knowledge_entropy", "knowledge_entropy_relu", "coefficient_hoyer", "coefficient_gini"]


@pytest.fixture
def largest_share():
    """A metric registered as a plug-in would be (one Metric over an existing statistic), removed afterwards."""
    added = Metric(
        "largest_share",
        "abs_coefficients",
        lambda layer_sum, total: float(layer_sum.max() / layer_sum.sum()),
        max,
        "Largest share of memory use",
        "share",
        "the largest memory vector's share of a layer's |coefficient| mass, the largest over layers",
        correlate=True,
    )
    register_metric(added)
    yield added
    del METRICS[added.name]


def test_a_metric_registered_in_one_place_reaches_the_table_figure_3_and_the_correlations(largest_share):
    """The extension path of docs/design.md: the registration is the only change."""
    from kentropy.analysis.outcomes import correlations
    from kentropy.report import figures

    with pytest.raises(RegistryError, match="registered twice"):
        register_metric(largest_share)
    model = tiny_model("olmo")
    tables = [
        run(model, random_sequences(6, seed=s)).table().assign(model="tiny", trajectory=0, step=10 * s)
        for s in (1, 2, 3)
    ]
    entropy = pd.concat(tables, ignore_index=True)
    whole = entropy[(entropy.metric == "largest_share") & entropy.layer.isna()]
    assert len(whole) == 3 and ((whole.value > 0) & (whole.value <= 1)).all()
    assert figures.figure3(entropy).axes[-1].get_title() == "Largest share of memory use"
    continual = pd.DataFrame(
        [
            {"model": "tiny", "trajectory": 0, "step": 10 * s, "variant": "original", "run": "r", "seed": 0,
             "metric": "acquisition", "score": "per_token", "split": "all", "kind": "all", "before": -2.0,
             "after": -1.0, "value": float(s)}
            for s in (1, 2, 3)
        ]
    )  # fmt: skip
    corr = correlations(entropy, continual, correlated())
    assert "largest_share" in set(corr.x) and "largest_share" in correlated()
