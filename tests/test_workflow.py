"""The Snakemake DAG end to end on a small config, and plans of the paper configs without network."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--cores", "2"]


def snakemake(workdir: Path, *args: str, offline: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"} if offline else None
    return subprocess.run([*SNAKEMAKE, "--directory", str(workdir), *args], capture_output=True, text=True,
                          timeout=900, env=env)


def job_counts(output: str) -> dict[str, int]:
    stats = output.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M)}


@pytest.fixture(scope="module")
def e2e(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("e2e")
    proc = snakemake(work, "--configfile", str(ROOT / "tests/config/e2e.yaml"), offline=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work


def test_default_dag_produces_tables_and_figures(e2e):
    table = pd.read_parquet(e2e / "results/tables/entropy.parquet")
    assert set(table.step) == {10, 20, 30}
    assert set(table.metric) == {"knowledge_entropy", "knowledge_entropy_relu", "attention_entropy", "next_token_entropy"}
    assert list(table.columns) == ["model", "step", "metric", "layer", "value", "n_tokens", "corpus"]
    whole = table[table.layer.isna() & (table.metric == "knowledge_entropy")]
    per_layer = table[table.layer.notna() & (table.metric == "knowledge_entropy")].groupby("step").value.sum()
    assert (whole.set_index("step").value - per_layer).abs().max() < 1e-9
    for f in ("figure3.png", "figure8.png"):
        assert (e2e / "results/figures" / f).stat().st_size > 10_000
    assert (e2e / "logs/measure_entropy/tiny/step30.log").read_text().count("knowledge entropy") == 1


def test_figure3_reruns_alone(e2e):
    proc = snakemake(e2e, "--configfile", str(ROOT / "tests/config/e2e.yaml"), "--force", "figure3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert job_counts(proc.stderr) == {"figure3": 1}


@pytest.mark.parametrize("config, model, steps", [("olmo-1b.yaml", "olmo-1b", 10), ("olmo-7b.yaml", "olmo-7b", 8)])
def test_paper_configs_plan_offline(tmp_path, config, model, steps):
    proc = snakemake(tmp_path, "-n", "--configfile", str(ROOT / "config" / config), offline=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts["fetch_checkpoint"] == steps and counts["measure_entropy"] == steps
    assert counts["figure3"] == 1 and "pretrain_tiny" not in counts


def test_bad_config_fails_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "tests/config/e2e.yaml").read_text().replace("batch_size: 8\n  dtype", "batch_size: -1\n  dtype"))
    proc = snakemake(tmp_path, "-n", "--configfile", str(bad))
    assert proc.returncode != 0
    assert "config: entropy.batch_size: -1 is less than the minimum of 1\n" in proc.stdout + proc.stderr
