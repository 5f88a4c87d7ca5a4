"""What made a result: digests of the library code a job runs, the version every table records, and the
fingerprint of a user's own (``source: local``) checkpoint.

A job's code digest is a rule param, so Snakemake reruns exactly the jobs whose code changed (see
docs/design.md, "What reruns a job"). It covers the ``kentropy`` modules the job's script imports,
followed transitively (imports inside functions and ``-m kentropy.<module>`` command lines included),
and hashes each module's syntax tree without docstrings: comments, docstrings and formatting rerun nothing.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import re
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .hashing import sha256
from .layout import WEIGHT_SUFFIXES
from .user_cache import user_cache

PACKAGE = Path(__file__).resolve().parents[1]  # src/kentropy
#: What each module's source gives (its normalised digest, its import statements), by the sha256 of its bytes:
#: the user's cache, shared by every checkout (``_by_content``).
CODE_CACHE = user_cache("code")
# A module run as a program: the argument after ``-m`` (kentropy.pipeline.launch), or a whole ``-m kentropy.<module>``.
_MODULE_STRING = re.compile(r"(?:-m )?kentropy\.([\w.]+)")


def library_version() -> str:
    try:
        return version("kentropy")
    except PackageNotFoundError:  # a source tree on sys.path, not installed
        return "unknown"


def _import_statements(path: Path) -> list[tuple[int, str, list[str]]]:
    """(level, module, imported names) of every import in the module at ``path``, inside functions too, and
    ``-m kentropy.<module>`` in a string as an absolute import."""
    return _by_content("imports", path.read_bytes(), _parsed_imports, lambda v: isinstance(v, list))


def _parsed_imports(source: str) -> list[tuple[int, str, list[str]]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or "", [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(0, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if match := _MODULE_STRING.fullmatch(node.value):
                found.append((0, f"kentropy.{match[1]}", []))
    return found


def package_modules(package: Path) -> dict[str, Path]:
    """{dotted name: file} of every module of ``package``, relative to it (``entropy``, ``meters.sparsity``, ``meters``
    for a subpackage's ``__init__``), from one walk of its folders: following a script's imports asks for thousands
    of names."""
    found = {}
    for path in sorted(package.rglob("*.py"), key=lambda p: p.name == "__init__.py"):  # a module before a package
        parts = path.relative_to(package).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            found.setdefault(".".join(parts), path)
    return found


def imported_modules(path: Path, name: str | None, modules: dict[str, Path]) -> set[str]:
    """Dotted names of the kentropy modules a file imports or runs, with every package above them (importing
    ``kentropy.measurement.meters.kernels`` runs ``meters/__init__.py``). ``name``: the file's own module name, for its
    relative imports (None for a script outside the package); ``modules``: ``package_modules`` of the package."""
    here = [] if name is None else name.split(".")[: None if path.name == "__init__.py" else -1]
    found = set()
    for level, module, names in _import_statements(path):
        if level == 0:
            if module.split(".")[0] != "kentropy":
                continue
            base = module.split(".")[1:]
        elif name is None:
            continue
        else:
            base = here[: len(here) - level + 1] + (module.split(".") if module else [])
        for target in (base, *(base + [n] for n in names)):  # ``from .pkg import module`` imports a module
            for depth in range(1, len(target) + 1):
                dotted = ".".join(target[:depth])
                if dotted in modules:
                    found.add(dotted)
    return found


#: This process's values of ``_by_content``, by (kind, sha256 of the source): a DAG build asks for the same
#: module's imports hundreds of times.
_KNOWN: dict[tuple[str, str], object] = {}


def _by_content(kind: str, source: bytes, compute, valid):
    """``compute(source)`` (a JSON value) for a module's ``source``, kept in ``CODE_CACHE / kind`` under the
    sha256 of the bytes (and in ``_KNOWN``): parsing the library takes most of a second, and every DAG build and
    every job that writes a table (``library_digest``) would parse it again. A cache that cannot be read or
    written is only slower; an entry that is not ``valid`` JSON is computed again."""
    key = hashlib.sha256(source).hexdigest()
    if (kind, key) in _KNOWN:
        return _KNOWN[kind, key]
    _KNOWN[kind, key] = value = _stored(CODE_CACHE / kind / key, source, compute, valid)
    return value


def _stored(cached: Path, source: bytes, compute, valid):
    """The valid value in the file ``cached``, else ``compute(source)`` written there (whole or not at all)."""
    with contextlib.suppress(OSError, ValueError):
        if valid(value := json.loads(cached.read_text())):
            return value
    value = compute(source.decode())
    with contextlib.suppress(OSError):
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(f"{cached.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(value))
        os.replace(partial, cached)  # whole or absent, whoever writes it at the same time
    return value


def _normalised_digest(path: Path) -> str:
    """sha256 of the module's syntax tree without docstrings: what changes behaviour."""
    return _by_content("digests", path.read_bytes(), _tree_digest, lambda v: isinstance(v, str) and len(v) == 64)


def _tree_digest(source: str) -> str:
    return hashlib.sha256(_normalised_source(source).encode()).hexdigest()


def _normalised_source(source: str) -> str:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def modules_used(script: str | Path, package: Path = PACKAGE) -> list[str]:
    """The modules of ``package`` (kentropy, subpackages included) that ``script`` runs, followed
    transitively, as sorted dotted names."""
    return sorted(_modules_used(script, package_modules(package)))


def _modules_used(script: str | Path, modules: dict[str, Path]) -> set[str]:
    todo, seen = imported_modules(Path(script), None, modules), set()
    while todo:
        name = todo.pop()
        seen.add(name)
        todo |= imported_modules(modules[name], name, modules) - seen
    return seen


def _digest(named_files) -> str:
    digest = hashlib.sha256()
    for name, path in named_files:
        digest.update(f"{name}\0{_normalised_digest(path)}\0".encode())
    return digest.hexdigest()[:16]


def code_digest(script: str | Path, package: Path = PACKAGE, modules: dict[str, Path] | None = None) -> str:
    """sha256 (16 hex digits) of the library code ``script`` runs, ignoring docstrings, comments and layout.
    ``modules``: ``package_modules(package)``, for a caller that digests many scripts (a DAG build)."""
    modules = package_modules(package) if modules is None else modules
    return _digest((name, modules[name]) for name in sorted(_modules_used(script, modules)))


@cache
def library_digest() -> str:
    """The code digest of the whole library (every module of every subpackage), once per process."""
    return _digest((str(p.relative_to(PACKAGE)), p) for p in sorted(PACKAGE.rglob("*.py")))


def table_metadata() -> dict[bytes, bytes]:
    """Parquet key-value metadata every table carries: the library version and its code digest."""
    return {b"kentropy_version": library_version().encode(), b"kentropy_code": library_digest().encode()}


def local_checkpoint_fingerprint(folder: str | Path, cache_file: str | Path) -> dict[str, str]:
    """{file: "size:sha256"} of a checkpoint folder's weight files and config, so a checkpoint changed in
    place is noticed. Hashes are cached in ``cache_file`` by (path, size, mtime): a DAG build hashes a
    file only when it changed."""
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
