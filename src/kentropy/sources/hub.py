"""Checkpoints from the Hugging Face Hub, by pretraining step.

Intermediate checkpoints live on branches whose names carry the step and, for OLMo, a token count that
cannot be guessed (``step117850-tokens494B``). The branch is resolved at fetch time from the repo's refs
(``list_repo_refs``), or, offline (``HF_HUB_OFFLINE=1``), from the refs already in the local cache.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

import huggingface_hub
from huggingface_hub import HfApi, scan_cache_dir, snapshot_download

from ..core.errors import KentropyError
from ..core.integrity import SOURCE, CheckpointError, checkpoint_dir, file_hashes, write_checksums
from ..core.layout import WEIGHT_SUFFIXES

log = logging.getLogger(__name__)
DEFAULT_REVISION_REGEX = r"^step(\d+)(-tokens\d+[KMBT])?$"
# Weights, config and tokenizer; optimizer shards and other artifacts on some branches are skipped.
CHECKPOINT_FILES = ["*.json", "*.safetensors", "*.bin", "*.model", "*.txt", "*.py"]


class RevisionNotFound(KentropyError, LookupError):
    """No branch of the repo holds the requested step; the message lists the nearest ones."""


def branch_names(repo_id: str, cache_dir: str | None) -> tuple[list[str], str]:
    """Branch names of ``repo_id`` and where they came from (the Hub, or the cache and why)."""
    where = "in the local cache (offline)"
    if not huggingface_hub.constants.HF_HUB_OFFLINE:
        try:
            return [b.name for b in HfApi().list_repo_refs(repo_id).branches], "on the Hub"
        except Exception as err:  # no network, auth, missing repo: the cache may still hold the refs
            where = f"in the local cache (listing the Hub failed: {type(err).__name__}: {err})"
            log.warning("could not list the branches of %s (%s); using the local cache", repo_id, err)
    names: list[str] = []
    if cache_dir is None or Path(cache_dir).is_dir():
        for repo in scan_cache_dir(cache_dir).repos:
            if repo.repo_id == repo_id and repo.repo_type == "model":
                names += [ref for rev in repo.revisions for ref in rev.refs]
    return names, where


def step_revisions(branches: list[str], pattern: str = DEFAULT_REVISION_REGEX) -> dict[int, str]:
    """Map step -> branch name for the branches that match ``pattern`` (group 1 = the step)."""
    regex = re.compile(pattern)
    out = {}
    for name in branches:
        m = regex.match(name)
        if m:
            out[int(m.group(1))] = name
    return out


def resolve_revision(
    repo_id: str, step: int, cache_dir: str | None = None, pattern: str = DEFAULT_REVISION_REGEX
) -> str:
    """The branch of ``repo_id`` that holds ``step``; RevisionNotFound names the nearest available steps."""
    branches, where = branch_names(repo_id, cache_dir)
    steps = step_revisions(branches, pattern)
    if step in steps:
        return steps[step]
    if not steps:
        raise RevisionNotFound(f"{repo_id}: no branch matching {pattern!r} {where}")
    nearest = sorted(steps, key=lambda s: (abs(s - step), s))[:4]
    listing = ", ".join(f"{s} ({steps[s]})" for s in sorted(nearest))
    raise RevisionNotFound(f"{repo_id}: no checkpoint for step {step}; nearest available steps: {listing}")


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link a cached blob into the checkpoint folder (no extra disk), copying across filesystems."""
    src = src.resolve()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def hub_hashes(repo_id: str, commit: str, names: list[str]) -> dict[str, str]:
    """{file name: the Hub's hash} of files at ``commit``: the LFS sha256, or the git blob sha1 of a file not
    stored with LFS (the repository's file metadata). Offline, or when the Hub cannot be asked, the HF cache
    records the same hashes as its blob names (``blobs/<etag>``); ``cached_hashes`` reads them there."""
    infos = HfApi().get_paths_info(repo_id, names, revision=commit)
    return {i.path: (i.lfs.sha256 if i.lfs else i.blob_id) for i in infos}


def cached_hashes(snapshot: Path, names: list[str]) -> dict[str, str]:
    """{file name: the hash the HF cache names its blob by} (the LFS sha256, or a non-LFS file's git blob sha1)."""
    return {name: (snapshot / name).resolve().name for name in names}


def verified_weights(repo_id: str, snapshot: Path) -> dict[str, str]:
    """{file name: sha256} of the weight files of a downloaded snapshot, each hashed from its bytes and
    compared with the hash the Hub publishes for it (offline: the one the cache recorded when it was
    downloaded). A mismatch (a corrupted or truncated download, a blob changed in place) raises
    CheckpointError naming the file and both hashes."""
    names = sorted(f.name for f in snapshot.iterdir() if f.name.endswith(WEIGHT_SUFFIXES))
    where = "the HF cache's record"
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        expected = cached_hashes(snapshot, names)
    else:
        try:
            expected, where = hub_hashes(repo_id, snapshot.name, names), "the Hub's file metadata"
        except Exception as err:  # no network, auth: the cache holds the hashes the download was named by
            log.warning("could not read the file hashes of %s from the Hub (%s); using the cache's", repo_id, err)
            expected = cached_hashes(snapshot, names)
    hashes = {}
    for name in names:
        want = expected.get(name, "")
        sha, blob = file_hashes(snapshot / name, git_blob=len(want) == 40)  # 40 hex digits: not an LFS file
        if want not in (sha, blob):
            kind, got = ("git blob sha1", blob) if blob else ("sha256", sha)
            raise CheckpointError(
                f"{repo_id}@{snapshot.name}: {name}: {kind} of the downloaded bytes {got} differs from "
                f"{want or 'none'} ({where}); the download is corrupt or truncated: delete its blob "
                f"({(snapshot / name).resolve()}) and fetch again"
            )
        hashes[name] = sha
    return hashes


def verified_snapshot(
    repo_id: str,
    revision: str | None = None,
    step: int | None = None,
    cache_dir: str | None = None,
    pattern: str = DEFAULT_REVISION_REGEX,
) -> tuple[Path, str, dict[str, str]]:
    """The HF-cache snapshot of ``repo_id`` at ``revision`` (a branch, tag or commit sha), or at the branch
    that holds ``step`` when no revision is given (``main`` when neither is), downloaded if needed and its
    weights checked against the Hub's hashes (``verified_weights``). Returns (snapshot folder, revision,
    {weight file: sha256})."""
    if revision is None:
        revision = resolve_revision(repo_id, step, cache_dir, pattern) if step is not None else "main"
    try:
        snapshot = snapshot_download(repo_id, revision=revision, cache_dir=cache_dir, allow_patterns=CHECKPOINT_FILES)
    except Exception as err:  # offline misses and unknown revisions: say which repo and revision
        raise RevisionNotFound(f"{repo_id}@{revision}: cannot be read ({type(err).__name__}: {err})") from err
    snapshot = Path(snapshot)
    return snapshot, revision, verified_weights(repo_id, snapshot)


def fetch_checkpoint(
    repo_id: str,
    step: int,
    out_dir: str | Path,
    cache_dir: str | None = None,
    layout: str = "hf",
    pattern: str = DEFAULT_REVISION_REGEX,
    revision: str | None = None,
) -> None:
    """Download the checkpoint of ``step`` and write it to ``out_dir`` in ``save_pretrained`` format.

    ``revision`` (a commit sha or branch: ``models.<m>.revisions``) pins the step to that revision instead of
    the branch whose name carries the step. ``layout="hf_olmo"`` converts the older hf_olmo weights (OLMo-7B
    intermediate branches) to the transformers Olmo layout.
    """
    pinned = revision is not None
    # before anything is linked into resources/
    snapshot, revision, weights = verified_snapshot(repo_id, revision, step, cache_dir, pattern)
    with checkpoint_dir(out_dir) as tmp:
        if layout == "hf":
            for f in snapshot.iterdir():
                if f.is_file():
                    _link_or_copy(f, tmp / f.name)
            write_checksums(tmp, known=weights)  # the weights are the verified bytes: not read again
        elif layout == "hf_olmo":
            from .olmo_checkpoints import convert_hf_olmo_checkpoint

            convert_hf_olmo_checkpoint(snapshot, tmp)
            write_checksums(tmp)
        else:
            raise ValueError(f"models.*.layout: unknown layout {layout!r} (expected hf or hf_olmo)")
        (tmp / SOURCE).write_text(
            json.dumps(
                {
                    "repo_id": repo_id,
                    "step": step,
                    "revision": revision,
                    "pinned": pinned,
                    "commit": snapshot.name,
                    "layout": layout,
                    "weights_sha256": weights,
                }
            )
        )
