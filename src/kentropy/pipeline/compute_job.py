"""What a compute job's script imports first: ``from kentropy.pipeline.compute_job import snakemake`` sets the
job's environment (kentropy.core.environment.job_environment: the Hub and datasets offline, the config's cache,
thread counts held) before torch, transformers or datasets is imported, which read it once, at import, and hands
the script its Snakemake object. ruff's import sorting keeps this import first (pyproject.toml: the
``job-environment`` section)."""

import os
import sys

from ..core.environment import job_environment

#: The job's Snakemake object: Snakemake's script preamble defines it in the script's module (``__main__``, also
#: under the warm server's ``runpy``).
snakemake = sys.modules["__main__"].snakemake
os.environ.update(job_environment(snakemake.config))
