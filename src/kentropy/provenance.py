"""What made a result: digests of the library code a job runs, the version every table records, and the
fingerprint of a user's own (``source: local``) checkpoint.

A job's code digest is a rule param, so Snakemake reruns exactly the jobs whose code changed (see
docs/design.md, "What reruns a job"). It covers the ``kentropy`` modules the job's script imports,
followed transitively (imports inside functions and ``-m kentropy.<module>`` command lines included),
and hashes each module's syntax tree without docstrings: comments, docstrings and formatting rerun nothing.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .io import sha256

PACKAGE = Path(__file__).resolve().parent
# A module run as a program: the argument after ``-m`` (kentropy.launch), or a whole ``-m kentropy.<module>``.
_MODULE_STRING = re.compile(r"(?:-m )?kentropy\.(\w+)")


def library_version() -> str:
    try:
        return version("kentropy")
    except PackageNotFoundError:  # a source tree on sys.path, not installed
        return "unknown"


def _imported_modules(path: Path, package: Path) -> set[str]:
    """Names of the kentropy modules a file imports or runs (``-m kentropy.<module>`` in a string)."""
    return set(_imported_names(path.read_text())) & {p.stem for p in package.glob("*.py")}


@cache
def _imported_names(source: str) -> frozenset[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            inside = node.level > 0 or (node.module or "").split(".")[0] == "kentropy"
            if not inside:
                continue
            sub = (node.module or "").removeprefix("kentropy").lstrip(".")
            names |= {sub.split(".")[0]} if sub else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name.split(".")[1] for a in node.names if a.name.startswith("kentropy.")}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names |= set(match.groups()) if (match := _MODULE_STRING.fullmatch(node.value)) else set()
    return frozenset(names)


def _normalised(path: Path) -> str:
    """The module's syntax tree without docstrings: what changes behaviour."""
    return _normalised_source(path.read_text())


@cache
def _normalised_source(source: str) -> str:  # cached by content: a DAG build digests ~20 scripts
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def modules_used(script: str | Path, package: Path = PACKAGE) -> list[str]:
    """The modules of ``package`` (kentropy) that ``script`` runs, followed transitively, sorted."""
    todo, seen = _imported_modules(Path(script), package), set()
    while todo:
        name = todo.pop()
        seen.add(name)
        todo |= _imported_modules(package / f"{name}.py", package) - seen
    return sorted(seen)


def _digest(paths) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{path.stem}\0{_normalised(path)}\0".encode())
    return digest.hexdigest()[:16]


def code_digest(script: str | Path, package: Path = PACKAGE) -> str:
    """sha256 (16 hex digits) of the library code ``script`` runs, ignoring docstrings, comments and layout."""
    return _digest(package / f"{name}.py" for name in modules_used(script, package))


@cache
def library_digest() -> str:
    """The code digest of the whole library (every module), once per process."""
    return _digest(sorted(PACKAGE.glob("*.py")))


def table_metadata() -> dict[bytes, bytes]:
    """Parquet key-value metadata every table carries: the library version and its code digest."""
    return {b"kentropy_version": library_version().encode(), b"kentropy_code": library_digest().encode()}


def local_checkpoint_fingerprint(folder: str | Path, cache_file: str | Path) -> dict[str, str]:
    """{file: "size:sha256"} of a checkpoint folder's weight files and config, so a checkpoint changed in
    place is noticed. Hashes are cached in ``cache_file`` by (path, size, mtime): a DAG build hashes a
    file only when it changed."""
    from .hub import WEIGHT_SUFFIXES

    cache_path = Path(cache_file)
    known = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    fingerprint, changed = {}, False
    for f in sorted(Path(folder).iterdir()):
        if not (f.name.endswith(WEIGHT_SUFFIXES) or f.name == "config.json"):
            continue
        stat = f.stat()
        key = f"{f.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        if key not in known:
            known[key], changed = sha256(f), True
        fingerprint[f.name] = f"{stat.st_size}:{known[key]}"
    if changed:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(known, sort_keys=True))
        tmp.replace(cache_path)
    return fingerprint
