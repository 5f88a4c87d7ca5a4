"""The paper's published numbers beside ours, on hand-made tables."""

import pandas as pd
import pytest

from kentropy.analysis.continual_tables import table2, table2_markdown
from kentropy.analysis.outcomes import reported
from kentropy.analysis.paper import comparison, paper_table2, published

STEPS = [117850, 369000, 554000, 738020]
MAPPING = {"models": {"olmo-1b": "OLMo-1B"}, "runs": {"base": "baseline", "web": "c4"}}


def continual(a: dict[str, list[float]]) -> pd.DataFrame:
    """Acquisition A (both score definitions; ``released`` as given, ``per_token`` doubled) and forgetting
    F = 10 for each run; P and D values chosen so that A and F follow from them."""
    rows = []
    for run, values in a.items():
        for step, value in zip(STEPS, values):
            key = {"model": "olmo-1b", "trajectory": 0, "step": step, "variant": "original", "run": run, "seed": 0}
            for score, scale in (("released", 1), ("per_token", 2)):
                rows.append(
                    {
                        **key,
                        "metric": "acquisition",
                        "score": score,
                        "split": "all",
                        "kind": "all",
                        "before": -0.4,
                        "after": -0.4 + 0.004 * value * scale,
                        "value": value * scale,
                    }
                )
            rows.append(
                {
                    **key,
                    "metric": "forgetting",
                    "score": None,
                    "split": None,
                    "kind": None,
                    "before": 60.0,
                    "after": 54.0,
                    "value": 10.0,
                }
            )
    return pd.DataFrame(rows)


def test_published_numbers_are_the_papers():
    data = published()
    assert data["steps"] == STEPS
    base = data["table2"]["OLMo-1B"]["baseline"]
    assert base["A"] == [25.2, 24.8, 21.4, 18.8] and base["P_after"][0] == -0.281
    # The implied probe score before training at 118k: A = 100 (K_after - K_before) / |K_before| with K < 0,
    # so K_before = K_after / (1 - A / 100), about -0.376: the scale of the released evaluator.
    assert base["P_after"][0] / (1 - base["A"][0] / 100) == pytest.approx(-0.3757, abs=1e-4)
    assert {c["y"]: c["r"] for c in data["correlations"]} == {"acquisition": 0.94, "forgetting": -0.96}


def test_comparison_per_cell():
    table = reported(continual({"base": [20.0, 20.0, 15.0, 12.0], "web": [10.0, 9.0, 8.0, 7.0]}), "released")
    correlations = pd.DataFrame(
        [
            {
                "model": "olmo-1b",
                "run": "base",
                "x": "knowledge_entropy",
                "y": "acquisition",
                "method": "pearson",
                "r": 0.5,
                "p_value": 0.2,
            }
        ]
    )
    out = comparison(table, correlations, MAPPING)
    cells = out[out.item == "table2"].set_index(["run", "quantity", "step"])
    assert len(cells) == 4 * 4  # the baseline's A, F, P_after, D_after; c4 has no table cells
    assert cells.loc[("base", "A", 117850)].tolist()[-3:] == pytest.approx([20.0, 25.2, -5.2])
    assert cells.loc[("base", "F", 738020), "difference"] == pytest.approx(10.0 - 19.5)
    assert cells.loc[("base", "D_after", 369000), "ours"] == 54.0
    corr = out[out.item == "correlation"].set_index("quantity")
    assert corr.loc["pearson r(knowledge_entropy, acquisition)", ["ours", "paper"]].tolist() == [0.5, 0.94]
    assert pd.isna(corr.loc["pearson r(knowledge_entropy, forgetting)", "ours"])  # not computed: NaN, kept
    gaps = out[out.item == "acquisition_gap"].set_index("run")
    assert gaps.loc["base", ["ours", "paper"]].tolist() == pytest.approx([-8.0, -6.4])
    assert gaps.loc["web", ["ours", "paper"]].tolist() == pytest.approx([-3.0, -3.4])


def test_table2_markdown_brackets_the_papers_values():
    table = table2(reported(continual({"base": [20.0, 20.0, 15.0, 12.0]}), "released"))
    text = table2_markdown(table, paper_table2(MAPPING))
    line = next(row for row in text.splitlines() if "| base | acquisition (%), 1 trajectory × 1 seed |" in row)
    assert "20.000 [25.2]" in line and "12.000 [18.8]" in line
    assert "[x]: the paper's value" in text
    assert "[" not in table2_markdown(table).splitlines()[2]  # no comparison asked: no brackets
