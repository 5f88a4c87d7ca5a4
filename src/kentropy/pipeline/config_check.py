"""Every check a config gets at DAG build, in one function: the schema and the sections' consistency
(kentropy.core.config), the facts file, the published steps and tokens of each model (kentropy.sources),
and lm-eval's registry for tasks the pipeline does not generate. The workflow calls it (rules/common.smk);
``python -m kentropy.pipeline.config_check FILE…`` runs it without Snakemake, whose own ``--configfile``
parser names neither file, line nor column."""

from __future__ import annotations

from pathlib import Path

from ..core.config import SCHEMA, load_config_file, validate_config
from ..core.errors import KentropyError
from ..sources.facts_file import check_facts_section
from ..sources.manifests import check_model, tokens_seen


def check_config(config: dict, schema: str | Path = SCHEMA) -> list[str]:
    """Validate ``config`` in place (every default filled) and check what the DAG build checks; raise the
    first error (a ``KentropyError`` naming the key or file), return the warnings (models with unpublished
    steps that the shipped step lists cannot check)."""
    validate_config(config, schema)
    check_facts_section(config)
    warnings = []
    for name, spec in config["models"].items():
        unchecked = check_model(name, spec)  # published steps only (kentropy/data/checkpoints), offline
        if unchecked:
            warnings.append(unchecked)
        if config["figures"]["x_axis"] == "tokens":
            tokens_seen(config, name)
    if config["downstream"]["source"] != "generated":
        from ..evaluation.benchmarks import check_tasks

        check_tasks(list(config["downstream"]["tasks"]))  # lm-eval's registry, indexed only for non-paper tasks
    return warnings


def main(argv: list[str] | None = None) -> None:
    """``python -m kentropy.pipeline.config_check FILE…``: check config files as the DAG build does (YAML with
    file, line and column; then ``check_config``); warnings on stderr, exit 1 if any file fails."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--schema", type=Path, default=SCHEMA)
    args = parser.parse_args(argv)
    failed = False
    for path in args.files:
        try:
            for warning in check_config(load_config_file(path), args.schema):
                print(f"{path}: warning: {warning}", file=sys.stderr)
            print(f"{path}: valid")
        except KentropyError as err:
            print(err if str(err).startswith(str(path)) else f"{path}: {err}", file=sys.stderr)
            failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
