"""Published checkpoint step lists, shipped as data (``data/checkpoints/``) and checked at DAG build; and
the integrity check of fetched checkpoints (identical weights under different steps).

A config that names an unpublished step of a known model stops before any job runs, offline, with the
nearest published steps; a model whose repo is in no manifest is resolved at fetch time as before.
``python -m kentropy.sources.manifests refresh NAME`` rewrites a list from the Hub's branches (online).
"""

from __future__ import annotations

import argparse
import bisect
import csv
import sys
from importlib.resources import files
from pathlib import Path

import yaml

from ..core.errors import KentropyError

DATA = files("kentropy").joinpath("data/checkpoints")


class ManifestError(KentropyError, ValueError):
    """A configured step is not a published checkpoint; the message names the model, step and neighbours."""


def sources() -> dict[str, dict]:
    """Every manifest: its repos, where its step list comes from, tokens per step, branch regex."""
    return yaml.safe_load(DATA.joinpath("sources.yaml").read_text())


def manifest_of(repo_id: str) -> str | None:
    """The manifest whose steps ``repo_id`` serves, if any."""
    return next((name for name, spec in sources().items() if repo_id in spec["repos"]), None)


#: ``models.<m>.manifest: none``: a model whose steps no shipped manifest lists (OLMo-2 stage 2, a private run).
NO_MANIFEST = "none"


def model_manifest(name: str, spec: dict) -> str | None:
    """The manifest a model's steps are checked against: ``models.<name>.manifest``, else the one that lists
    its repo; None for ``manifest: none``, a repo in no manifest, and models not from the Hub. ManifestError
    names the key when the named manifest does not exist."""
    if spec.get("source") != "hf" or spec.get("manifest") == NO_MANIFEST:
        return None
    named = spec.get("manifest")
    if named is not None and named not in sources():
        raise ManifestError(
            f"config: models.{name}.manifest: no manifest {named!r} (shipped: {', '.join(sources())}; "
            f"or {NO_MANIFEST!r} to check nothing)"
        )
    return named or manifest_of(spec["repo_id"])


def published(name: str) -> dict[int, int]:
    """Step -> tokens seen, of manifest ``name``, ascending."""
    with DATA.joinpath(f"{name}.csv").open() as f:
        return {int(row["step"]): int(row["tokens"]) for row in csv.DictReader(f)}


def tokens_seen(config: dict, model: str) -> dict[int, int]:
    """Tokens each configured checkpoint of ``model`` had seen in pretraining: step x
    ``models.<model>.tokens_per_step`` when given, else the published manifest's counts (hf), else step x
    pretrain.batch_size x pretrain.seq_len (pretrain). ManifestError names the key when none applies."""
    spec = config["models"][model]
    if "tokens_per_step" in spec:
        return {s: s * spec["tokens_per_step"] for s in spec["steps"]}
    if spec["source"] == "pretrain":
        pre = config["pretrain"]
        return {s: s * pre["batch_size"] * pre["seq_len"] for s in spec["steps"]}
    manifest = model_manifest(model, spec)
    counts = published(manifest) if manifest else {}
    missing = [s for s in spec["steps"] if s not in counts]
    if missing:
        raise ManifestError(
            f"config: models.{model}.tokens_per_step: needed for figures.x_axis tokens (no published token "
            f"count for step {missing[0]})"
        )
    return {s: counts[s] for s in spec["steps"]}


def nearest(steps: list[int], step: int, k: int = 2) -> list[int]:
    """The published steps on either side of ``step`` (up to ``k`` each)."""
    i = bisect.bisect_left(steps, step)
    return steps[max(0, i - k) : i] + steps[i : i + k]


def check_model(name: str, spec: dict) -> str | None:
    """Raise ManifestError (one line) for the first configured step of a Hub model that was not published;
    return a warning for a model that asks for no check (``manifest: none``)."""
    if spec.get("source") == "hf" and spec.get("manifest") == NO_MANIFEST:
        return (
            f"models.{name}: manifest none: steps {sorted(spec['steps'])} are not checked against a published "
            f"list; a step {spec['repo_id']} lacks fails in its fetch_checkpoint job"
        )
    manifest = model_manifest(name, spec)
    if manifest is None:
        return None
    steps = list(published(manifest))
    known = set(steps) | set(spec.get("revisions", {}))  # a pinned step names its commit: the fetch checks it
    for step in sorted(spec["steps"]):
        if step not in known:
            around = ", ".join(map(str, nearest(steps, step)))
            raise ManifestError(
                f"config: models.{name}.steps: {spec['repo_id']} has no published checkpoint at step "
                f"{step} (manifest {manifest}); nearest published steps: {around} (or pin it to a commit: "
                f"models.{name}.revisions, or check nothing: models.{name}.manifest: none)"
            )
    return None


def refresh(name: str, repo_id: str | None = None, out=None, cache_dir: str | None = None) -> dict[int, int]:
    """The step list of manifest ``name`` read from the branches of ``repo_id`` (default: its first repo)
    on the Hub (offline: from the HF cache), tokens by ``tokens_per_step``; written to ``out`` (default: over
    ``data/checkpoints/<name>.csv``)."""
    from .hub import branch_names, step_revisions

    spec = sources()[name]
    repo_id = repo_id or spec["repos"][0]
    branches, where = branch_names(repo_id, cache_dir)
    steps = sorted(step_revisions(branches, spec["revision_regex"]))
    if not steps:
        raise ManifestError(f"{repo_id}: no branch matches {spec['revision_regex']!r} {where}")
    table = {s: s * spec["tokens_per_step"] for s in steps}
    with (out or DATA.joinpath(f"{name}.csv")).open("w") as f:  # an editable install writes into the repo
        f.write("step,tokens\n" + "".join(f"{s},{t}\n" for s, t in table.items()))
    return table


def identical_weights(sources: dict[int, dict]) -> dict[int, int]:
    """{step: the earliest other step with byte-identical weights} among fetched checkpoints of one model
    (``sources``: step -> source.json). Public trackers report such branches (e.g. OLMo-2-1124-7B, Pythia)."""
    first: dict[tuple, int] = {}
    out = {}
    for step in sorted(sources):
        hashes = sources[step].get("weights_sha256")
        if not hashes:
            continue
        key = tuple(sorted(hashes.items()))
        if key in first:
            out[step] = first[key]
        else:
            first[key] = step
    return out


def duplicate_steps(files: dict) -> dict[int, int]:
    """``identical_weights`` over the ``source.json`` files that exist among ``files`` ({step: path}), each read
    and checked against its checkpoint's checksums (``integrity.read_source``)."""
    from ..core.integrity import read_source

    found = {int(s): read_source(Path(p).parent) for s, p in files.items() if Path(p).is_file()}
    return identical_weights(found)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``list`` and ``refresh`` (``kentropy manifests``, ``python -m kentropy.sources.manifests``)."""
    sub = parser.add_subparsers(dest="manifests_command", required=True)
    sub.add_parser("list", help="the manifests and their repos")
    ref = sub.add_parser("refresh", help="rewrite a step list from the Hub's branch list (needs network)")
    ref.add_argument("name", choices=sorted(sources()))
    ref.add_argument("--repo", help="repo to list (default: the manifest's first)")
    ref.add_argument("--out", type=Path, help="write here instead of over the shipped list")


def run(args: argparse.Namespace) -> None:
    if args.manifests_command == "list":
        for name, spec in sources().items():
            print(f"{name}: {len(published(name))} steps; {', '.join(spec['repos'])}")
    else:
        table = refresh(args.name, args.repo, args.out)
        print(f"{args.name}: {len(table)} steps, {min(table)}..{max(table)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Published checkpoint step lists (src/kentropy/data/checkpoints).")
    add_arguments(parser)
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
