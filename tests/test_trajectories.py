"""Pretraining trajectories as a grid dimension: names, nested seeds, and the intervals over trajectories and
seeds (tables, correlations), on hand-made tables checked against closed forms computed here."""

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from kentropy.analysis.continual_tables import resuscitation_table, table2, table2_markdown
from kentropy.analysis.outcomes import ACROSS_METHOD, CI_METHOD, across_trajectories, hierarchical_interval
from kentropy.core.config import ConfigError, load_config
from kentropy.core.layout import model_keys, parse_trajectory_name, trajectory_name, with_keys
from kentropy.core.plan import Plan

from .conftest import ROOT


def test_trajectory_names_carry_the_seed_unless_it_is_the_global_one():
    assert trajectory_name("tiny", 0, 0) == "tiny" and trajectory_name("tiny", 2, 0) == "tiny-traj2"
    assert parse_trajectory_name("tiny-traj2", 0) == ("tiny", 2) and parse_trajectory_name("olmo-1b", 3) == (
        "olmo-1b",
        3,
    )
    assert model_keys("tiny-traj12", 0) == {"model": "tiny", "trajectory": 12}
    table = with_keys(pd.DataFrame({"value": [1.0]}), step="30", **model_keys("tiny-traj1", 0))
    assert list(table.columns) == ["model", "trajectory", "step", "value"] and table.trajectory.dtype.kind == "i"


def _config(tmp_path, edit) -> dict:
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    edit(config)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return load_config(path)


def test_a_models_seeds_override_the_pretrain_seeds_and_seeds_nest_in_trajectories(tmp_path):
    config = _config(tmp_path, lambda c: c["models"]["tiny"].update(seeds=[4, 0]))
    plan = Plan.from_config(config)
    assert list(plan.trajectories) == ["tiny-traj4", "tiny"]
    assert plan.run_on("tiny", "general").seed == 0 == plan.runs["general"].seed
    other = plan.run_on("tiny-traj4", "general")
    assert other.seed != 0 and other.name == "general"  # same run name, its own data draw
    expected = int(np.random.SeedSequence([0, 4]).generate_state(1)[0])
    assert other.seed == expected and other.stream_param()["seed"] == expected


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda c: c["models"].update({"tiny-traj1": c["models"]["tiny"]}),
            "models.tiny-traj1: a model name must not end",
        ),
        (
            lambda c: c["models"].update({"hub": {"source": "hf", "repo_id": "a/b", "steps": [1], "seeds": [1]}}),
            "models.hub.seeds: only a model with source pretrain has pretraining seeds",
        ),
    ],
)
def test_trajectory_settings_are_checked_at_load(tmp_path, edit, message):
    with pytest.raises(ConfigError, match=message):
        _config(tmp_path, edit)


def test_hierarchical_interval_is_the_t_interval_over_trajectory_means():
    values = [1.0, 2.0, 4.0, 6.0, 2.5, 3.5]
    trajectories = [0, 0, 1, 1, 2, 2]
    means = np.array([1.5, 5.0, 3.0])
    half = stats.t.ppf(0.975, 2) * np.sqrt(((means - means.mean()) ** 2).sum() / 2) / np.sqrt(3)
    assert hierarchical_interval(values, trajectories) == pytest.approx(
        (19 / 6, 19 / 6 - half, 19 / 6 + half), rel=1e-12
    )
    # One trajectory: the interval over its seeds (all it can say); one value: no interval.
    seeds = np.array([1.0, 2.0, 4.0])
    half = stats.t.ppf(0.975, 2) * seeds.std(ddof=1) / np.sqrt(3)
    assert hierarchical_interval(seeds, [0, 0, 0]) == pytest.approx((7 / 3, 7 / 3 - half, 7 / 3 + half), rel=1e-12)
    mean, low, high = hierarchical_interval([2.0], [5])
    assert mean == 2.0 and np.isnan(low) and np.isnan(high)


def continual(values: dict) -> pd.DataFrame:
    """Acquisition and forgetting rows: ``values[(variant, trajectory, step, seed)] = (A, F)``."""
    rows = []
    for (variant, trajectory, step, seed), (a, f) in values.items():
        key = {"model": "m", "trajectory": trajectory, "step": step, "variant": variant, "run": "base", "seed": seed}
        rows.append({**key, "metric": "acquisition", "score": "per_token", "split": "all", "kind": "all",
                     "before": -4.0, "after": -4.0 + 0.04 * a, "value": a})  # fmt: skip
        rows.append({**key, "metric": "forgetting", "score": None, "split": None, "kind": None,
                     "before": 50.0, "after": 50.0 - 0.5 * f, "value": f})  # fmt: skip
    return pd.DataFrame(rows)


#: A on 3 trajectories x 2 seeds at step 10: trajectory means 21, 13, 17.
A = {(0, 0): 20.0, (0, 1): 22.0, (1, 0): 12.0, (1, 1): 14.0, (2, 0): 18.0, (2, 1): 16.0}


def test_table2_cells_rest_on_trajectories_and_their_seeds():
    table = table2(continual({("original", t, 10, s): (a, 5.0) for (t, s), a in A.items()}))
    cell = table[(table.quantity == "acquisition (%)") & (table.step == 10)].iloc[0]
    half = stats.t.ppf(0.975, 2) * 4.0 / np.sqrt(3)  # the sd of 21, 13, 17 is 4
    assert (cell["mean"], cell.ci_low, cell.ci_high) == pytest.approx((17.0, 17.0 - half, 17.0 + half), rel=1e-12)
    assert (cell.trajectories, cell.seeds) == (3, 2)
    # The interval over all six values as if they were seeds is narrower: the trajectories' spread is not noise.
    assert stats.t.ppf(0.975, 5) * np.std(list(A.values()), ddof=1) / np.sqrt(6) < half
    line = next(r for r in table2_markdown(table).splitlines() if "acquisition (%), 3 trajectories × 2 seeds" in r)
    assert f"17.000 ± {half:.3f}" in line


def test_resuscitation_table_intervals_over_trajectories():
    values = {("original", t, 30, s): (a, 1.0) for (t, s), a in A.items()}
    values |= {("resus-p50-q2", t, 30, s): (a + 3.0, 1.0) for (t, s), a in A.items()}
    ke = {("original", 0): 3.0, ("original", 1): 3.2, ("original", 2): 3.4, ("resus-p50-q2", 0): 3.5,
          ("resus-p50-q2", 1): 3.6, ("resus-p50-q2", 2): 3.7}  # fmt: skip
    entropy = pd.DataFrame([{"model": "m", "trajectory": t, "step": 30, "variant": v, "metric": "knowledge_entropy",
                             "layer": np.nan, "value": x} for (v, t), x in ke.items()])  # fmt: skip
    table = resuscitation_table(entropy, continual(values), ["base"]).set_index("variant")
    half = stats.t.ppf(0.975, 2) * 0.2 / np.sqrt(3)  # the sd of 3.0, 3.2, 3.4 is 0.2
    assert table.loc[
        "original", ["knowledge_entropy", "knowledge_entropy_ci_low", "knowledge_entropy_ci_high"]
    ].tolist() == (pytest.approx([3.2, 3.2 - half, 3.2 + half], rel=1e-12))
    assert table.loc["resus-p50-q2", "A"] == pytest.approx(20.0) and table.loc["resus-p50-q2", "trajectories"] == 3


def _per_trajectory(rs, n=7) -> pd.DataFrame:
    return pd.DataFrame([{"model": "m", "trajectory": t, "run": "base", "x": "knowledge_entropy", "y": "acquisition",
                          "method": "pearson", "r": r, "p_value": 0.1, "ci_low": r - 0.1, "ci_high": min(r + 0.1, 1.0),
                          "n": n, "seeds": 1, "ci_method": CI_METHOD} for t, r in enumerate(rs)])  # fmt: skip


def test_correlations_across_trajectories_average_fisher_z():
    rs = [0.8, 0.6, 0.9]
    out = across_trajectories(_per_trajectory(rs)).iloc[0]
    z = np.arctanh(rs)
    half = stats.t.ppf(0.975, 2) * z.std(ddof=1) / np.sqrt(3)
    t = z.mean() / (z.std(ddof=1) / np.sqrt(3))
    expected = [np.tanh(z.mean()), np.tanh(z.mean() - half), np.tanh(z.mean() + half), 2 * stats.t.sf(abs(t), 2)]
    assert out[["r", "ci_low", "ci_high", "p_value"]].tolist() == pytest.approx(expected, rel=1e-12)
    assert (out.trajectories, out.n, out.seeds, out.ci_method) == (3, 7, 1, ACROSS_METHOD)
    # A trajectory with no r (a constant side) is left out; one trajectory keeps its own bootstrap row.
    two = across_trajectories(_per_trajectory([0.8, np.nan, 0.9])).iloc[0]
    assert two.trajectories == 2 and two.r == pytest.approx(np.tanh(np.arctanh([0.8, 0.9]).mean()), rel=1e-12)
    one = across_trajectories(_per_trajectory([0.7])).iloc[0]
    row = _per_trajectory([0.7]).iloc[0]
    assert (one.r, one.ci_low, one.ci_high, one.ci_method, one.trajectories) == (
        0.7,
        row.ci_low,
        row.ci_high,
        CI_METHOD,
        1,
    )
