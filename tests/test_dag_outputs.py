"""The test DAG's outputs (tests/config/e2e.yaml, run once per session in the background, ``conftest._run_e2e_dag``):
its tables, figures, report and live training logs, and one figure rerun alone."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from kentropy.measurement.meters import METRICS, correlated

from .conftest import ROOT, job_counts, snakemake


def test_default_dag_produces_tables_and_figures(e2e):
    table = pd.read_parquet(e2e / "results/e2e/tables/entropy.parquet")
    assert set(table.step) == {10, 20, 30} and set(table.trajectory) == {0, 1} and set(table.model) == {"tiny"}
    assert list(dict.fromkeys(table.metric)) == list(METRICS)  # every registered metric, in registration order
    assert {"knowledge_entropy", "coefficient_hoyer", "coefficient_gini"} <= set(table.metric)
    assert list(table.columns) == [
        "model",
        "trajectory",
        "step",
        "variant",
        "metric",
        "layer",
        "value",
        "n_tokens",
        "corpus",
        "duplicate_of",
    ]
    assert table.duplicate_of.isna().all()
    whole = table[table.layer.isna() & (table.metric == "knowledge_entropy")].set_index(["trajectory", "step"]).value
    per_layer = table[table.layer.notna() & (table.metric == "knowledge_entropy")].groupby(["trajectory", "step"])
    assert (whole - per_layer.value.sum()).abs().max() < 1e-9
    assert (whole[0] - whole[1]).abs().min() > 1e-4  # two trajectories: their own initialisation and data order
    assert (e2e / "resources/e2e/checkpoints/tiny-traj1/step30").is_dir()  # the second trajectory's folders
    for f in ("figure3.png", "figure8.png"):
        assert (e2e / "results/e2e/figures" / f).stat().st_size > 10_000
    assert (e2e / "logs/e2e/measure_entropy/tiny/step30/original.log").read_text().count("knowledge entropy") == 1
    # Compute jobs ran from this run's warm server, which stopped and removed its private socket directory.
    warm_log = (e2e / "logs/e2e/warm_start/warm_start.log").read_text()
    assert warm_log.count("warm start: job") > 20 and "the workflow ended" not in warm_log
    assert "measure_entropy.py" in warm_log and "fetch_benchmarks" not in warm_log  # downloads start cold
    assert "continual_corpus.py" in warm_log  # a localrule that downloads nothing here (a generated corpus)
    assert not list((e2e / ".snakemake/kentropy").glob("warm-*"))


def test_default_dag_produces_continual_tables_and_figures(e2e):
    continual = pd.read_parquet(e2e / "results/e2e/tables/continual.parquet")
    continual = continual[continual.variant == "original"]
    assert set(continual.run) == {"baseline", "general"} and set(continual.step) == {10, 20, 30}
    assert set(continual.score.dropna()) == {"per_token", "released"}
    totals = continual[(continual.split == "all") & (continual.kind == "all")]
    assert len(totals) == 2 * 6 * 2 and totals.value.notna().all()  # 2 trajectories; both probe-score definitions
    forgetting = continual[continual.metric == "forgetting"]
    assert len(forgetting) == 2 * 6 and ((forgetting.before > 0) & (forgetting.before <= 100)).all()  # percent
    corr = pd.read_parquet(e2e / "results/e2e/tables/correlations.parquet")
    assert list(corr.columns) == [
        "model", "run", "x", "y", "method", "r", "p_value", "ci_low", "ci_high", "n", "trajectories", "seeds",
        "ci_method"
    ]  # fmt: skip
    continual_rows = corr[corr.run != "pretraining"]  # the checkpoints' own outcomes: fewer steps where undefined
    assert set(continual_rows.n) == {3} and set(corr.seeds) == {1} and set(corr.method) == {"pearson", "spearman"}
    assert set(corr.trajectories) <= {1, 2} and (corr.trajectories == 2).any()
    by_trajectory = pd.read_parquet(e2e / "results/e2e/tables/correlations_by_trajectory.parquet")
    assert set(by_trajectory.trajectory) == {0, 1} and len(by_trajectory) == 2 * len(corr)
    assert list(dict.fromkeys(corr.x)) == correlated()
    assert set(continual.seed) == {0} and set(continual.trajectory) == {0, 1}  # the run's seed, as named
    table2 = (e2e / "results/e2e/tables/table2.md").read_text()
    assert "| tiny | baseline | acquisition (%), 2 trajectories × 1 seed |" in table2 and table2.startswith(
        "| model | run | quantity | 10 | 20 | 30 |"
    )
    assert "[" not in table2  # the test config compares with no paper numbers
    retention = pd.read_parquet(e2e / "results/e2e/continual/tiny/step30/original/baseline/retention.parquet")
    # Injection k is in step 2k; every probe scored just before each injection after the first, and at the end.
    assert sorted(set(retention.step)) == [3, 5, 7, 9, 10] and {"per_token", "released"} <= set(retention.columns)
    curves = pd.read_parquet(e2e / "results/e2e/tables/retention.parquet")
    assert sorted(set(curves.train_step)) == [3, 5, 7, 9, 10] and set(curves.score) == {"per_token", "released"}
    fits = pd.read_parquet(e2e / "results/e2e/tables/forgetting.parquet")
    overall = fits[(fits.split == "all") & (fits.kind == "all")]
    # The once groups injected in steps 2..8 are scored 1..8 steps later; the paraphrase split, last injected
    # in the final step, has no forgetting curve.
    assert set(overall.step) == {10, 20, 30} and overall.exponent.notna().all() and set(fits.split) == {"once", "all"}
    assert "decay exponent a (forgetting curve), 2 trajectories × 1 seed" in table2
    assert set(fits.trajectory) == {0, 1}
    assert "decay_exponent" in set(corr.y)
    for f in ("figure4.png", "figure11.png", "figure12.png", "retention.png", "forgetting.png"):
        assert (e2e / "results/e2e/figures" / f).stat().st_size > 10_000
    manifest = pd.read_parquet(e2e / "results/e2e/streams/tiny/baseline/manifest.parquet")
    assert sorted(set(manifest.step)) == [2, 4, 6, 8, 10] and len(manifest) == 5 * (2 + 2)
    assert (e2e / "results/e2e/streams/tiny-traj1/baseline/manifest.parquet").is_file()  # a stream per trajectory
    loss = pd.read_parquet(e2e / "results/e2e/continual/tiny/step30/original/general/loss.parquet")
    assert list(loss.step) == list(range(1, 11))
    assert not (e2e / "results/e2e/continual/tiny/step30/original/general/work").exists()
    log = (e2e / "logs/e2e/continual_train/tiny/step30/original/general.log").read_text()
    assert "final loss" in log
    # The training's bar as a few lines (its first and last frames), no terminal codes: retention scoring inside it
    # draws no bar of its own.
    bar = [line for line in log.splitlines() if line.startswith("continual:")]
    assert "\x1b[" not in log and "\r" not in log and len(bar) == 2 and "10/10" in bar[-1], log


def test_default_dag_resuscitates_and_trains_the_variants(e2e):
    table = pd.read_parquet(e2e / "results/e2e/tables/resuscitation.parquet")
    assert set(table.variant) == {"original", "resus-p50-q1", "resus-p50-q2"} and set(table.step) == {30}
    assert set(table.run) == {"baseline"} and table[["knowledge_entropy", "A", "F"]].notna().all().all()
    assert set(table.trajectories) == {2} and table.A_ci_low.notna().all()  # the interval over 2 trajectories
    ke = table.set_index("variant").knowledge_entropy
    assert ke["resus-p50-q1"] > ke["original"]  # amplifying the least-used memory vectors spreads the use
    record = json.loads((e2e / "resources/e2e/resuscitated/tiny/step30/resus-p50-q2/resuscitation.json").read_text())
    assert record["p"] == 0.5 and record["q"] == 2.0 and len(record["selected_per_layer"]) == 2
    assert "resus-p50-q2" in (e2e / "results/e2e/tables/resuscitation.md").read_text()
    for n in (5, 13, 14, 15):
        assert (e2e / f"results/e2e/figures/figure{n}.png").stat().st_size > 10_000


def test_default_dag_produces_knowledge_frequency_tables_and_figures(e2e):
    """The world's facts file, every fact's exposures per trajectory, QA per fact and checkpoint, SMI with exact
    and searched counts, PSS, acquisition inside pretraining, their figures and correlations."""
    tables = e2e / "results/e2e/tables"
    facts = pd.read_parquet(e2e / "resources/e2e/world/facts.parquet")
    assert len(facts) == 60 * 5 and {"n_s", "n_so", "n_so_search", "held_out_templates"} <= set(facts.columns)
    exposure = pd.read_parquet(tables / "facts_exposure.parquet")
    assert set(exposure.trajectory) == {0, 1} and set(exposure.step) == {10, 20, 30} and len(exposure) == 2 * 3 * 300
    qa = pd.read_parquet(tables / "qa.parquet")
    assert (
        len(qa) == 2 * 3 * 300 * 2 and set(qa.templates) == {"corpus", "held_out"} and qa.accuracy.between(0, 1).all()
    )
    smi = pd.read_parquet(tables / "smi.parquet")
    assert set(smi.counts) == {"exact", "search"} and set(smi["size"]) == {"log2", "billions"}
    assert len(smi) == 2 * 3 * 2 * 2 * 2 and (smi.bins > 1).any()
    pss = pd.read_parquet(tables / "specialization.parquet")
    assert set(pss.view) == {"person", "relation"} and len(pss) == 2 * 3 * 2
    concepts = pd.read_parquet(tables / "specialization_concepts.parquet")
    assert (concepts[concepts.view == "person"].groupby(["trajectory", "step"]).size() == 4).all()
    fits = pd.read_parquet(tables / "pretraining_acquisition_fits.parquet")
    assert set(fits.x) == {"since", "exposures"} and fits.exponent.notna().all()
    corr = pd.read_parquet(tables / "correlations.parquet")
    assert {"qa_accuracy", "smi_upper_bound"} <= set(corr[corr.run == "pretraining"].y)
    for name in ("smi", "specialization", "pretraining_acquisition"):
        assert (e2e / f"results/e2e/figures/{name}.png").stat().st_size > 10_000


def test_figure3_reruns_alone(e2e_alone):
    proc = snakemake(e2e_alone, "figure3", "--forcerun", "figure", "--configfile", str(ROOT / "tests/config/e2e.yaml"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert job_counts(proc.stderr) == {"figure": 1, "figure3": 1}


def test_report_embeds_every_figure_and_table(e2e_alone):
    report = e2e_alone / "results" / "e2e" / "report.html"
    proc = snakemake(e2e_alone, "--configfile", str(ROOT / "tests/config/e2e.yaml"), "--report", str(report))
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = report.read_text()
    for name in (
        "retention.png",
        "figure3",
        "figure4",
        "figure5",
        "figure8",
        "figure11",
        "figure12",
        "figure13",
        "figure14",
        "figure15",
        "table2.md",
        "resuscitation.md",
        "entropy.parquet",
        "continual.parquet",
        "correlations.parquet",
    ):
        assert name in html, name
    # Captions are rendered with the config that produced the run.
    assert html.count("Produced by this config: models tiny;") >= 9
    assert "runs baseline, general" in html and "q in 1, 2 at p = 50%" in html


def test_tables_record_the_library_that_made_them(e2e):
    import pyarrow.parquet as pq

    for table in ("entropy", "continual", "correlations", "retention", "resuscitation"):
        meta = pq.read_schema(e2e / f"results/e2e/tables/{table}.parquet").metadata
        assert meta[b"kentropy_version"] and len(meta[b"kentropy_code"]) == 16, table


def test_training_jobs_write_live_tensorboard_and_csv_logs(e2e):
    """The default ``monitor`` section: every training job's loss, learning rate, tokens/s and retention
    scores as TensorBoard events (read back here) and CSV files, equal to the job's own tables."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from kentropy.core.layout import Layout

    L = Layout("e2e")
    job = "tiny/step30/original/baseline"
    events = EventAccumulator(str(e2e / L.monitor() / "tensorboard" / job))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"Train/loss", "Train/lr", "Train/tokens_per_s"} <= tags
    loss = pd.read_parquet(e2e / L.training("tiny", 30, "original", "baseline", "loss.parquet"))
    logged = pd.DataFrame([(e.step, e.value) for e in events.Scalars("Train/loss")], columns=["step", "loss"])
    assert list(logged.step) == list(loss.step)
    assert ((logged.loss - loss.loss).abs() <= 1e-6 * loss.loss.abs()).all()  # TensorBoard stores float32
    lr = [e.value for e in events.Scalars("Train/lr")]
    assert lr == pytest.approx(list(loss.lr), rel=1e-6)
    assert all(e.value > 0 for e in events.Scalars("Train/tokens_per_s"))
    retention = pd.read_parquet(e2e / L.training("tiny", 30, "original", "baseline", "retention.parquet"))
    means = retention.groupby(["split", "kind", "step"]).per_token.mean()
    for (split, kind, step), mean in means.items():
        scalars = {e.step: e.value for e in events.Scalars(f"Retention/{split}/{kind}/per_token")}
        assert scalars[step] == pytest.approx(mean, rel=1e-6)
    csv = pd.read_csv(e2e / L.monitor() / "csv" / job / "Train_loss.csv")
    assert list(csv.step) == list(loss.step)
    trained = {
        p.relative_to(e2e / L.monitor() / "tensorboard").as_posix()
        for p in (e2e / L.monitor() / "tensorboard").glob("*/*/*/*")
    }
    assert len(trained) == len(list((e2e / "results/e2e/continual").glob("*/*/*/*/loss.parquet")))  # every job
