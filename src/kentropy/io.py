"""Output helpers: nothing half-written is ever left at a final path."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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


def sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks (fictional-knowledge pins, checkpoint and stream fingerprints)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_table(table, path: str | Path) -> None:
    """Write a DataFrame to Parquet atomically, recording the library version and code digest in the file's
    metadata (``pyarrow.parquet.read_schema(path).metadata``: ``kentropy_version``, ``kentropy_code``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .provenance import table_metadata

    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), **table_metadata()})
    with atomic_file(path) as tmp:
        pq.write_table(arrow, tmp)
