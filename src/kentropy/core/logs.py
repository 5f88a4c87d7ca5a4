"""Per-rule logs: a Snakemake script sends its logging, warnings and progress bars to its log file."""

from __future__ import annotations

import contextlib
import logging
import traceback
from collections.abc import Iterator


@contextlib.contextmanager
def log_to(path: str) -> Iterator[logging.Logger]:
    """Redirect stdout, stderr (tqdm, warnings) and the root logger to ``path`` for the block. An exception
    leaving the block is written to the log (traceback, then the one-line error) before it propagates, so
    the job's log holds its failure (Snakemake prints the log of a failed job)."""
    with open(path, "w", buffering=1) as stream, contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            yield logging.getLogger("kentropy")
        except BaseException as err:
            stream.write(traceback.format_exc())
            stream.write(f"error: {type(err).__name__}: {err}\n")
            raise
        finally:
            root.removeHandler(handler)
