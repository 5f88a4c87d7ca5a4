"""What a script that may download imports first (the localrules' ``fetch_benchmarks``): ``from
kentropy.pipeline.download_job import snakemake`` sets the job's environment as kentropy.pipeline.compute_job does,
but online, before any Hugging Face library is imported."""

import os
import sys

from ..core.environment import job_environment

#: The job's Snakemake object (see kentropy.pipeline.compute_job).
snakemake = sys.modules["__main__"].snakemake
os.environ.update(job_environment(snakemake.config, offline=False))
