"""Which checkpoint a command names, and the key columns its outputs carry: shared by the ``kentropy``
subcommands (kentropy.cli) and ``python -m kentropy.downstream``. Imports nothing heavy, so the library
modules that have a command line of their own can use it without reaching the measuring code."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--revision``, ``--step``, ``--hf-cache``: the checkpoint a subcommand reads."""
    parser.add_argument("--model", required=True, help="save_pretrained folder, or Hub repo (repo@revision)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--revision", help="Hub branch, tag or commit sha")
    which.add_argument("--step", type=int, help="pretraining step: the Hub branch whose name carries it")
    parser.add_argument("--revision-regex", help="branch pattern whose group 1 is the step (default: step<N>…)")
    parser.add_argument("--hf-cache", help="Hugging Face cache folder (default: the user's HF cache)")


def resolve_model(args: argparse.Namespace) -> tuple[str, dict]:
    """(local folder, key columns for the output: model, revision, step) of the checkpoint ``args`` name."""
    name, _, at = args.model.partition("@")
    revision = args.revision or at or None
    if args.revision and at:
        raise SystemExit(f"--model {args.model} names a revision; drop --revision {args.revision}")
    if Path(args.model).is_dir():
        if revision:
            raise SystemExit(f"--model {args.model} is a local folder: it has no --revision")
        return args.model, {"model": args.model, "revision": None, "step": args.step}
    from .hub import DEFAULT_REVISION_REGEX, verified_snapshot

    if "/" not in name:
        raise SystemExit(f"--model {args.model}: neither a folder nor a Hub repo (owner/name)")
    pattern = args.revision_regex or DEFAULT_REVISION_REGEX
    folder, revision, _ = verified_snapshot(name, revision, args.step, args.hf_cache, pattern)
    return str(folder), {"model": name, "revision": revision, "step": args.step}


def keyed(table, keys: dict):
    """``table`` with the checkpoint's columns first: model, revision (null for a folder), step (null unless
    given)."""
    import pandas as pd

    table = table.copy()
    table.insert(0, "model", keys["model"])
    table.insert(1, "revision", pd.Series([keys["revision"]] * len(table), dtype="string", index=table.index))
    table.insert(2, "step", pd.Series([keys["step"]] * len(table), dtype="Int64", index=table.index))
    return table
