"""Config validation: every bad input gives one line that names the key."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from kentropy.core.config import ConfigError, validate_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "config" / "schema.yaml"


def default():
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


@pytest.mark.parametrize(
    "name", ["config.yaml", "miniature.yaml", "olmo-1b.yaml", "olmo-7b.yaml", "olmo2-1b.yaml", "pythia-1.4b.yaml"]
)
def test_shipped_configs_are_valid(name):
    validate_config(yaml.safe_load((ROOT / "config" / name).read_text()), SCHEMA)


def test_the_miniature_spans_20_to_400_tokens_per_parameter():
    import torch
    from transformers import OlmoConfig, OlmoForCausalLM

    cfg = yaml.safe_load((ROOT / "config" / "miniature.yaml").read_text())
    pre = cfg["pretrain"]
    shape = OlmoConfig(vocab_size=pre["tokenizer_vocab_size"], hidden_size=pre["hidden_size"],
                       intermediate_size=pre["intermediate_size"], num_hidden_layers=pre["num_layers"],
                       num_attention_heads=pre["num_heads"], tie_word_embeddings=False)  # fmt: skip
    with torch.device("meta"):
        n_params = sum(p.numel() for p in OlmoForCausalLM(shape).parameters())
    per_step = pre["batch_size"] * pre["seq_len"]
    ratios = [step * per_step / n_params for step in cfg["models"]["tiny"]["steps"]]
    assert ratios == pytest.approx([20, 40, 80, 120, 200, 300, 400])


def _set(cfg, dotted, value):
    *parents, last = dotted.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("models.tiny.steps", [10, "x"], "models.tiny.steps[1]: 'x' is not of type 'integer'"),
        ("models.tiny.source", "s3", "models.tiny.source: 's3' is not one of"),
        ("entropy.dtype", "float16", "entropy.dtype: 'float16' is not one of"),
        ("entropy.batch_size", 0, "entropy.batch_size: 0 is less than the minimum of 1"),
        ("pretrain.lr", KeyError, "pretrain: 'lr' is a required property"),
        ("entropy.corpus", {"name": "c4", "source": "hf"}, "entropy.corpus: 'dataset' is a required property"),
        ("models.tiny.steps", [10, 5000], "models.tiny.steps: step 5000 exceeds pretrain.total_steps"),
        ("pretrain.num_heads", 5, "pretrain.num_heads: 5 does not divide hidden_size 32"),
        ("typo_key", 1, "<root>: Additional properties are not allowed ('typo_key' was unexpected)"),
    ],
)
def test_bad_values_name_the_key(key, value, message):
    cfg = copy.deepcopy(default())
    _set(cfg, key, value)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, SCHEMA)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_hf_model_needs_repo_id():
    cfg = default()
    cfg["models"]["olmo"] = {"source": "hf", "steps": [1]}
    with pytest.raises(ConfigError, match="models.olmo: 'repo_id' is a required property"):
        validate_config(cfg, SCHEMA)


def test_local_path_needs_step_placeholder():
    cfg = default()
    cfg["models"]["mine"] = {"source": "local", "steps": [1], "path": "/data/ckpt"}
    with pytest.raises(ConfigError, match=r"models.mine.path: '/data/ckpt' does not match"):
        validate_config(cfg, SCHEMA)


def test_a_failing_job_writes_its_traceback_to_its_log(tmp_path):
    """The log helper writes the exception into the rule's log before it propagates."""
    import pytest

    from kentropy.core.logs import log_to
    from kentropy.training.streams import StreamError

    log = tmp_path / "job.log"
    with pytest.raises(StreamError), log_to(str(log)):
        print("working")
        raise StreamError("continual.n_injections: 3 does not divide the 4 once-split records")
    text = log.read_text()
    assert "working" in text and "Traceback (most recent call last)" in text
    assert text.rstrip().endswith(
        "error: StreamError: continual.n_injections: 3 does not divide the 4 once-split records"
    )


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.update(seed=-1), "config: seed: -1 is less than the minimum of 0"),
        (
            lambda c: c["continual"].update(n_injections=3),
            "config: continual.n_injections: 3 does not divide world.n_once (20)",
        ),
        (
            lambda c: c["world"].update(n_paraphrase=15),
            "config: continual.runs.baseline.batch_size: 16 rows cannot hold the 17 paragraphs of one injection",
        ),
    ],
)
def test_constraints_known_from_the_config_fail_at_dag_build(change, message):
    cfg = default()
    change(cfg)
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_config(cfg, SCHEMA)


def test_weak_inputs_name_their_file_or_key(tmp_path):
    from kentropy.sources.architectures import CheckpointError, load_causal_lm
    from kentropy.sources.corpora import CorpusError, text_file_corpus

    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(CorpusError, match=f"not UTF-8 text: {re.escape(str(bad))}"):
        text_file_corpus(bad)
    ckpt = tmp_path / "ckpt"
    from tests.conftest import tiny_model

    tiny_model("olmo", dtype=__import__("torch").float32).save_pretrained(ckpt)
    weights = ckpt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    with pytest.raises(CheckpointError, match=f"{re.escape(str(ckpt))}: cannot load the checkpoint"):
        load_causal_lm(str(ckpt))
    cfg = default()
    cfg["models"] = {"mine": {"source": "local", "path": str(tmp_path / "run" / "step{step}"), "steps": [5]}}
    with pytest.raises(
        ConfigError, match=re.escape(f"config: models.mine.path: no checkpoint for step 5 at {tmp_path}")
    ):
        validate_config(cfg, SCHEMA)


def _defaults(schema: dict, path=()):
    """(dotted path, default) of every property default the schema states, outside if/then branches."""
    for key, sub in schema.get("properties", {}).items():
        if "default" in sub:
            yield ".".join((*path, key)), sub["default"]
        yield from _defaults(sub, (*path, key))


def test_validation_fills_every_schema_default():
    schema = yaml.safe_load(SCHEMA.read_text())
    config = default()
    del config["threads"], config["pretrain"]["activation"]  # set in the default config: left out to see them filled
    validate_config(config, SCHEMA)
    filled = list(_defaults(schema))
    assert len(filled) >= 15
    for dotted, value in filled:
        node = config
        for key in dotted.split("."):
            node = node[key]
        if dotted not in ("threads",) and not isinstance(value, dict):
            assert node == value, dotted
    assert config["threads"] == 2 and config["cluster"]["runtime"]["measure_entropy"] == 60
    assert config["models"]["tiny"]["gpus"] == 0 and "layout" not in config["models"]["tiny"]  # hf only
    hf = yaml.safe_load((ROOT / "config" / "olmo-1b.yaml").read_text())
    validate_config(hf, SCHEMA)
    from kentropy.sources.hub import DEFAULT_REVISION_REGEX

    assert hf["models"]["olmo-1b"]["revision_regex"] == DEFAULT_REVISION_REGEX  # one pattern, two readers
    assert hf["models"]["olmo-1b"]["layout"] == "hf"


def test_a_filled_default_is_validated_and_never_shared():
    a, b = default(), default()
    validate_config(a, SCHEMA)
    validate_config(b, SCHEMA)
    a["probe"]["released"]["batch_size"] = 3
    assert b["probe"]["released"]["batch_size"] == 16
    bad = default()
    bad["cluster"] = {"runtime": {"probe": 0}}
    with pytest.raises(ConfigError, match=r"^config: cluster.runtime.probe: 0 is less than the minimum of 1$"):
        validate_config(bad, SCHEMA)


def test_no_schema_default_is_restated_in_code():
    """Code reads every defaulted key as present: no ``.get("<key>", …)`` for a key whose default the schema
    states (rules, scripts, library)."""
    import subprocess

    keys = sorted({dotted.split(".")[-1] for dotted, _ in _defaults(yaml.safe_load(SCHEMA.read_text()))})
    keys += ["layout", "revision_regex"]  # defaults of the hf branch
    pattern = r"\.get\(\"(" + "|".join(keys) + r")\""
    hits = subprocess.run(
        ["git", "grep", "-n", "-E", pattern, "--", "src/kentropy", "workflow", "Snakefile"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    ).stdout.splitlines()  # fmt: skip
    assert hits == []


@pytest.mark.parametrize("p, q, valid", [(50, 2, True), (30, 1, True), (30, 2, False), (50, 1.5, False)])
def test_figure14_variant_must_be_a_point_of_the_grid(p, q, valid):
    config = default()
    config["resuscitation"]["figure14_variant"] = {"p": p, "q": q}
    if valid:
        validate_config(config, SCHEMA)
        return
    with pytest.raises(ConfigError, match=rf"^config: resuscitation.figure14_variant: p = {p}, q = {q} is not in"):
        validate_config(config, SCHEMA)


def test_revisions_pin_configured_hub_steps_only():
    config = yaml.safe_load((ROOT / "config/olmo-1b.yaml").read_text())
    config["models"]["olmo-1b"]["revisions"] = {"369000": "abc123", 738020: "main"}
    validate_config(config, SCHEMA)
    assert config["models"]["olmo-1b"]["revisions"] == {369000: "abc123", 738020: "main"}  # steps as ints
    config["models"]["olmo-1b"]["revisions"] = {369001: "abc123"}
    with pytest.raises(ConfigError, match=r"^config: models.olmo-1b.revisions: step 369001 is not one of models."):
        validate_config(config, SCHEMA)
    tiny = default()
    tiny["models"]["tiny"]["revisions"] = {25: "abc"}
    with pytest.raises(ConfigError, match=r"^config: models.tiny.revisions: only a model with source hf"):
        validate_config(tiny, SCHEMA)


def test_downstream_batch_size_auto_and_monitor_defaults():
    config = default()
    config["downstream"]["batch_size"] = "auto"
    validate_config(config, SCHEMA)
    assert config["monitor"] == {
        "tensorboard": True,
        "csv": True,
        "wandb": {"enabled": False, "project": "knowledge-entropy", "group": None, "team": None, "mode": "offline"},
    }
    assert config["downstream"]["log_samples"] is False
    config["downstream"]["batch_size"] = "big"
    with pytest.raises(ConfigError, match=r"^config: downstream.batch_size: 'big' does not match"):
        validate_config(config, SCHEMA)


def test_training_across_nodes_splits_gpus_evenly_and_batches_by_the_world_size():
    from kentropy.core.plan import Placement, training_placement

    def placed(micro: int = 16, **tiny):
        cfg = copy.deepcopy(default())
        cfg["models"]["tiny"].update(tiny)
        cfg["continual"]["micro_batch_size"] = micro
        validate_config(cfg, SCHEMA)
        return training_placement(cfg, "tiny")

    assert placed(train_nodes=2, train_gpus=8, micro=2) == Placement(2, 4)  # 8 processes x 2 rows = 16
    assert placed(train_nodes=2, train_gpus=8, micro=2).world_size == 8
    assert placed(train_nodes=2, micro=8).world_size == 2  # on CPU: one process per node
    assert placed() == Placement(1, 0) and placed().world_size == 1
    with pytest.raises(ConfigError, match=r"models.tiny.train_gpus: 6 GPUs do not divide into train_nodes 4"):
        placed(train_nodes=4, train_gpus=6)
    with pytest.raises(ConfigError, match=r"batch_size: 16 is not a multiple of micro_batch_size 16 x 8 training "
                                          r"processes \(models.tiny: "):  # fmt: skip
        placed(train_nodes=2, train_gpus=8)
