"""Compute jobs never touch the network: they read what the localrules fetched into the HF cache.

Cluster compute nodes are often offline, and without these variables ``huggingface_hub`` and
``datasets`` would wait on connection timeouts before falling back to the cache. Set them before
``transformers``/``datasets`` are imported: both read them once, at import.
"""

from __future__ import annotations

from pathlib import Path

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
#: Thread counts held to the job's own (set before torch is imported): with dynamic adjustment, MKL's
#: default, a BLAS call may run on fewer threads than asked when the machine is loaded, and a reduction's
#: rounding follows its thread count. Set for every compute job (the entropy tables must be bit-identical).
FIXED_THREADS = {"MKL_DYNAMIC": "FALSE", "OMP_DYNAMIC": "FALSE"}


def hf_env(hf_cache: str | None = None, offline: bool = True) -> dict[str, str]:
    """Environment for a job: offline mode (compute jobs) and the config's dataset cache, if any."""
    env = {"HF_DATASETS_CACHE": str(Path(hf_cache, "datasets").resolve())} if hf_cache else {}
    return {**env, **OFFLINE} if offline else env


def job_environment(config: dict, offline: bool = True) -> dict[str, str]:
    """The environment every job of ``config`` runs in (kentropy.pipeline.compute_job, download_job, and the warm
    server's children): ``hf_env`` with the config's cache, and the thread counts held."""
    return {**hf_env(config["hf_cache"], offline), **FIXED_THREADS}
