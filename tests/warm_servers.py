"""The session's fork servers (kentropy.pipeline.warm): child interpreters of the tests (Snakemake runs and the
training and CLI programs) start as forks of a process that imported their libraries once, instead of importing
torch, transformers, DeepSpeed, lm-eval and Snakemake each time (about 2 CPU-seconds of every DAG build).

One server per environment the tests use: as the workflow's, a server serves a request warm only when the
request's import-time variables (``kentropy.pipeline.warm.IMPORT_TIME``) equal its own, so a test that sets
one (``PYTHONPATH``, a thread count, …) still gets a cold interpreter, and what a test checks about its child's
start-up is unchanged. Started on first use (``command``), stopped when the session ends (``stop``)."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile
import threading
import warnings
from pathlib import Path

#: The switches that keep the Hugging Face libraries from the network (the tests' ``offline=True``).
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def preload() -> tuple[str, ...]:
    """What the servers import: what the jobs import, scikit-learn (lm-eval's metrics) and Snakemake with the
    Slurm executor plugin (which every DAG build imports)."""
    from kentropy.pipeline.warm import PRELOAD

    return (*PRELOAD, "sklearn", "snakemake.cli", "snakemake_executor_plugin_slurm")


class WarmServers:
    def __init__(self):
        self._lock = threading.Lock()
        self._servers: dict[bool, object] = {}
        self._root: Path | None = None

    def command(self, offline: bool) -> list[str]:
        """``python`` as the tests start it, through the server of the environment ``os.environ`` (with
        ``OFFLINE`` when ``offline``)."""
        with self._lock:
            if offline not in self._servers:
                self._servers[offline] = self._start(offline)
        return [sys.executable, "-m", "kentropy.pipeline.warm", "--socket", self._servers[offline].path]

    def _start(self, offline: bool):
        from kentropy.pipeline.warm import Server

        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="kentropy-warm-"))
            # Variables libraries set in this process when a test first uses them, set now, so that the
            # environments the tests pass on are the servers': importing DeepSpeed, lm-eval, scikit-learn; a model
            # loaded by transformers (its inductor cache folder).
            from torch._inductor.runtime.cache_dir_utils import cache_dir

            with warnings.catch_warnings():  # the libraries' own deprecations, not the tests' concern
                warnings.simplefilter("ignore", DeprecationWarning)
                for name in preload():
                    importlib.import_module(name)
            cache_dir()
        name = "offline" if offline else "online"
        environ = {**os.environ, **OFFLINE} if offline else None
        return Server({}, str(self._root / f"{name}.log"), root=self._root / name, preload=preload(), environ=environ)

    def stop(self) -> None:
        with self._lock:
            for server in self._servers.values():
                server.stop()
            self._servers.clear()
            if self._root is not None:
                shutil.rmtree(self._root, ignore_errors=True)
                self._root = None


SERVERS = WarmServers()
