"""Output helpers: nothing half-written is ever left at a final path."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import KentropyError


class TableError(KentropyError, ValueError):
    """A table that must not be written (a non-finite value) or cannot be read; the message names it."""


#: The hidden file an output folder carries: {"kind": ...}, what wrote it (never hashed: integrity skips dot files).
MARKER = ".kentropy-output.json"


class OutputError(KentropyError, FileExistsError):
    """An output path that must not be written: it holds something this library did not write there, or its
    folder cannot be written. The message names the path and the way out."""


def check_output_dir(final: str | Path, kind: str, force: bool = False) -> None:
    """Raise OutputError unless ``final`` may become a ``kind`` folder: absent, empty, a previous ``kind``
    output (its ``MARKER`` says so), or ``force``; and its parent can be written. Called before any work."""
    final = Path(final)
    if final.is_symlink() or final.exists():
        if not force and not _replaceable(final, kind):
            raise OutputError(
                f"{final}: exists and is not a previous {kind} written here (no {MARKER} saying so); refusing to "
                "replace what it holds: move it away, choose another output, or pass --force"
            )
    _check_writable_parent(final)


def _replaceable(final: Path, kind: str) -> bool:
    if final.is_symlink() or not final.is_dir():
        return False
    if not any(final.iterdir()):
        return True
    try:
        return json.loads((final / MARKER).read_text()).get("kind") == kind
    except (OSError, ValueError, AttributeError):
        return False


def _check_writable_parent(final: Path) -> None:
    parent = final.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{final}: cannot write it ({parent} is not a writable folder)")


def check_output_file(final: str | Path, force: bool = False, ours=None) -> None:
    """Raise OutputError unless ``final`` may be written: absent, a file of the kind it will be (``ours(path)``;
    default: a Parquet table this library wrote, ``write_table``'s metadata), or ``force``; and its folder can
    be written. Called before any work."""
    final = Path(final)
    if (final.is_symlink() or final.exists()) and not force and not _is_file_of(final, ours or _our_table):
        raise OutputError(
            f"{final}: exists and is not an output kentropy wrote; refusing to overwrite it: move it away, choose "
            "another output, or pass --force"
        )
    _check_writable_parent(final)


def _is_file_of(path: Path, ours) -> bool:
    if path.is_symlink() or not path.is_file():
        return False
    try:
        return ours(path)
    except OSError:
        return False


def _our_table(path: Path) -> bool:
    import pyarrow.parquet as pq

    try:
        return b"kentropy_version" in (pq.read_schema(path).metadata or {})
    except (OSError, ValueError):
        return False


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_dir(final: str | Path, kind: str, force: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling directory; move it to ``final`` only if the block succeeds, marked as a
    ``kind`` output (``MARKER``). An existing ``final`` is replaced only if ``check_output_dir`` allows it:
    nothing but a previous output of the same kind is ever deleted."""
    final = Path(final)
    check_output_dir(final, kind, force)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp's 0700 would become the output's mode
    try:
        yield tmp
        (tmp / MARKER).write_text(json.dumps({"kind": kind}) + "\n")
        check_output_dir(final, kind, force)  # again: something may have appeared there meanwhile
        if final.is_symlink() or final.is_file():
            final.unlink()
        elif final.exists():
            shutil.rmtree(final)
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
