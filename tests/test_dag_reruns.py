"""What the finished test DAG reruns, and what it refuses, when its config, a checkpoint, a table, its place or its
interpreter's path change: each case on the DAG itself (a dry run) or on a copy of it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from .conftest import ROOT, job_counts, snakemake
from .test_workflow import _variant_config


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
