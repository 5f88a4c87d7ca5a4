"""File digests: one chunked reader for checkpoint checksums, pins, fingerprints and code provenance.
Imports nothing of kentropy, so every module can use it."""

from __future__ import annotations

import hashlib
from pathlib import Path


def digest_file(path: str | Path, *digests) -> None:
    """Feed a file's bytes to each of ``digests`` (hashlib objects), read once in chunks."""
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            for digest in digests:
                digest.update(chunk)


def sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks (fictional-knowledge pins, checkpoint and stream fingerprints)."""
    digest = hashlib.sha256()
    digest_file(path, digest)
    return digest.hexdigest()
