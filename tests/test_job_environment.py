"""A workflow script's first import sets the job's environment before any heavy library is imported
(kentropy.pipeline.compute_job, download_job), and ruff keeps that import first."""

import os
import subprocess
import sys

from .conftest import ROOT

SCRIPT = """
import sys, types
snakemake = types.SimpleNamespace(config={"hf_cache": "/tmp/hf cache"})
from kentropy.pipeline.{module} import snakemake as job
import os
assert job is snakemake
heavy = sorted(m for m in ("torch", "transformers", "datasets", "huggingface_hub") if m in sys.modules)
print(os.environ.get("HF_HUB_OFFLINE"), os.environ["HF_DATASETS_CACHE"], os.environ["MKL_DYNAMIC"], heavy)
"""


def run(module: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MKL_", "OMP_"))}
    code = SCRIPT.replace("{module}", module)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return done.stdout.strip()


def test_a_compute_job_is_offline_with_the_configs_cache_and_held_threads_before_any_heavy_import():
    assert run("compute_job") == "1 /tmp/hf cache/datasets FALSE []"
    assert run("download_job") == "None /tmp/hf cache/datasets FALSE []"


def test_every_script_that_imports_a_heavy_library_sets_its_environment_first():
    for script in sorted((ROOT / "workflow/scripts").glob("*.py")):
        text = script.read_text()
        if any(f"import {m}" in text for m in ("torch", "transformers", "datasets")) or "continual_job" in text:
            first = next(line for line in text.splitlines() if line.startswith(("import ", "from ")))
            assert first.startswith("from kentropy.pipeline.") and first.endswith("_job import snakemake"), script
