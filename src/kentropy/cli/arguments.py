"""Which checkpoint a command names, and the key columns its outputs carry: shared by the ``kentropy``
subcommands (kentropy.cli.commands) and ``python -m kentropy.cli.downstream``. Imports nothing heavy, so the
library modules that have a command line of their own can use it without reaching the measuring code."""

from __future__ import annotations

import argparse
import math
import sys
import traceback
from pathlib import Path

from ..core.errors import KentropyError


class ModelNotFound(KentropyError, FileNotFoundError):
    """``--model`` names a local folder that is not there."""


class UsageError(KentropyError, ValueError):
    """Arguments that do not go together; the message names them."""


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (batch sizes, lengths, counts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not >= 1")
    return value


def percent(text: str) -> float:
    """An argparse type: a percentage in (0, 100]."""
    value = _number(text)
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"{text} is not a percentage in (0, 100]")
    return int(value) if value == int(value) else value


def positive_finite(text: str) -> float:
    """An argparse type: a finite number > 0."""
    value = _number(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number > 0")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def existing_file(text: str) -> str:
    """An argparse type: a file that exists (so a typo stops the command before any model is loaded)."""
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"no file {text}" + (" (a folder)" if Path(text).is_dir() else ""))
    return text


def existing_dir(text: str) -> str:
    """An argparse type: a folder that exists."""
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"no folder {text}")
    return text


def add_output_arguments(parser: argparse.ArgumentParser, help: str) -> None:
    """``--out`` and ``--force``: an existing output is replaced only if kentropy wrote it, or with --force."""
    parser.add_argument("--out", required=True, help=help)
    parser.add_argument(
        "--force", action="store_true", help="replace --out even if it holds something kentropy did not write"
    )


def add_debug_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> None:
    """Parse ``argv`` and run the command it names (``args.run``). An error the user can fix (KentropyError,
    a file that cannot be read or written) prints one line naming the argument or file and exits 1; the
    traceback only with ``--debug``."""
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (KentropyError, OSError, UnicodeDecodeError) as err:
        if getattr(args, "debug", False):
            traceback.print_exc()
        message = " ".join(str(err).split()) or type(err).__name__
        sys.exit(f"{' '.join(filter(None, [parser.prog, getattr(args, 'command', None)]))}: error: {message}")


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
    from ..sources.hub import DEFAULT_REVISION_REGEX, verified_snapshot

    if _looks_local(name):
        raise ModelNotFound(f"--model {args.model}: no such folder")
    if "/" not in name:
        raise SystemExit(f"--model {args.model}: neither a folder nor a Hub repo (owner/name)")
    pattern = args.revision_regex or DEFAULT_REVISION_REGEX
    folder, revision, _ = verified_snapshot(name, revision, args.step, args.hf_cache, pattern)
    return str(folder), {"model": name, "revision": revision, "step": args.step}


def _looks_local(name: str) -> bool:
    """Whether ``--model`` can only mean a folder: an absolute or ./ path, more than owner/name, or a path
    whose first component is a folder here (``resources/…``)."""
    parts = Path(name).parts
    return (
        name.startswith(("/", ".", "~"))
        or len(parts) > 2
        or (len(parts) == 2 and Path(parts[0]).is_dir())
        or name.endswith("/")
    )


def keyed(table, keys: dict):
    """``table`` with the checkpoint's columns first: model, revision (null for a folder), step (null unless
    given)."""
    import pandas as pd

    table = table.copy()
    table.insert(0, "model", keys["model"])
    table.insert(1, "revision", pd.Series([keys["revision"]] * len(table), dtype="string", index=table.index))
    table.insert(2, "step", pd.Series([keys["step"]] * len(table), dtype="Int64", index=table.index))
    return table


def run_program(description: str, add_arguments, run, argv: list[str] | None = None) -> None:
    """A subcommand run as its own program (``python -m kentropy.cli.<name>``): its arguments, ``--debug``, and
    ``run_command``'s one-line errors."""
    parser = argparse.ArgumentParser(description=description)
    add_arguments(parser)
    add_debug_argument(parser)
    parser.set_defaults(run=run)
    run_command(parser, argv)
