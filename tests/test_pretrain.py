"""Tiny pretraining: data order, schedule, and segments that reproduce one uninterrupted run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from kentropy.core.plan import Pretraining, Schedule
from kentropy.sources.world import build_world, pretraining_corpus
from kentropy.training.pretrain import batch_indices, train_segment, train_tokenizer
from kentropy.training.schedule import warmup_cosine


def test_batch_indices_cover_each_epoch_once():
    seen = np.concatenate([batch_indices(s, 4, 10, seed=0) for s in range(5)])  # 20 samples = 2 epochs
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:]) == list(range(10))
    assert np.array_equal(batch_indices(3, 4, 10, 0), batch_indices(3, 4, 10, 0))


def test_warmup_cosine_endpoints():
    """OLMo's CosWithWarmup at 1-based steps: warm-up from 10% of the peak, cosine to alpha_f."""
    hundred = Schedule(total_steps=100, warmup_fraction=0.1, alpha_f=0.1)
    assert warmup_cosine(1, hundred) == pytest.approx(0.1 + 0.9 * 1 / 10)
    assert warmup_cosine(9, hundred) == pytest.approx(0.1 + 0.9 * 9 / 10)
    assert warmup_cosine(10, hundred) == 1.0
    assert warmup_cosine(100, hundred) == 0.1
    assert all(warmup_cosine(s, hundred) >= warmup_cosine(s + 1, hundred) for s in range(10, 100))


@pytest.mark.parametrize("activation", ["swiglu", "reglu", "gelu"])
def test_segments_equal_one_run(tmp_path, activation):
    """For every FFN (SwiGLU, gated ReLU, GPT-NeoX's GELU), and from a step-0 checkpoint (the initialisation
    a lab trajectory is measured at) as from a later one."""
    torch.set_num_threads(1)
    docs = pretraining_corpus(build_world(0, 30, 1), 200, seed=1)
    pd.DataFrame({"text": docs}).to_parquet(tmp_path / "c.parquet")
    train_tokenizer(docs, 300, tmp_path / "tok")
    recipe = {"tokenizer_vocab_size": 300, "hidden_size": 16, "intermediate_size": 32, "num_layers": 1,
              "num_heads": 2, "seq_len": 16, "batch_size": 4, "lr": 1e-2, "weight_decay": 0.1, "warmup_fraction": 0.1,
              "alpha_f": 0.1, "total_steps": 6, "activation": activation}  # fmt: skip
    cfg = Pretraining.from_recipe(recipe, seed=0)
    args = (cfg, str(tmp_path / "c.parquet"), str(tmp_path / "tok"))
    train_segment(*args, None, 0, 6, tmp_path / "whole")
    train_segment(*args, None, 0, 3, tmp_path / "s3")
    log = train_segment(*args, str(tmp_path / "s3"), 3, 6, tmp_path / "s6")
    assert log.step.tolist() == [4, 5, 6]
    assert train_segment(*args, None, 0, 0, tmp_path / "s0").empty  # the initialisation alone
    train_segment(*args, str(tmp_path / "s0"), 0, 6, tmp_path / "from0")
    from transformers import AutoModelForCausalLM

    a = AutoModelForCausalLM.from_pretrained(tmp_path / "whole")
    expected = {"swiglu": "OlmoForCausalLM", "reglu": "OlmoForCausalLM", "gelu": "GPTNeoXForCausalLM"}
    assert type(a).__name__ == expected[activation]
    for other in ("s6", "from0"):
        b = AutoModelForCausalLM.from_pretrained(tmp_path / other).state_dict()
        for k, v in a.state_dict().items():
            assert torch.equal(v, b[k]), (other, k)


def test_the_schemas_activations_are_the_ones_init_model_builds():
    import yaml

    from kentropy.core.config import SCHEMA
    from kentropy.training.pretrain import ACTIVATIONS

    schema = yaml.safe_load(SCHEMA.read_text())
    assert tuple(schema["properties"]["pretrain"]["properties"]["activation"]["enum"]) == ACTIVATIONS


def test_a_gelu_model_with_resuscitation_validates():
    """Algorithm 1 runs on the non-gated GELU MLP too (training.resuscitation: the pre-activation is scaled)."""
    import yaml

    from kentropy.core.config import SCHEMA, validate_config

    from .conftest import ROOT

    config = yaml.safe_load((ROOT / "tests/config/e2e.yaml").read_text())
    config["pretrain"]["activation"] = "gelu"
    assert config["resuscitation"]
    validate_config(config, SCHEMA)


def _two_recipes(**override):
    import yaml

    from .conftest import ROOT

    config = yaml.safe_load((ROOT / "tests/config/e2e.yaml").read_text())
    del config["resuscitation"]
    config["models"]["wide"] = {**config["models"]["tiny"], "pretrain": override}
    return config


def test_a_model_may_pretrain_its_own_recipe_over_the_experiments():
    from kentropy.core.config import SCHEMA, validate_config
    from kentropy.core.plan import RECIPE_KEYS, pretrain_recipe

    config = _two_recipes(intermediate_size=256, activation="gelu", lr=0.004)
    validate_config(config, SCHEMA)
    base, wide = pretrain_recipe(config, "tiny"), pretrain_recipe(config, "wide")
    assert {k for k in base if base[k] != wide[k]} == {"intermediate_size", "activation", "lr"}
    assert "seeds" not in base and wide["activation"] == "gelu" and base["activation"] == "swiglu"
    schema = yaml_schema()["properties"]["models"]["additionalProperties"]["properties"]["pretrain"]["properties"]
    assert tuple(schema) == RECIPE_KEYS


def yaml_schema():
    import yaml

    from kentropy.core.config import SCHEMA

    return yaml.safe_load(SCHEMA.read_text())


@pytest.mark.parametrize(
    "override, message",
    [
        ({"seq_len": 64}, r"models.wide.pretrain: Additional properties are not allowed \('seq_len' was unexpected\)"),
        ({"num_heads": 5}, r"^config: models.wide.pretrain.num_heads: 5 does not divide hidden_size"),
        ({"total_steps": 10}, r"^config: models.wide.steps: step \d+ exceeds models.wide.pretrain.total_steps \(10\)"),
        ({"activation": "tanh"}, r"models.wide.pretrain.activation: 'tanh' is not one of"),
    ],
)
def test_a_models_recipe_is_checked_naming_its_key(override, message):
    from kentropy.core.config import SCHEMA, ConfigError, validate_config

    with pytest.raises(ConfigError, match=message):
        validate_config(_two_recipes(**override), SCHEMA)


def test_a_model_with_its_own_skew_pretrains_on_its_own_corpus(tmp_path):
    from kentropy.core.config import SCHEMA, ConfigError, validate_config

    from .conftest import snakemake

    config = _two_recipes(lr=0.004)
    config["models"]["wide"]["skew"] = {"person_zipf": 0, "object_zipf": 1.5}
    with pytest.raises(ConfigError, match=r"^config: models.wide.skew: the generated facts section counts"):
        validate_config(yaml_roundtrip(config), SCHEMA)
    del config["facts"]
    path = tmp_path / "skew.yaml"
    path.write_text(yaml_dump(config))
    done = snakemake(tmp_path, "-n", "-p", "resources/e2e/checkpoints/wide/step30", "--configfile", str(path),
                     timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:]
    skewed = "resources/e2e/world/pretrain-person0-object1.5.parquet"
    assert f"input: {skewed}, resources/e2e/tokenizers/vocab400" in done.stdout


def yaml_roundtrip(config):
    import yaml

    return yaml.safe_load(yaml_dump(config))


def yaml_dump(config) -> str:
    import yaml

    return yaml.safe_dump(config)
