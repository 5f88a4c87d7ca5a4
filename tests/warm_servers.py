"""The session's fork server (kentropy.pipeline.warm): child interpreters of the tests (Snakemake runs and the
training and CLI programs) start as forks of a process that imported their libraries once, instead of importing
torch, transformers, DeepSpeed, lm-eval and Snakemake each time (about 2 CPU-seconds of every DAG build).

Its environment is the session's with the Hugging Face libraries offline (``OFFLINE``: no test reaches the
network). As the workflow's, it serves a request warm only when the request's import-time variables
(``kentropy.pipeline.warm.IMPORT_TIME``) equal its own, so a test that sets one (``PYTHONPATH``, a thread count,
…) still gets a cold interpreter, and what a test checks about its child's start-up is unchanged. Started on
first use (``command``), stopped when the session ends (``stop``); one per pytest-xdist worker."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile
import threading
import warnings
from pathlib import Path

from kentropy.core.environment import OFFLINE


def offline_environ(**extra: str) -> dict[str, str]:
    """The session's environment with the Hugging Face libraries offline (and ``extra``): the server's own, and what
    the tests run their programs in."""
    return {**os.environ, **OFFLINE, **extra}


def preload() -> tuple[str, ...]:
    """What the server imports: what the jobs import, scikit-learn (lm-eval's metrics) and Snakemake with the
    Slurm executor plugin (which every DAG build imports)."""
    from kentropy.pipeline.warm import PRELOAD

    return (*PRELOAD, "sklearn", "snakemake.cli", "snakemake_executor_plugin_slurm")


class WarmServer:
    def __init__(self):
        self._lock = threading.Lock()
        self._server = None
        self._root: Path | None = None

    def command(self) -> list[str]:
        """``python`` as the tests start it, through the server: warm when run in ``offline_environ()``."""
        with self._lock:
            if self._server is None:
                self._server = self._start()
        return [sys.executable, "-m", "kentropy.pipeline.warm", "--socket", self._server.path]

    def _start(self):
        from torch._inductor.runtime.cache_dir_utils import cache_dir

        from kentropy.pipeline.warm import Server

        self._root = Path(tempfile.mkdtemp(prefix="kentropy-warm-"))
        # Variables libraries set in this process when a test first uses them, set now, so that the environments the
        # tests pass on are the server's: importing DeepSpeed, lm-eval, scikit-learn; a model loaded by transformers
        # (its inductor cache folder).
        with warnings.catch_warnings():  # the libraries' own deprecations, not the tests' concern
            warnings.simplefilter("ignore", DeprecationWarning)
            for name in preload():
                importlib.import_module(name)
        cache_dir()
        return Server({}, str(self._root / "server.log"), root=self._root, preload=preload(), environ=offline_environ())

    def stop(self) -> None:
        with self._lock:
            if self._server is not None:
                self._server.stop()
                self._server = None
            if self._root is not None:
                shutil.rmtree(self._root, ignore_errors=True)
                self._root = None


SERVER = WarmServer()
