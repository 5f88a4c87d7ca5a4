"""Per-rule logs: a Snakemake script sends its logging, warnings and progress bars to its log file."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator


@contextlib.contextmanager
def log_to(path: str) -> Iterator[logging.Logger]:
    """Redirect stdout, stderr (tqdm, warnings) and the root logger to ``path`` for the block."""
    with open(path, "w", buffering=1) as stream, contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            yield logging.getLogger("kentropy")
        finally:
            root.removeHandler(handler)
