"""The pipeline's vocabulary: variant names, a run's derived numbers, key columns, one experiment's paths."""

import re
import subprocess

import pandas as pd
import pytest
import yaml

from kentropy.core.config import validate_config
from kentropy.core.layout import VARIANT_REGEX, Layout, LayoutError, Variant, with_keys
from kentropy.core.plan import Run

from .conftest import ROOT


def test_variant_names_round_trip():
    assert Variant.resuscitated(50, 1.0).name == "resus-p50-q1"
    assert Variant.resuscitated(10, 0.5).name == "resus-p10-q0.5"
    assert Variant.parse("resus-p30-q2.5") == Variant("resus", 30, 2.5)
    assert Variant.parse("original") == Variant() and Variant().name == "original"
    for name in ("original", "resus-p50-q1", "resus-p10-q0.5"):
        assert re.fullmatch(VARIANT_REGEX, name) and Variant.parse(name).name == name
    for bad in ("resus-p50", "resus-pX-q1", "originals"):
        assert not re.fullmatch(VARIANT_REGEX, bad)
        with pytest.raises(LayoutError, match="is not a variant name"):
            Variant.parse(bad)


def test_run_fills_defaults_and_derives_its_numbers():
    config = yaml.safe_load((ROOT / "config/olmo-1b.yaml").read_text())
    validate_config(config, ROOT / "config/schema.yaml")
    run = Run.from_config(config, "baseline")
    # The paper's baseline: 1,600 steps of 128 rows of 1,024 tokens, ten injections 160 steps apart.
    assert (run.total_steps, run.stream.inject_interval, run.blocks) == (1600, 160, 128 * 1600)
    assert run.tokens == 1600 * 128 * 1024
    assert run.injection_steps == list(range(160, 1601, 160))
    assert run.retention_steps == (*range(319, 1600, 160), 1600)
    assert run.parallelism.micro_batch_size == config["continual"]["micro_batch_size"] and run.seed == config["seed"]
    assert Run.from_json(run.to_json()) == run  # the one serialisation, on the training command line
    assert set(run.stream_param()) == {
        "corpus",
        "batch_size",
        "inject_interval",
        "n_injections",
        "seed",
        "total_steps",
        "blocks",
    }
    three = Run.from_config(config, "epochs3")
    assert three.total_steps == 4800 and len(three.injection_steps) == 30  # the versions cycle past one epoch


def test_with_keys_puts_the_key_columns_first_in_one_order():
    table = with_keys(pd.DataFrame({"value": [1.0], "state": ["old"]}), state="before", step="30", model="tiny")
    assert list(table.columns) == ["model", "step", "state", "value"]
    assert table.step.dtype.kind == "i" and table.state.item() == "before"
    with pytest.raises(LayoutError, match="not key columns"):
        with_keys(table, epoch=0)


def test_experiments_write_under_their_own_names():
    a, b = Layout("tiny"), Layout("olmo-1b")
    assert a.table("entropy.parquet") == "results/tiny/tables/entropy.parquet"
    assert a.entropy("m", 30, "resus-p50-q2", ".coef.npy") == "results/tiny/entropy/m/step30/resus-p50-q2.coef.npy"
    assert a.log("probe", "m", "step30", "original", "before") == "logs/tiny/probe/m/step30/original/before.log"
    assert a.logs("probe") == "logs/tiny/probe" and a.log("probe", "m", "x").startswith(a.logs("probe") + "/")
    # Only a fetched checkpoint is shared; a pretrained one belongs to its experiment.
    assert a.checkpoint("m", {"source": "hf"}, 10) == b.checkpoint("m", {"source": "hf"}, 10)
    assert a.checkpoint("m", {"source": "pretrain"}, 10) != b.checkpoint("m", {"source": "pretrain"}, 10)
    assert a.checkpoint("m", {"source": "local", "path": "/ck/{step}"}, 10) == "/ck/10"


def test_no_path_is_parsed_outside_the_vocabulary_module():
    """No regex over paths or checkpoint names in the rules and scripts: they receive keys, not paths."""
    pattern = r"re\.(match|fullmatch|search|findall)|step\\\\d|removeprefix\(\"step|rsplit\("
    hits = subprocess.run(
        ["git", "grep", "-n", "-E", pattern, "--", "workflow", "Snakefile", "src/kentropy"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    ).stdout.splitlines()  # fmt: skip
    # config.py matches the schema's patterns against config values (its ``pattern`` keyword), not paths.
    owners = ("src/kentropy/core/layout.py", "src/kentropy/sources/hub.py", "src/kentropy/core/config.py")
    assert [h for h in hits if not h.startswith(owners)] == []
