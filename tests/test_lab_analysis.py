"""The lab's tables (kentropy.analysis.lab_tables): cells read back to the design's levels, main effects against a
float64 least-squares reference and the orthogonal design's difference of means, verdicts per cell, lab.parquet
and the markdown, and the three lab figures on constructed tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from kentropy.analysis import lab_design as lab
from kentropy.analysis import lab_tables as lab_analysis
from kentropy.core.config import load_config_file

from .conftest import ROOT


@pytest.fixture(scope="module")
def config():
    return load_config_file(ROOT / "config" / "lab.yaml")


@pytest.fixture(scope="module")
def cells(config):
    return lab_analysis.cell_table(config)


def test_levels_are_read_back_and_an_unknown_one_is_named():
    assert [lab_analysis.coded("A", v) for v in (0.0, 1.6, 0.4)] == [-1, 1, 0]
    assert lab_analysis.coded("C", 200.9) == 1  # rounded steps sit near the level
    assert lab_analysis.coded("E", "reglu") == 0
    with pytest.raises(lab_analysis.LabError, match=r"weight_decay = 0.8 is none of the lab's levels"):
        lab_analysis.coded("A", 0.8)


def test_the_cells_of_the_committed_config_are_the_design(cells):
    assert list(cells.model) == [f"c{i:02d}" for i in range(1, 17)]
    design = pd.DataFrame(lab.fractional_design())
    pd.testing.assert_frame_equal(cells[list(lab_analysis.FACTORS)], design[list(lab_analysis.FACTORS)])
    c01 = cells.iloc[0]
    assert c01.total_steps == 640 and c01.timescales == 0 and c01.activation == "swiglu"
    assert c01.tokens_per_parameter == pytest.approx(640 * 2048 / c01.parameters)
    assert cells.timescales.max() == pytest.approx(46.8, abs=0.1)


def slopes_for(cells: pd.DataFrame, beta: dict[str, float], seeds=(0, 1), noise=0.01, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for cell in cells.itertuples():
        for trajectory in seeds:
            late = 0.02 + sum(b * getattr(cell, f) for f, b in beta.items()) + rng.normal(0, noise)
            rows.append({"model": cell.model, "trajectory": trajectory, "late_slope": late, "late_low": late - 0.005,
                         "late_high": late + 0.005, "early_slope": -late, "late_from": 101,
                         "initial_entropy": 9.7, "final_entropy": 9.5 + rng.normal(0, 0.001)})  # fmt: skip
    return pd.DataFrame(rows)


def test_main_effects_are_least_squares_with_student_t_intervals(cells):
    """Against a float64 reference (lstsq, the t quantile): every effect, interval and p value; and, the screen
    being orthogonal and balanced, each effect is the mean at the high level minus the mean at the low."""
    from scipy import stats

    slopes = slopes_for(cells, {"A": -0.03, "C": 0.01})
    effects = lab_analysis.main_effects(slopes, cells)
    late = effects[effects.response == "late_slope"].set_index("factor")
    data = slopes.merge(cells, on="model")
    x = np.column_stack([np.ones(len(data))] + [data[f].to_numpy(float) for f in lab_analysis.FACTORS])
    y = data.late_slope.to_numpy()
    coef, rss, *_ = np.linalg.lstsq(x, y, rcond=None)
    dof = len(y) - x.shape[1]
    assert dof == 24 and (late.dof == 24).all() and (late.trajectories == 32).all()
    cov = rss[0] / dof * np.linalg.inv(x.T @ x)
    for i, factor in enumerate(lab_analysis.FACTORS, start=1):
        row = late.loc[factor]
        assert row.effect == pytest.approx(2 * coef[i], rel=1e-10, abs=1e-14)
        high, low = data[data[factor] == 1].late_slope.mean(), data[data[factor] == -1].late_slope.mean()
        assert row.effect == pytest.approx(high - low, rel=1e-10, abs=1e-14)
        half = 2 * stats.t.ppf(0.975, dof) * math.sqrt(cov[i, i])
        assert (row.ci_low, row.ci_high) == pytest.approx((2 * coef[i] - half, 2 * coef[i] + half), rel=1e-10)
        assert row.p_value == pytest.approx(2 * stats.t.sf(abs(coef[i] / math.sqrt(cov[i, i])), dof), rel=1e-8)
    assert late.loc["A"].ci_high < 0 < late.loc["C"].ci_low  # the planted effects are found
    early = effects[effects.response == "early_slope"].set_index("factor")
    assert early.loc["A"].effect == pytest.approx(-late.loc["A"].effect)


def test_too_few_trajectories_for_the_effects_is_refused(cells):
    one = slopes_for(cells.iloc[:4], {}, seeds=(0,))
    with pytest.raises(lab_analysis.LabError, match="4 trajectories cannot estimate"):
        lab_analysis.main_effects(one, cells.iloc[:4].assign(B=[-1, 1, -1, 1], C=[-1, -1, 1, 1]))


def test_each_cell_gets_the_rules_verdict(cells):
    slopes = slopes_for(cells, {"A": -0.03}, noise=0.0)  # A+ cells: late slope 0.02 - 0.03 < 0, CI < 0
    decisions = lab_analysis.cell_decisions(slopes, cells).set_index("model")
    for cell in cells.itertuples():
        row = decisions.loc[cell.model]
        group = slopes[slopes.model == cell.model]
        assert row.decision == lab.decides(
            [lab.Slope(r.late_slope, r.late_low, r.late_high, r.early_slope, 101) for r in group.itertuples()],
            list(group.final_entropy),
            cell.total_steps,
        )
        assert row.decision == ("does not decay" if cell.A < 0 else row.decision)
        assert row.late_drop == pytest.approx(-row.late_slope * math.log(cell.total_steps / 101))
        assert row.final_sd == pytest.approx(group.final_entropy.std(ddof=1)) and row.seeds == 2
    assert set(decisions[cells.set_index("model").A > 0].decision) <= {"decays", "falls, not significant"}
    assert "decays" in set(decisions.decision)


def entropy_rows(cells: pd.DataFrame, config: dict) -> pd.DataFrame:
    """A constructed entropy.parquet of every lab checkpoint: knowledge entropy and its gap, per layer and whole."""
    rows = []
    for cell in cells.itertuples():
        for trajectory in (0, 1):
            for step in config["models"][cell.model]["steps"]:
                gaps = [0.01 + 0.001 * layer * math.log1p(step) for layer in range(2)]
                m = math.log(cell.intermediate_size)
                for metric, values in (("knowledge_entropy", [m - g for g in gaps]), ("knowledge_entropy_gap", gaps)):
                    for layer, v in enumerate(values):
                        rows.append((cell.model, trajectory, step, "original", metric, layer, v))
                    rows.append((cell.model, trajectory, step, "original", metric, None, sum(values)))
    table = pd.DataFrame(rows, columns=["model", "trajectory", "step", "variant", "metric", "layer", "value"])
    table["layer"] = table.layer.astype("Int64")
    return table


def test_lab_table_keeps_every_row_beside_its_cells_levels(cells, config):
    entropy = entropy_rows(cells, config)
    table = lab_analysis.lab_table(entropy, cells)
    assert len(table) == len(entropy)
    row = table[(table.model == "c16") & (table.step == cells.total_steps.iloc[-1])].iloc[0]
    c16 = cells.iloc[-1]
    assert row.weight_decay == 1.6 and row.A == 1 and row.activation == c16.activation
    assert row.checkpoint_tokens_per_parameter == pytest.approx(c16.tokens_per_parameter)
    assert row.checkpoint_timescales == pytest.approx(c16.timescales)


def test_the_markdown_has_every_factor_and_every_cell(cells):
    slopes = slopes_for(cells, {"A": -0.03})
    text = lab_analysis.effects_markdown(
        lab_analysis.main_effects(slopes, cells), lab_analysis.cell_decisions(slopes, cells), "AMD EPYC"
    )
    for factor, (key, *_) in lab.LEVELS.items():
        assert f"| {factor} {key} |" in text
    assert all(f"| {m} |" in text for m in cells.model) and "24 residual degrees of freedom" in text
    assert "three-factor words" in text
    follow_up = lab_analysis.cell_table(lab.lab_config(load_config_file(ROOT / "config" / "config.yaml"), ("E", "C")))
    slopes = slopes_for(follow_up, {"E": -0.1}, seeds=(0, 1, 2))
    text = lab_analysis.effects_markdown(
        lab_analysis.main_effects(slopes, follow_up), lab_analysis.cell_decisions(slopes, follow_up), "AMD EPYC"
    )
    assert "curvature over three levels" in text and "three-factor words" not in text


def test_the_lab_figures_draw_from_the_lab_tables(cells, config):
    from kentropy.report import figures
    from kentropy.report.figure_registry import GROUPS, drawn

    assert set(GROUPS["lab_figures"]) <= set(drawn(config))
    few = cells.iloc[[0, 5, 10, 15]]  # every factor still takes both levels
    slopes = slopes_for(few, {"A": -0.03})
    decisions = lab_analysis.cell_decisions(slopes, few)
    table = lab_analysis.lab_table(entropy_rows(few, config), few)
    for fig in (
        figures.lab_trajectories(table, decisions),
        figures.lab_effects(lab_analysis.main_effects(slopes_for(cells, {"A": -0.03}), cells)),
        figures.lab_layers(table, decisions),
    ):
        assert len(fig.axes) >= 2
        figures.plt.close(fig)
    fig = figures.lab_trajectories(table, decisions)
    assert [ax.get_title() for ax in fig.axes][:-1] == [f"{f}: {key}" for f, (key, *_) in lab.LEVELS.items()]
    follow_up = lab.lab_config(load_config_file(ROOT / "config" / "config.yaml"), ("E", "C"))  # varies E and C
    varied = lab_analysis.cell_table(follow_up)
    table = lab_analysis.lab_table(entropy_rows(varied, follow_up), varied)
    fig = figures.lab_trajectories(table, lab_analysis.cell_decisions(slopes_for(varied, {}), varied))
    assert [ax.get_title() for ax in fig.axes] == [
        "C: tokens_per_parameter",
        "E: activation",
        "every cell by the rule's verdict",
    ]
    figures.plt.close(fig)
    default = load_config_file(ROOT / "config" / "config.yaml")
    assert not set(GROUPS["lab_figures"]) & set(drawn(default))


def test_the_lab_target_plans_every_trajectory_its_tables_and_figures(tmp_path):
    """``snakemake lab --configfile config/lab.yaml``: 16 cells x 2 seeds pretrained in 12 segments each (step 0
    included), measured at every step, their per-document sums, the two skewed corpora (0, 1.5), the tables
    and the three figures."""
    from .conftest import job_counts, snakemake

    proc = snakemake(tmp_path, "-n", "lab", "--configfile", str(ROOT / "config" / "lab.yaml"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts["pretrain_tiny"] == counts["measure_entropy"] == 32 * 12
    assert counts["lab_document_sums"] == 32 and counts["figure"] == 3
    assert counts["skewed_pretraining_corpus"] == 2 and counts["lab_tables"] == counts["entropy_table"] == 1


def test_the_follow_up_takes_the_two_largest_t_at_three_levels_on_three_seeds(cells):
    """The rule of docs/lab.md picks the factors; the follow-up config varies exactly those over their three
    levels (9 cells), keeps every other factor at the level nearest OLMo's recipe, validates, and reads back."""
    from kentropy.core.config import SCHEMA, validate_config

    effects = lab_analysis.main_effects(slopes_for(cells, {"C": 0.02, "F": -0.05}, noise=0.005), cells)
    assert lab.strongest_factors(effects) == ("F", "C")
    follow_up = lab.lab_config(load_config_file(ROOT / "config" / "config.yaml"), ("F", "C"))
    validate_config(follow_up, SCHEMA)
    assert follow_up["experiment"] == "lab-followup" and follow_up["pretrain"]["seeds"] == [0, 1, 2]
    read = lab_analysis.cell_table(follow_up)
    assert list(read.model) == [f"f{i:02d}" for i in range(1, 10)]
    assert sorted(zip(read.F, read.C)) == sorted((a, b) for a in (-1, 0, 1) for b in (-1, 0, 1))
    for factor, code in lab.FOLLOW_UP_BASE.items():
        if factor not in "FC":
            assert set(read[factor]) == {code}
    assert set(read["skew"]) == {0.0, 1.0, 1.5} and set(read.weight_decay) == {0.4}
    assert set(read.activation) == {"swiglu"}
    with pytest.raises(ValueError, match="two different factors"):
        lab.follow_up_design(("A", "A"))


def test_the_contrast_pairs_a_decaying_cell_with_its_activation_twin_at_the_highest_level(tmp_path):
    """The rule of docs/lab.md: GELU against SwiGLU first, at the highest tokens per parameter with such a pair;
    the follow-up's config then continues the pair alone, from their last five checkpoints, baseline run only,
    and plans exactly that with the contrast's table."""
    import json

    import yaml

    from kentropy.core.config import SCHEMA, validate_config

    from .conftest import job_counts, snakemake

    follow_up = lab.lab_config(load_config_file(ROOT / "config" / "config.yaml"), ("E", "C"))
    cells = lab_analysis.cell_table(follow_up)
    verdict = {"f01": False, "f03": True, "f04": True, "f06": True, "f07": True, "f08": False, "f09": True}
    cells["decision"] = ["decays" if verdict.get(m) else "does not decay" for m in cells.model]
    # 200 tokens/param: every GELU/SwiGLU pair decays on both sides, but ReGLU (f08) does not: GELU vs ReGLU.
    assert lab.contrast_pair(cells) == ("f09", "f08")
    cells.loc[cells.model == "f08", "decision"] = "decays"  # none at 200: at 60, f06 against f05 (ReGLU)
    assert lab.contrast_pair(cells) == ("f06", "f05")
    cells.loc[cells.model.isin(["f05", "f04"]), "decision"] = "decays"  # none at 60 either: f03 against f01
    assert lab.contrast_pair(cells) == ("f03", "f01")
    assert lab.contrast_pair(cells.assign(decision="does not decay")) is None
    config = lab.with_contrast(follow_up, ("f03", "f01"))
    validate_config(json.loads(json.dumps(config)), SCHEMA)
    assert list(config["continual"]["runs"]) == ["baseline"] and config["continual"]["steps"] == []
    assert config["models"]["f03"]["continual_steps"] == sorted(follow_up["models"]["f03"]["steps"])[-5:]
    written = lab.lab_yaml(load_config_file(ROOT / "config" / "config.yaml"), ("E", "C"), ("f03", "f01"))
    assert yaml.safe_load(written) == config
    path = tmp_path / "contrast.yaml"  # one seed, so that the DAG builds quickly: 2 cells x 1 seed x 5 steps
    path.write_text(yaml.safe_dump({**config, "pretrain": {**config["pretrain"], "seeds": [0]}}))
    proc = snakemake(tmp_path, "-n", "continual", "lab_contrast", "--configfile", str(path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts["continual_train"] == 2 * 1 * 5 and counts["lab_contrast"] == 1


def test_the_contrast_table_is_welchs_interval_by_hand():
    """Per position and pooled: means over trajectories (each the mean of its seeds) and the Welch interval of
    the difference, checked against the formula in float64 (t quantile at the Welch-Satterthwaite df)."""
    from scipy import stats

    rng = np.random.default_rng(1)
    rows = []
    for model, steps, shift in (("g", [40, 80, 160], -3.0), ("s", [50, 100, 200], 0.0)):
        for trajectory in range(3):
            for step in steps:
                for seed in (0, 1):
                    rows.append({"model": model, "trajectory": trajectory, "step": step, "variant": "original",
                                 "run": "baseline", "seed": seed, "A": 10 + shift + rng.normal(),
                                 "F": 5 - shift + rng.normal()})  # fmt: skip
    rows.append({**rows[0], "variant": "p50_q1", "A": 1e6})  # a resuscitated copy's run is not the contrast's
    runs = pd.DataFrame(rows)
    table = lab_analysis.contrast_table(runs, "g", "s")
    assert list(table.position) == ["1", "2", "3", "all"] * 2
    original = runs[runs.variant == "original"]
    for r in table.itertuples():

        def means(model, steps):
            sub = original[(original.model == model) & original.step.isin(steps)]
            return sub.groupby(["trajectory", "step"])[r.quantity].mean().groupby("trajectory").mean().to_numpy()

        pick = slice(None) if r.position == "all" else slice(int(r.position) - 1, int(r.position))
        x, y = means("g", [40, 80, 160][pick]), means("s", [50, 100, 200][pick])
        vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
        dof = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
        half = stats.t.ppf(0.975, dof) * np.sqrt(vx + vy)
        assert r.difference == pytest.approx(x.mean() - y.mean(), abs=1e-12)
        assert (r.ci_low, r.ci_high) == pytest.approx((r.difference - half, r.difference + half), abs=1e-9)
        if r.position != "all":
            assert (r.step_decaying, r.step_twin) == (str([40, 80, 160][pick][0]), str([50, 100, 200][pick][0]))
    acquisition = table[(table.quantity == "A") & (table.position == "all")].iloc[0]
    assert acquisition.ci_high < 0  # the shift of -3 is found
    markdown = lab_analysis.contrast_markdown(table, "Tables written on a test CPU")
    assert "| acquisition (%) | all | all | all |" in markdown and "3 and 3 pretraining trajectories" in markdown
    with pytest.raises(lab_analysis.LabError, match="cell x has no continual runs"):
        lab_analysis.contrast_table(runs, "x", "s")


def test_the_default_cell_is_the_decaying_cell_nearest_olmo_that_fits_the_budget(tmp_path):
    """docs/lab.md's criterion: decaying cells within the budget, nearest (ln 30, ln 2,600) in (ln Λ, ln tokens
    per parameter), Λ = 0 never chosen, ties to the cheaper; costs from the benchmark files (mean per trajectory
    x 3)."""
    cells = pd.DataFrame(
        {
            "model": ["a", "b", "c", "d", "e"],
            "decision": ["decays", "decays", "decays", "does not decay", "decays"],
            "timescales": [1.0, 5.0, 5.0, 30.0, 0.0],
            "tokens_per_parameter": [20.0, 200.0, 200.0, 2600.0, 2600.0],
        }
    )
    files = {}
    for trajectory, cost in {"a": 90, "a-traj1": 110, "b": 300, "b-traj1": 300, "c": 250, "c-traj1": 250,
                             "d": 1, "e": 1}.items():  # fmt: skip
        files[trajectory] = []
        for step, share in ((10, 0.25), (20, 0.75)):
            path = tmp_path / f"{trajectory}-{step}.tsv"
            path.write_text(f"s\th:m:s\n{cost * share}\t0:00:01\n")
            files[trajectory].append(str(path))
    seconds = lab_analysis.pretraining_seconds(files, cells)
    assert seconds == pytest.approx({"a": 300.0, "b": 900.0, "c": 750.0, "d": 3.0, "e": 3.0})
    assert lab.default_cell(cells, seconds, budget=1000) == "c"  # b and c tie on distance; c is cheaper
    assert lab.default_cell(cells, seconds, budget=800) == "c"
    assert lab.default_cell(cells, seconds, budget=700) == "a"  # e (Λ = 0) fits but is infinitely far
    assert lab.default_cell(cells, seconds, budget=100) == "e"
    assert lab.default_cell(cells.assign(decision="does not decay"), seconds, budget=1000) is None
    with pytest.raises(lab_analysis.LabError, match="no pretraining benchmarks for the cells b"):
        lab_analysis.pretraining_seconds({k: v for k, v in files.items() if not k.startswith("b")}, cells)
