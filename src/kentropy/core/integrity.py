"""Checkpoint integrity: every file of a checkpoint is hashed by the job that writes it and checked by every
job that reads it, and a Hub download is checked against the Hub's own hashes before it is used.

A checkpoint changed in place (a flipped byte, a NaN written into a weight, a truncated copy) keeps its
size and can keep its mtime, so neither Snakemake nor a size check notices; only the bytes tell. The job
that writes a checkpoint (fetch, pretraining, resuscitation, continual training) records the sha256 of each
of its files in ``CHECKSUMS`` beside them; ``verify`` hashes them again before a model is built from the
folder. A folder without ``CHECKSUMS`` is a user's own (``source: local``), whose bytes the DAG build
fingerprints instead (kentropy.core.provenance.local_checkpoint_fingerprint).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from .errors import KentropyError
from .hashing import digest_file, sha256
from .io import MARKER, atomic_dir

log = logging.getLogger(__name__)

#: The checksum file beside a checkpoint's files: {file name: sha256}.
CHECKSUMS = "checksums.json"
#: A fetched checkpoint's provenance: repo_id, step, revision, commit, layout, weights_sha256 (hub.fetch).
SOURCE = "source.json"
#: Files written beside a checkpoint that are not part of it (provenance, and the checksums themselves).
NOT_HASHED = frozenset({CHECKSUMS, SOURCE})
#: The record each checkpoint writer leaves in the folder, and its rule: a folder holding one was written by
#: the pipeline, so it must carry its checksums (``verify``).
WRITERS = {
    SOURCE: "fetch_checkpoint",
    "pretrain.json": "pretrain_tiny",
    "continual.json": "continual_train",
    "resuscitation.json": "resuscitate",
}


class CheckpointError(KentropyError, OSError):
    """A checkpoint folder cannot be used: it cannot be loaded, or a file's bytes differ from their recorded
    hash. The message names the folder or file and the cause."""


def file_hashes(path: str | Path, git_blob: bool = False) -> tuple[str, str | None]:
    """(sha256, git blob sha1 or None) of a file, read once in chunks. The git blob id is what the Hub's
    cache names a file that is not stored with LFS."""
    sha = hashlib.sha256()
    if not git_blob:
        digest_file(path, sha)
        return sha.hexdigest(), None
    blob = hashlib.sha1(f"blob {Path(path).stat().st_size}\0".encode())
    digest_file(path, sha, blob)
    return sha.hexdigest(), blob.hexdigest()


def folder_files(folder: str | Path) -> list[Path]:
    """The files that make up a checkpoint: weights, configs and tokenizer; not the records beside them, nor
    hidden files (Snakemake marks a directory output with ``.snakemake_timestamp``)."""
    files = sorted(Path(folder).iterdir())
    return [f for f in files if f.is_file() and f.name not in NOT_HASHED and not f.name.startswith(".")]


def hash_folder(folder: str | Path, known: dict[str, str] | None = None) -> dict[str, str]:
    """{file name: sha256} of a checkpoint's files; files in ``known`` (already hashed) are not read again.
    Files are hashed in parallel (hashlib releases the GIL), so a sharded checkpoint reads at disk speed."""
    known = known or {}
    files = [f for f in folder_files(folder) if f.name not in known]
    with ThreadPoolExecutor(max_workers=max(1, min(4, len(files)))) as pool:
        hashed = dict(zip((f.name for f in files), pool.map(sha256, files)))
    return dict(sorted({**hashed, **{k: v for k, v in known.items() if (Path(folder) / k).is_file()}}.items()))


def write_checksums(folder: str | Path, known: dict[str, str] | None = None) -> dict[str, str]:
    """Record the sha256 of every file of the checkpoint in ``folder`` (before it is moved into place)."""
    hashes = hash_folder(folder, known)
    (Path(folder) / CHECKSUMS).write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n")
    return hashes


#: The ``kind`` of every checkpoint folder the library writes (kentropy.core.io.MARKER).
CHECKPOINT = "checkpoint"


@contextmanager
def checkpoint_dir(final: str | Path, force: bool = False) -> Iterator[Path]:
    """``atomic_dir`` for a checkpoint: the folder is moved into place only if every floating-point tensor of
    its weight files is finite (``check_finite_weights``), so no writer ever leaves a NaN checkpoint."""
    with atomic_dir(final, CHECKPOINT, force) as tmp:
        yield tmp
        check_finite_weights(tmp, final)


def check_finite_weights(folder: str | Path, name: str | Path | None = None) -> None:
    """Raise CheckpointError naming the checkpoint (``name``, default ``folder``), the tensor and its file when a
    floating-point weight holds NaN or infinity. Reads one tensor at a time (safetensors, or PyTorch's
    ``.bin`` with ``weights_only``), so memory stays at the largest tensor."""
    import torch
    from safetensors import safe_open

    for path in folder_files(folder):
        if path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118 (a safetensors handle is not a dict)
                    _check_tensor(key, handle.get_tensor(key), path, name or folder)
        elif path.suffix == ".bin" and path.name.startswith("pytorch_model"):
            for key, tensor in torch.load(path, map_location="cpu", weights_only=True, mmap=True).items():
                _check_tensor(key, tensor, path, name or folder)


def _check_tensor(key: str, tensor, path: Path, name) -> None:
    import torch

    if tensor.is_floating_point():
        bad = int((~torch.isfinite(tensor)).sum())
        if bad:
            raise CheckpointError(
                f"{name}: weight {key} ({path.name}) holds {bad} non-finite value(s) of {tensor.numel()}; "
                "refusing to write the checkpoint"
            )


def writer(folder: str | Path) -> str | None:
    """The rule that wrote the checkpoint in ``folder`` (from the record it left), or None for a user's own."""
    return next((rule for record, rule in WRITERS.items() if (Path(folder) / record).is_file()), None)


def read_side_file(path: str | Path, rule: str | None) -> dict:
    """A JSON record beside a checkpoint, as a mapping; CheckpointError naming the file and the rule that
    writes it when it is truncated or not a mapping."""
    try:
        value = json.loads(Path(path).read_text())
        if not isinstance(value, dict):
            raise ValueError(f"a {type(value).__name__}, not a mapping")
    except (OSError, ValueError) as err:
        by = f"rule {rule}" if rule else "the job that wrote the checkpoint"
        raise CheckpointError(
            f"{path}: cannot read it ({type(err).__name__}: {' '.join(str(err).split())}); it is written by {by}: "
            f"redo the checkpoint (snakemake --force {Path(path).parent})"
        ) from None
    return value


def recorded(folder: str | Path) -> dict[str, str] | None:
    """The hashes recorded beside a checkpoint, or None for a folder the pipeline did not write. A folder whose
    records say the pipeline wrote it (``WRITERS``, or the output marker) but that lacks them is refused: its
    bytes could be anything."""
    folder = Path(folder)
    path, rule = folder / CHECKSUMS, writer(folder)
    if not path.is_file():
        if rule or (folder / MARKER).is_file():
            by = f"rule {rule}" if rule else "the pipeline"
            raise CheckpointError(
                f"{folder}: written by {by}, but its {CHECKSUMS} is missing, so its bytes cannot be verified; "
                f"redo the checkpoint (snakemake --force {folder})"
            )
        return None
    hashes = read_side_file(path, rule)
    if not all(isinstance(k, str) and isinstance(v, str) and len(v) == 64 for k, v in hashes.items()):
        raise CheckpointError(
            f"{path}: not a {{file: sha256}} record; redo the checkpoint (snakemake --force {folder})"
        )
    return hashes


def read_source(folder: str | Path) -> dict:
    """A fetched checkpoint's ``SOURCE`` record, checked: readable, with its fields, and (the Hub's files copied as
    they are: layout hf) its weights' hashes the ones ``CHECKSUMS`` holds, so an edited record cannot claim
    what the bytes are not."""
    folder = Path(folder)
    source = read_side_file(folder / SOURCE, WRITERS[SOURCE])
    missing = [k for k in ("repo_id", "step", "revision", "layout", "weights_sha256") if k not in source]
    weights = source.get("weights_sha256")
    hashes = recorded(folder) or {}
    copied = not missing and source["layout"] == "hf"
    if missing or not isinstance(weights, dict) or (copied and any(hashes.get(k) != v for k, v in weights.items())):
        what = f"no {missing[0]}" if missing else f"its weights_sha256 disagree with {CHECKSUMS}"
        raise CheckpointError(
            f"{folder / SOURCE}: {what}; it is written by rule {WRITERS[SOURCE]}: redo the checkpoint "
            f"(snakemake --force {folder})"
        )
    return source


def verify(folder: str | Path) -> dict[str, str] | None:
    """Check every file of the checkpoint in ``folder`` against the hashes its producer recorded; raise
    CheckpointError naming the first file that differs, is missing or was added. Returns the hashes (None,
    with nothing checked, for a folder without ``CHECKSUMS``: a user's own checkpoint)."""
    folder = Path(folder)
    expected = recorded(folder)
    if expected is None:
        log.info("%s: no %s (not written by this pipeline); its bytes are not verified", folder, CHECKSUMS)
        return None
    present = {f.name for f in folder_files(folder)}
    missing, added = sorted(set(expected) - present), sorted(present - set(expected))
    if missing or added:
        what = f"{missing[0]} is missing" if missing else f"{added[0]} was added"
        raise CheckpointError(f"{folder}: {what} since its producer recorded {CHECKSUMS}; redo the checkpoint")
    actual = hash_folder(folder)
    for name, sha in expected.items():
        if actual[name] != sha:
            raise CheckpointError(
                f"{folder / name}: sha256 {actual[name]} differs from {sha} recorded when it was written "
                f"({CHECKSUMS}); the file changed since: redo the checkpoint (snakemake --force {folder})"
            )
    return expected
