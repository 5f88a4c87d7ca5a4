"""Build a local Hugging Face Hub cache by hand (blobs, snapshots, refs), as snapshot_download leaves it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def add_revision(cache_dir: Path, repo_id: str, branch: str, files: dict[str, bytes]) -> str:
    """Store ``files`` as one commit of ``repo_id`` on ``branch``; returns the commit hash."""
    repo = cache_dir / f"models--{repo_id.replace('/', '--')}"
    commit = hashlib.sha1(branch.encode() + b"".join(sorted(files.values()))).hexdigest()
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "blobs").mkdir(exist_ok=True)
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / name
        link.unlink(missing_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / branch).write_text(commit)
    return commit


def folder_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
