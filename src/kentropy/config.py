"""Config validation with one-line errors that name the offending key (schema: config/schema.yaml)."""

from __future__ import annotations

from pathlib import Path

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match


class ConfigError(ValueError):
    """The config is invalid; the message is one line starting with the dotted key."""


def _key(path) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or "<root>"


def validate_config(config: dict, schema_path: str | Path) -> None:
    """Raise ConfigError for the most relevant schema violation, then for cross-key constraints."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    error = best_match(Draft202012Validator(schema).iter_errors(config))
    if error is not None:
        raise ConfigError(f"config: {_key(error.absolute_path)}: {error.message}")
    for name, model in config["models"].items():
        if model["source"] == "pretrain":
            for section in ("pretrain", "world"):
                if section not in config:
                    raise ConfigError(f"config: models.{name}: source pretrain needs the `{section}` section")
            total = config["pretrain"]["total_steps"]
            if max(model["steps"]) > total:
                raise ConfigError(f"config: models.{name}.steps: step {max(model['steps'])} exceeds pretrain.total_steps ({total})")
    if config["entropy"]["corpus"]["source"] == "generated" and "world" not in config:
        raise ConfigError("config: entropy.corpus.source: generated needs the `world` section")
    pre = config.get("pretrain")
    if pre and pre["hidden_size"] % pre["num_heads"]:
        raise ConfigError(f"config: pretrain.num_heads: {pre['num_heads']} does not divide hidden_size {pre['hidden_size']}")
