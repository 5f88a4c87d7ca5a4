"""The lab's design and decision rule (kentropy.analysis.lab_design, docs/lab.md): the screen is the stated 2^(7-3)
design of resolution IV with the stated aliasing; derived numbers; knowledge entropy from per-document sums and the
slope against float64 brute force; the rule on constructed cells."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kentropy.analysis import lab_design as lab


def test_the_screen_is_a_balanced_orthogonal_2_7_3_design():
    runs = lab.fractional_design()
    assert len(runs) == 16 and len({tuple(sorted(r.items())) for r in runs}) == 16
    x = np.array([[r[f] for f in "ABCDEFG"] for r in runs])
    assert (x.sum(0) == 0).all() and (x.T @ x == 16 * np.eye(7)).all()  # balanced, main effects orthogonal
    for r in runs:
        assert r["E"] == r["A"] * r["B"] * r["C"] and r["F"] == r["B"] * r["C"] * r["D"]
        assert r["G"] == r["A"] * r["C"] * r["D"]


def test_its_defining_relation_and_aliases_are_the_documented_ones():
    assert set(lab.defining_relation()) == {"ABCE", "BCDF", "ACDG", "ADEF", "BDEG", "ABFG", "CEFG"}
    assert lab.resolution() == 4
    for pair, others in {"AB": {"CE", "FG"}, "AC": {"BE", "DG"}, "AD": {"CG", "EF"}, "AE": {"BC", "DF"},
                         "AF": {"BG", "DE"}, "AG": {"BF", "CD"}, "BD": {"CF", "EG"}}.items():  # fmt: skip
        assert {a for a in lab.aliases(pair) if len(a) == 2} == others
    for factor in "ABCDEFG":  # a main effect meets no other main effect nor a two-factor interaction
        assert min(len(a) for a in lab.aliases(factor)) == 3
    text = open(lab.__file__.replace("src/kentropy/analysis/lab_design.py", "docs/lab.md")).read()
    assert "I = ABCE = BCDF = ACDG = ADEF = BDEG = ABFG = CEFG" in text


def test_derived_numbers():
    assert lab.log_steps(640) == [0, 6, 10, 16, 25, 40, 64, 101, 161, 255, 404, 640]
    assert len(lab.log_steps(6406)) == 12 and lab.log_steps(6406)[-1] == 6406
    assert lab.adamw_timescales(4e-3, 1.6, 6406) == pytest.approx(41.0, abs=0.1)
    assert lab.steps_for(200, 65_600, 2048) == 6406
    early, late = lab.windows(lab.log_steps(640), 640)
    assert [s for s, e in zip(lab.log_steps(640), early) if e] == [6, 10, 16, 25, 40, 64]
    assert [s for s, w in zip(lab.log_steps(640), late) if w] == [101, 161, 255, 404, 640]


def entropy_brute(sums, weights=None) -> float:
    """Σ_l H(normalised Σ_d w_d sums[d, l, :]), element by element."""
    docs, layers, m = sums.shape
    w = [1.0] * docs if weights is None else list(weights)
    total = 0.0
    for layer in range(layers):
        column = [sum(w[d] * float(sums[d, layer, i]) for d in range(docs)) for i in range(m)]
        z = sum(column)
        total -= sum(v / z * math.log(v / z) for v in column if v > 0)
    return total


def test_knowledge_entropy_from_documents_matches_brute_force():
    rng = np.random.default_rng(0)
    sums = rng.gamma(0.5, size=(5, 3, 7))
    sums[1, 2, 4] = 0.0
    counts = np.array([2, 0, 1, 1, 1])
    assert lab.knowledge_entropy_from_documents(sums) == pytest.approx(entropy_brute(sums), rel=1e-12)
    assert lab.knowledge_entropy_from_documents(sums, counts) == pytest.approx(entropy_brute(sums, counts), rel=1e-12)
    stacked = np.stack([sums, 2 * sums])  # a leading checkpoint axis; scale leaves the entropy unchanged
    assert lab.knowledge_entropy_from_documents(stacked) == pytest.approx([entropy_brute(sums)] * 2, rel=1e-12)


def test_the_slope_is_least_squares():
    x, y = np.log([10, 20, 40, 80]), np.array([3.0, 2.9, 2.95, 2.7])
    assert lab.least_squares_slope(x, y) == pytest.approx(np.polyfit(x, y, 1)[0], rel=1e-12)


def trajectory(steps, falling: float, seed: int, docs: int = 40, m: int = 16):
    """Per-document sums whose concentration on memory vector 0 grows as ``falling`` · ln(step)."""
    rng = np.random.default_rng(seed)
    out = []
    for s in steps:
        base = rng.gamma(4.0, size=(docs, 2, m))
        base[:, :, 0] *= 1 + falling * math.log(max(s, 1))
        out.append(base)
    return np.stack(out)


def test_a_falling_trajectory_has_a_negative_slope_whose_interval_excludes_zero():
    steps = lab.log_steps(640)
    slope = lab.trajectory_slope(steps, trajectory(steps, 0.5, seed=1), 640, resamples=200)
    assert slope.late < 0 and slope.low <= slope.late <= slope.high < 0 and slope.late_from == 101
    flat = lab.trajectory_slope(steps, trajectory(steps, 0.0, seed=1), 640, resamples=200)
    assert flat.low < 0 < flat.high


def test_the_rule_on_constructed_cells():
    def s(late, high):
        return lab.Slope(late=late, low=late - 1, high=high, early=0.0, late_from=101)

    assert lab.decides([s(-0.1, -0.01), s(-0.12, -0.02)], [20.0, 20.01], 640) == "decays"
    assert lab.decides([s(-0.1, -0.01), s(-0.12, 0.02)], [20.0, 20.01], 640) == "falls, not significant"
    assert lab.decides([s(-0.1, -0.01), s(-0.12, -0.02)], [20.0, 21.0], 640) == "falls, not significant"  # SD
    assert lab.decides([s(-0.1, -0.01), s(0.05, 0.1)], [20.0, 20.01], 640) == "does not decay"


def test_the_committed_lab_config_is_the_designs_and_valid():
    """config/lab.yaml is what ``python -m kentropy.analysis.lab_design`` writes (one owner:
    kentropy.analysis.lab_design), it validates, and its cells carry the documented levels, lengths and checkpoint
    steps."""
    from kentropy.core.config import SCHEMA, load_config_file, validate_config

    root = lab.__file__.replace("/src/kentropy/analysis/lab_design.py", "")
    text = open(f"{root}/config/lab.yaml").read()
    assert text == lab.lab_yaml(load_config_file(f"{root}/config/config.yaml"))
    config = load_config_file(f"{root}/config/lab.yaml")
    validate_config(config, SCHEMA)
    cells = config["models"]
    assert list(cells) == [f"c{i:02d}" for i in range(1, 17)]
    for name, levels in zip(cells, lab.fractional_design()):
        spec = cells[name]
        recipe, skew, parameters = lab.cell_recipe(levels)
        assert spec["pretrain"] == recipe and spec["skew"] == skew
        assert spec["steps"] == lab.log_steps(recipe["total_steps"]) and len(spec["steps"]) == 12
        tokens = recipe["total_steps"] * 16 * 128
        assert tokens / parameters == pytest.approx(20 if levels["C"] < 0 else 200, rel=1e-3)
    assert cells["c01"]["pretrain"] == {"weight_decay": 0.0, "lr": 0.001, "intermediate_size": 128,
                                        "activation": "swiglu", "alpha_f": 0.1, "total_steps": 640}  # fmt: skip
    timescales = [lab.adamw_timescales(c["pretrain"]["lr"], c["pretrain"]["weight_decay"],
                                       c["pretrain"]["total_steps"]) for c in cells.values()]  # fmt: skip
    assert min(timescales) == 0 and max(timescales) == pytest.approx(46.8, abs=0.1)  # A+ B+ C+ D+: GELU
