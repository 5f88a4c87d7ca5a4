"""SMI (kentropy.analysis.smi) against a plain-Python transcription of the released arithmetic, float64, every
element."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from kentropy.analysis import smi
from kentropy.analysis.fact_tables import smi_tables


def _counts(rng, n):
    N = 1000
    n_s = rng.integers(1, 200, n)
    n_o = rng.integers(1, 400, n)
    n_so = np.minimum(rng.integers(0, 60, n), np.minimum(n_s, n_o))
    return pd.DataFrame({"N": N, "n_s": n_s, "n_o": n_o, "n_so": n_so})


def _released(counts, accuracy, parameters, size):
    """The released steps one fact at a time: mi, drop mi <= 0, bin int(5 log2)/5, min-max, power, bins by
    value, linregress over the bins' means, MSE of the bins' mean squared deviations, upper bound."""
    mi = []
    for row in counts.itertuples():
        p_s, p_o, p_so = row.n_s / row.N, row.n_o / row.N, row.n_so / row.N
        mi.append(0 if row.n_so == 0 else p_so * math.log2(p_so / p_s / p_o))
    kept = [(m, a) for m, a in zip(mi, accuracy) if m > 0]
    binned = [int(math.log2(m) * 5) / 5 for m, _ in kept]
    low, high = min(binned), max(binned)
    P = math.log2(parameters) if size == "log2" else parameters / 1e9
    x = [((b - low) / (high - low)) ** (1 + 1 / P) for b in binned]
    groups: dict = {}
    for xi, (_, a) in zip(x, kept):
        groups.setdefault(xi, []).append(a)
    keys = sorted(groups)
    means = [sum(groups[k]) / len(groups[k]) for k in keys]
    mx, my = sum(keys) / len(keys), sum(means) / len(means)
    sxy = sum((k - mx) * (m - my) for k, m in zip(keys, means))
    sxx = sum((k - mx) ** 2 for k in keys)
    syy = sum((m - my) ** 2 for m in means)
    slope = sxy / sxx
    intercept = my - slope * mx
    mse = sum(sum((a - (slope * k + intercept)) ** 2 for a in groups[k]) / len(groups[k]) for k in keys) / len(keys)
    return mi, x, {"slope": slope, "intercept": intercept, "r2": sxy**2 / (sxx * syy), "mse": mse,
                   "upper_bound": slope + intercept, "bins": len(keys), "facts": len(kept)}  # fmt: skip


@pytest.mark.parametrize("size", ["log2", "billions"])
def test_smi_and_fit_against_the_released_arithmetic(size):
    rng = np.random.default_rng(3)
    counts = _counts(rng, 300)
    accuracy = rng.random(300)
    parameters = 400_000 if size == "log2" else 3_000_000_000
    mi_ref, x_ref, fit_ref = _released(counts, accuracy, parameters, size)
    mi = smi.mutual_information(counts)
    np.testing.assert_allclose(mi, mi_ref, rtol=1e-12, atol=0)  # division order
    keep = mi > 0
    x = smi.smi(mi[keep], parameters, size)
    np.testing.assert_allclose(x, x_ref, rtol=1e-14, atol=0)
    fitted = smi.fit(x, accuracy[keep])
    for key, value in fit_ref.items():
        assert fitted[key] == pytest.approx(value, rel=1e-10, abs=1e-13), key
    assert fitted["accuracy"] == pytest.approx(accuracy[keep].mean(), rel=1e-14)


def test_tiny_model_size_in_billions_collapses_smi():
    """P in billions for a 0.4M-parameter model: exponent 1 + 2500, every bin but the top one is 0."""
    mi = np.array([1e-4, 1e-3, 1e-2, 1e-1])
    assert smi.smi(mi, 400_000, "billions").tolist() == [0.0, 0.0, 0.0, 1.0]
    assert len(np.unique(smi.smi(mi, 400_000, "log2"))) == 4


def test_fit_with_one_bin_is_undefined():
    out = smi.fit(np.zeros(4), np.array([0.0, 1.0, 1.0, 0.0]))
    assert math.isnan(out["slope"]) and out["bins"] == 1 and out["accuracy"] == 0.5


def test_smi_tables_per_checkpoint_source_kind_and_size():
    rng = np.random.default_rng(1)
    counts = _counts(rng, 40)
    facts = pd.concat([counts, counts.add_suffix("_search")], axis=1).assign(subject="s", relation="r", object="o")
    qa = pd.DataFrame([
        {"model": "m", "trajectory": 0, "step": step, "parameters": 400_000, "fact": f, "templates": kind,
         "accuracy": rng.random()}
        for step in (10, 20) for kind in ("corpus", "held_out") for f in range(40)
    ])  # fmt: skip
    fits, bins = smi_tables(qa, facts)
    assert len(fits) == 2 * 2 * 2 * 2  # steps x kinds x count sources x sizes
    one = fits[(fits.step == 20) & (fits.templates == "corpus") & (fits.counts == "exact") & (fits["size"] == "log2")]
    mi = smi.mutual_information(counts)
    accuracy = qa[(qa.step == 20) & (qa.templates == "corpus")].accuracy.to_numpy()
    expected = smi.fit(smi.smi(mi[mi > 0], 400_000, "log2"), accuracy[mi > 0])
    assert one.iloc[0].slope == expected["slope"] and one.iloc[0].bins == expected["bins"]
    assert bins.groupby(["step", "templates", "counts", "size"]).facts.sum().eq((mi > 0).sum()).all()
