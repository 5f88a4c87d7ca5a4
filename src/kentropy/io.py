"""Output helpers: nothing half-written is ever left at a final path."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import KentropyError


class TableError(KentropyError, ValueError):
    """A table that must not be written (a non-finite value) or cannot be read; the message names it."""


@contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling directory; move it to ``final`` only if the block succeeds."""
    final = Path(final)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def atomic_file(final: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path (same suffix); rename it to ``final`` only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.stem}.tmp-{os.getpid()}{final.suffix}")
    try:
        yield tmp
        tmp.replace(final)
    finally:
        tmp.unlink(missing_ok=True)


def check_finite(table, name: str, missing: tuple[str, ...] = ()) -> None:
    """Raise TableError naming ``name``, the column and the first bad row's keys (its non-float columns) when
    a float column holds NaN or infinity. Columns in ``missing`` may hold NaN (a missing value with a
    meaning the caller documents), never infinity."""
    import numpy as np

    floats = [c for c in table.columns if table[c].dtype.kind == "f"]  # numpy floats and pandas' Float64
    keys = [c for c in table.columns if c not in floats]
    for column in floats:
        values = table[column].to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isinf(values) if column in missing else ~np.isfinite(values)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            where = ", ".join(f"{k}={table[k].iloc[first]}" for k in keys) or f"row {first}"
            raise TableError(
                f"{name}: column {column!r} holds {int(bad.sum())} non-finite value(s) ({values[first]} at {where}); "
                "refusing to write it"
            )


def write_table(table, path: str | Path, missing: tuple[str, ...] = ()) -> None:
    """Write a DataFrame to Parquet atomically, recording the library version and code digest in the file's
    metadata (``pyarrow.parquet.read_schema(path).metadata``: ``kentropy_version``, ``kentropy_code``).
    Refuses NaN and infinity (``check_finite``) except NaN in the ``missing`` columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .provenance import table_metadata

    check_finite(table, str(path), missing)
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), **table_metadata()})
    with atomic_file(path) as tmp:
        pq.write_table(arrow, tmp)


class InputError(KentropyError, OSError):
    """An input of a job cannot be read; the message names the file, the rule that writes it and how to redo it."""


@contextmanager
def reading(path: str | Path, producers: dict[str, str] | None = None) -> Iterator[Path]:
    """A block that reads ``path``: any failure to read it (truncated, not the format it should be) becomes
    an InputError naming the file, the rule that writes it (``producers``: {path: rule}, the ``producers``
    param of a rule) and the command that redoes it."""
    try:
        yield Path(path)
    except (OSError, ValueError, EOFError) as err:  # pyarrow's and numpy's read errors are among these
        if isinstance(err, KentropyError):
            raise
        why = " ".join(str(err).split())  # one line, whatever the reader's message
        raise InputError(f"{path}: cannot read it ({type(err).__name__}: {why}); {redo_hint(path, producers)}") from err


def read_table(path: str | Path, producers: dict[str, str] | None = None):
    """A Parquet input as a DataFrame (``reading``: a file that cannot be read names its rule)."""
    import pandas as pd

    with reading(path, producers):
        return pd.read_parquet(path)


def table_reader(producers: dict[str, str] | None):
    """``read_table`` bound to a rule's ``producers`` param: what a workflow script reads its tables with."""
    return lambda path: read_table(path, producers)


def redo_hint(path: str | Path, producers: dict[str, str] | None) -> str:
    """What to run to make ``path`` again: its rule, when known, forced to rerun."""
    rule = (producers or {}).get(str(path))
    if rule is None:
        return f"make it again with `snakemake --force {path}`, then run the workflow again"
    return f"it is written by rule {rule}: redo it with `snakemake --forcerun {rule}` (or `snakemake --force {path}`)"
