"""Config validation with one-line errors that name the offending key (schema: config/schema.yaml).

Validation also fills every ``default`` the schema states into the config, in place: the schema is the one
place a default is written, and code reads every key as present (``config["threads"]``, never a ``get``
with a fallback of its own; tests/test_config.py checks).
"""

from __future__ import annotations

import codecs
import copy
import re
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match

from .errors import KentropyError
from .layout import NAME_PATTERN, PatternError, parse_run_name, parse_trajectory_name, step_path
from .plan import ResuscitationGrid, Run, continued_steps, pretrain_recipe, training_placement

#: The schema of a config, in the checkout (the workflow passes its own copy's path).
SCHEMA = Path(__file__).resolve().parents[3] / "config/schema.yaml"


class ConfigError(KentropyError, ValueError):
    """The config is invalid; the message is one line starting with the dotted key."""


def _key(path) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or "<root>"


#: The most values (scalars, lists, mappings) a config may expand to through YAML aliases: the paper configs
#: hold a few hundred; an alias bomb (a billion values from a few lines) stops here, before validation.
MAX_VALUES = 100_000
#: The most tokens a training stream may hold (an int32 file of 1 TiB; the paper's longest run: 0.6 G tokens).
MAX_STREAM_TOKENS = 2**38


class _Duplicate(Exception):
    """A mapping that holds a key twice: (key, first line, second line), 1-based."""


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a key written twice in one mapping (PyYAML keeps the last silently;
    YAML 1.2 says keys are unique). Merge keys (``<<``) may still be overridden, as YAML defines."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise _Duplicate(key, seen[key], line)
                seen[key] = line
        return super().construct_mapping(node, deep)


def _expanded_size(node, memo: dict) -> int:
    """Values ``node`` stands for once every alias is expanded (memoised, so a bomb costs its node count)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a recursive alias counts once
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(v, memo) for v in node.value)
    else:
        size = 1
    memo[id(node)] = size
    return size


def parse_yaml(text: str, path: str | Path = "<config>"):
    """YAML text as Python values, refusing duplicate keys and alias expansions past ``MAX_VALUES`` (checked on
    the node graph, before anything is built); ConfigError names the file and line."""
    loader = StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {})
        if size > MAX_VALUES:
            raise ConfigError(
                f"{path}: the YAML expands to {size:,} values through its aliases (*name), past the {MAX_VALUES:,} "
                "a config may hold; write the values out or share fewer"
            )
        return loader.construct_document(node)
    except _Duplicate as dup:
        key, first, second = dup.args
        raise ConfigError(f"{path}:{second}: duplicate key {key!r} (first at line {first}); YAML keeps one") from None
    finally:
        loader.dispose()


def load_config_file(path: str | Path) -> dict:
    """A YAML config file as a dict; malformed YAML, a duplicate key or an alias bomb raises ConfigError naming
    the file, line and column. Plain YAML only: nothing in the file runs (Snakemake renders a YTE template,
    ``__use_yte__: true``, before this sees the config)."""
    try:
        config = parse_yaml(Path(path).read_text(encoding="utf-8"), path)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise ConfigError(f"{path}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {err.problem}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read the config ({err})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: a config is a mapping of keys, not a {type(config).__name__}")
    return config


def set_key(config: dict, dotted: str, text: str) -> None:
    """Set the key ``dotted`` (``continual.runs.baseline.lr``) of a config not yet validated to the YAML value
    ``text``: a command line's override, checked with the rest of the config afterwards."""
    *parents, last = parts = dotted.split(".")
    if not all(parts):
        raise ConfigError(f"{dotted!r}: not a dotted key (write e.g. continual.runs.baseline.lr)")
    node = config
    for depth, part in enumerate(parents, 1):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{'.'.join(parents[:depth])} is not a mapping: cannot set {dotted}")
    try:
        node[last] = parse_yaml(text, dotted)
    except yaml.YAMLError as err:
        raise ConfigError(f"{dotted}: {text!r} is not a YAML value ({err})") from None


def load_config(path: str | Path, schema_path: str | Path = SCHEMA) -> dict:
    """A config file, validated and with every default filled: what the workflow's jobs see (for a shell
    or a notebook)."""
    config = load_config_file(path)
    validate_config(config, schema_path)
    return config


def _message(error) -> str:
    """The schema's message, in words for a name that could not be a path component."""
    if error.validator == "pattern" and error.validator_value == f"^{NAME_PATTERN}$":
        return (
            f"{error.instance!r} is not a name: it becomes a folder, so it starts with a letter or digit, "
            "followed by letters, digits, '_', '.' or '-' (never '.', '..' or a path)"
        )
    if error.validator == "not" and error.validator_value == {"const": "before"}:
        return "'before' is not a run name: it names the state before training"
    return error.message


def _whole_pattern(validator, pattern, instance, schema):
    """The ``pattern`` keyword with ``$`` meaning the end of the string (Python's ``$`` also matches before a
    final newline, so ``"tiny\\n"`` would pass ``^name$`` and split a path in two)."""
    if validator.is_type(instance, "string"):
        anchored = pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith(r"\$") else pattern
        if not re.search(anchored, instance):
            yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _fill_defaults(validator, properties, instance, schema):
    """The ``properties`` keyword, which first sets each absent property that has a ``default`` (a copy, so
    no two configs share a mutable default); the filled value is then validated like a written one."""
    if isinstance(instance, dict):
        for key, subschema in properties.items():
            if "default" in subschema and key not in instance:
                instance[key] = copy.deepcopy(subschema["default"])
    yield from Draft202012Validator.VALIDATORS["properties"](validator, properties, instance, schema)


#: Draft 2020-12 with defaults filled while validating (how jsonschema's FAQ extends a validator). Defaults
#: inside an ``if``/``then`` branch are filled only where the branch applies (``layout`` of an hf model).
FillingValidator = validators.extend(Draft202012Validator, {"properties": _fill_defaults, "pattern": _whole_pattern})


def validate_config(config: dict, schema_path: str | Path) -> None:
    """Fill the schema's defaults into ``config`` (in place), then raise ConfigError for the most relevant
    schema violation, then for cross-key constraints."""
    # libyaml's parser where PyYAML has it: the schema is our own file, and every DAG build reads it (85 -> 11 ms)
    schema = yaml.load(Path(schema_path).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    error = best_match(list(FillingValidator(schema).iter_errors(config)))  # list: every default is filled
    if error is not None:
        raise ConfigError(f"config: {_key(error.absolute_path)}: {_message(error)}")
    for name, model in config["models"].items():
        if parse_trajectory_name(name, config["seed"])[0] != name:
            raise ConfigError(
                f"config: models.{name}: a model name must not end in -traj<digits> (its trajectories' do)"
            )
        if "seeds" in model and model["source"] != "pretrain":
            raise ConfigError(
                f"config: models.{name}.seeds: only a model with source pretrain has pretraining seeds "
                f"(this one's trajectory is fixed: it was pretrained elsewhere)"
            )
        if "revisions" in model:
            if model["source"] != "hf":
                raise ConfigError(f"config: models.{name}.revisions: only a model with source hf has Hub revisions")
            model["revisions"] = pins = {_step_key(name, step): rev for step, rev in model["revisions"].items()}
            stray = sorted(set(pins) - set(model["steps"]))
            if stray:
                raise ConfigError(f"config: models.{name}.revisions: step {stray[0]} is not one of models.{name}.steps")
        if model["source"] == "local":
            for step in sorted(model["steps"]):
                try:
                    folder = Path(step_path(model["path"], step))
                except PatternError as err:
                    raise ConfigError(f"config: models.{name}.path: {err}") from None
                if not (folder / "config.json").is_file():
                    raise ConfigError(f"config: models.{name}.path: no checkpoint for step {step} at {folder}")
        for own in ("pretrain", "skew"):
            if own in model and model["source"] != "pretrain":
                raise ConfigError(f"config: models.{name}.{own}: only a model with source pretrain has one")
        if "skew" in model and config.get("facts") and config["facts"]["source"] == "generated":
            raise ConfigError(
                f"config: models.{name}.skew: the generated facts section counts exposures in the world's own "
                "pretraining corpus; a model with its own skew reads another (drop one of the two)"
            )
        if model["source"] == "pretrain":
            for section in ("pretrain", "world"):
                if section not in config:
                    raise ConfigError(f"config: models.{name}: source pretrain needs the `{section}` section")
            _check_recipe(name, model, pretrain_recipe(config, name))
    if config["entropy"]["corpus"]["source"] == "generated" and "world" not in config:
        raise ConfigError("config: entropy.corpus.source: generated needs the `world` section")
    if config["entropy"]["corpus"]["source"] == "text":
        check_utf8(config["entropy"]["corpus"]["path"], "entropy.corpus.path")
    pre = config.get("pretrain")
    if pre and pre["hidden_size"] % pre["num_heads"]:
        raise ConfigError(
            f"config: pretrain.num_heads: {pre['num_heads']} does not divide hidden_size {pre['hidden_size']}"
        )
    _check_continual(config)
    _check_resuscitation(config)


def _check_recipe(name: str, model: dict, recipe: dict) -> None:
    """A pretrained model's recipe (the ``pretrain`` section with its own keys over it): its shape divides, its
    run fits the stream bound, its steps lie within its schedule. Errors name the key the value came from."""

    def key(k: str) -> str:
        return f"models.{name}.pretrain.{k}" if k in model.get("pretrain", {}) else f"pretrain.{k}"

    if recipe["hidden_size"] % recipe["num_heads"]:
        raise ConfigError(
            f"config: {key('num_heads')}: {recipe['num_heads']} does not divide hidden_size {recipe['hidden_size']}"
        )
    total = recipe["total_steps"]
    tokens = total * recipe["batch_size"] * recipe["seq_len"]
    if tokens > MAX_STREAM_TOKENS:
        raise ConfigError(
            f"config: {key('total_steps')}: {total} x batch_size {recipe['batch_size']} x seq_len "
            f"{recipe['seq_len']} = {tokens:.3g} tokens, past the {MAX_STREAM_TOKENS:.3g} a run may read"
        )
    if max(model["steps"]) > total:
        raise ConfigError(
            f"config: models.{name}.steps: step {max(model['steps'])} exceeds {key('total_steps')} ({total})"
        )


def check_utf8(path: str | Path, key: str) -> None:
    """ConfigError naming ``key`` when the text file ``path`` is missing or not UTF-8 (read in chunks: the
    byte offset and line of the first bad byte, at DAG build rather than in a job)."""
    decoder, offset, line = codecs.getincrementaldecoder("utf-8")(), 0, 1
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as err:
                    at = offset + err.start
                    line += chunk[: err.start].count(b"\n")
                    raise ConfigError(
                        f"config: {key}: {path} is not UTF-8 text (byte 0x{chunk[err.start]:02x} at offset {at:,}, "
                        f"line {line}); convert it, e.g. iconv -f latin1 -t utf-8"
                    ) from None
                offset, line = offset + len(chunk), line + chunk.count(b"\n")
            decoder.decode(b"", final=True)
    except FileNotFoundError:
        raise ConfigError(f"config: {key}: no file {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config: {key}: {path} is not UTF-8 text (it ends inside a character)") from None


def _step_key(name: str, step) -> int:
    """A ``revisions`` key as a step (YAML reads ``117850:`` as an int, JSON as a string)."""
    try:
        return int(step)
    except ValueError:
        raise ConfigError(f"config: models.{name}.revisions: key {step!r} is not a step") from None


def _check_steps_exist(config: dict, key: str, listed) -> None:
    """Each step listed under ``key`` is a step of some model."""
    steps = {s for m in config["models"].values() for s in m["steps"]}
    for step in listed:
        if step not in steps:
            raise ConfigError(f"config: {key}: {step} is not a step of any model")


def _check_continual(config: dict) -> None:
    cont = config["continual"]
    generated = [f"continual.corpora.{n}" for n, c in cont["corpora"].items() if c["source"] == "generated"]
    if cont["knowledge"]["source"] == "generated":
        generated.append("continual.knowledge")
    if config["downstream"]["source"] == "generated":
        generated.append("downstream")
    if generated and "world" not in config:
        raise ConfigError(f"config: {generated[0]}.source: generated needs the `world` section")
    if cont["baseline"] not in cont["runs"]:
        raise ConfigError(f"config: continual.baseline: {cont['baseline']!r} is not a key of continual.runs")
    _check_steps_exist(config, "continual.steps", cont.get("steps", []))
    for name, model in config["models"].items():
        for step in model.get("continual_steps", []):
            if step not in model["steps"]:
                raise ConfigError(f"config: models.{name}.continual_steps: {step} is not one of its steps")
    if cont["knowledge"]["source"] == "generated" and "world" in config:
        world, n = config["world"], cont["n_injections"]
        if world["n_once"] % n:
            raise ConfigError(f"config: continual.n_injections: {n} does not divide world.n_once ({world['n_once']})")
        rows = world["n_paraphrase"] + world["n_once"] // n
        for name, run in cont["runs"].items():
            if rows > run["batch_size"]:
                raise ConfigError(
                    f"config: continual.runs.{name}.batch_size: {run['batch_size']} rows cannot hold the "
                    f"{rows} paragraphs of one injection (world.n_paraphrase + world.n_once / continual.n_injections)"
                )
    for model, spec in config["models"].items():
        nodes, gpus = spec.get("train_nodes", 1), spec.get("train_gpus", spec["gpus"])
        if gpus % nodes:
            raise ConfigError(
                f"config: models.{model}.train_gpus: {gpus} GPUs do not divide into train_nodes {nodes} "
                f"(each node runs the same number of processes)"
            )
    worlds = {training_placement(config, m).world_size: m for m in sorted(config["models"], reverse=True)}
    for name, run in cont["runs"].items():
        key = f"config: continual.runs.{name}"
        if parse_run_name(name, config["seed"])[0] != name:
            raise ConfigError(f"{key}: a run name must not end in -seed<digits> (the names of its seeds do)")
        if run["corpus"] not in cont["corpora"]:
            raise ConfigError(f"{key}.corpus: {run['corpus']!r} is not a key of continual.corpora")
        typed = Run.from_config(config, name)  # the run with the global seed
        stream, micro = typed.stream, typed.parallelism.micro_batch_size
        if typed.tokens > MAX_STREAM_TOKENS:
            raise ConfigError(
                f"{key}: epochs {stream.epochs} x steps_per_epoch {stream.steps_per_epoch} x batch_size "
                f"{stream.batch_size} x continual.seq_len {stream.seq_len} = {typed.tokens:.3g} tokens, past the "
                f"{MAX_STREAM_TOKENS:.3g} a training stream may hold ({4 * MAX_STREAM_TOKENS // 2**40} TiB)"
            )
        for world, model in sorted(worlds.items()):
            if stream.batch_size % (micro * world):
                raise ConfigError(
                    f"{key}.batch_size: {stream.batch_size} is not a multiple of micro_batch_size {micro} x "
                    f"{world} training processes (models.{model}: train_nodes x train_gpus per node, or 1 on CPU)"
                )
        if stream.inject_interval < 1 or stream.n_injections * stream.inject_interval > typed.total_steps:
            raise ConfigError(
                f"{key}.inject_interval: {stream.n_injections} injections every {stream.inject_interval} steps "
                f"do not fit in {typed.total_steps} steps"
            )


def canonical(value, drop: frozenset = frozenset()):
    """``value`` with every mapping's keys sorted (recursively) and the keys in ``drop`` removed from the top
    level: the form rule params take, so the same settings written in another order rerun nothing
    (Snakemake compares params by ``repr``)."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value) if k not in drop}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def _check_resuscitation(config: dict) -> None:
    resus = config.get("resuscitation")
    if not resus:
        return
    _check_steps_exist(config, "resuscitation.steps", resus["steps"])
    for name, model in config["models"].items():
        for step in sorted(set(resus["steps"]) & set(model["steps"]) - set(continued_steps(config, name))):
            raise ConfigError(
                f"config: resuscitation.steps: {step} does not continue training for models.{name} (continual.steps, "
                "continual_steps): its copies are compared with the original checkpoint's runs"
            )
    for run in resus["runs"]:
        if run not in config["continual"]["runs"]:
            raise ConfigError(f"config: resuscitation.runs: {run!r} is not a key of continual.runs")
    grid = ResuscitationGrid.from_config(config)
    p, q = grid.figure14
    if (p, float(q)) not in grid.grid:
        raise ConfigError(
            f"config: resuscitation.figure14_variant: p = {p}, q = {q} is not in the grid (p_fixed with "
            "q_values, or q_fixed with p_values)"
        )
    for step in resus.get("figure15_steps", []):  # optional: no default
        if step not in resus["steps"]:
            raise ConfigError(f"config: resuscitation.figure15_steps: {step} is not one of resuscitation.steps")
