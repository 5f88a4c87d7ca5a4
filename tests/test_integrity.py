"""Integrity: checkpoints verified where they are read, no NaN in a table, names that cannot escape, errors
that say what to redo, and an entropy that does not depend on the thread count."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from kentropy.core.config import ConfigError, load_config_file, validate_config
from kentropy.core.io import InputError, TableError, read_table, write_table
from kentropy.core.layout import NAME_PATTERN, Layout, LayoutError
from tests.conftest import tiny_model

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "config" / "schema.yaml"


def _nan_in_place(weights: Path) -> None:
    """One weight of a safetensors file set to NaN: same size, modification time kept."""
    from safetensors.torch import load_file, save_file

    stat = weights.stat()
    tensors = load_file(weights)
    name = sorted(tensors)[0]
    tensors[name].view(-1)[0] = float("nan")
    save_file(tensors, weights, metadata={"format": "pt"})
    assert weights.stat().st_size == stat.st_size
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    """A tiny checkpoint written as the pipeline writes one: files, then their checksums."""
    from kentropy.core.integrity import write_checksums

    folder = tmp_path / "step10"
    tiny_model("olmo").float().save_pretrained(folder)
    write_checksums(folder)
    return folder


def test_a_weight_changed_in_place_is_refused_naming_the_file(checkpoint):
    from kentropy.core.integrity import CheckpointError
    from kentropy.sources.architectures import load_causal_lm

    load_causal_lm(str(checkpoint))  # as written: loads
    _nan_in_place(checkpoint / "model.safetensors")
    with pytest.raises(
        CheckpointError, match=rf"^{re.escape(str(checkpoint / 'model.safetensors'))}: sha256 \w+ differs"
    ):
        load_causal_lm(str(checkpoint))


def test_a_file_added_to_or_removed_from_a_checkpoint_is_refused(checkpoint):
    from kentropy.core.integrity import CheckpointError, verify

    (checkpoint / "model-00002.safetensors").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="model-00002.safetensors was added"):
        verify(checkpoint)
    (checkpoint / "model-00002.safetensors").unlink()
    (checkpoint / "config.json").unlink()
    with pytest.raises(CheckpointError, match="config.json is missing"):
        verify(checkpoint)


def test_a_users_own_checkpoint_has_no_checksums_and_loads(tmp_path):
    from kentropy.core.integrity import verify
    from kentropy.sources.architectures import load_causal_lm

    tiny_model("olmo").float().save_pretrained(tmp_path / "mine")
    assert verify(tmp_path / "mine") is None
    load_causal_lm(str(tmp_path / "mine"))


def test_nan_never_reaches_an_entropy_table(tmp_path):
    """A NaN weight in a checkpoint nothing can verify (a user's own): the meter's NaN is refused by the writer."""
    from kentropy.core.layout import with_keys
    from kentropy.measurement.entropy_pass import measure
    from tests.conftest import random_sequences

    model = tiny_model("olmo", dtype=torch.float32)
    with torch.no_grad():
        model.model.layers[0].mlp.down_proj.weight[0, 0] = float("nan")
    seqs = random_sequences(4, seed=0)
    batch = {"input_ids": torch.tensor([s[:3] for s in seqs]), "attention_mask": torch.ones(4, 3, dtype=torch.long)}
    table = with_keys(
        measure(model, [batch], progress=False, average="instance").table(), model="tiny", step=10, variant="original"
    )
    path = tmp_path / "original.parquet"
    with pytest.raises(
        TableError, match=r"column 'value' holds \d+ non-finite value\(s\) \(nan at model=tiny, step=10"
    ):
        write_table(table, path)
    assert not path.exists()


def test_tables_refuse_nan_and_infinity_except_where_missing_has_a_meaning(tmp_path):
    table = pd.DataFrame({"run": ["a", "b"], "seed": [0, 1], "mean": [1.0, 2.0], "ci_low": [np.nan, 1.5]})
    with pytest.raises(
        TableError, match=r"t.parquet: column 'ci_low' holds 1 non-finite value\(s\) \(nan at run=a, seed=0\)"
    ):
        write_table(table, tmp_path / "t.parquet")
    write_table(table, tmp_path / "t.parquet", missing=("ci_low",))  # one seed: no interval, by definition
    table.loc[1, "ci_low"] = np.inf
    with pytest.raises(TableError, match="ci_low' holds 1 non-finite value"):
        write_table(table, tmp_path / "t.parquet", missing=("ci_low",))


def test_pretraining_stops_on_a_non_finite_loss_naming_the_step(tmp_path):
    from kentropy.training.pretrain import train_segment
    from tests.conftest import pretraining, tiny_olmo

    world, tokenizer, _ = tiny_olmo(tmp_path, n_fictional=4)
    corpus = tmp_path / "corpus.parquet"
    from kentropy.sources.world import pretraining_corpus

    pd.DataFrame({"text": pretraining_corpus(world, 60, 1)}).to_parquet(corpus)
    cfg = pretraining(lr=1e30, weight_decay=0.0, seq_len=32, alpha_f=1.0, warmup_fraction=0.0)  # no weight survives
    with pytest.raises(FloatingPointError, match=r"pretraining: the loss is (nan|inf) at step \d+; stopping"):
        train_segment(cfg, str(corpus), str(tmp_path / "tok"), None, 0, 10, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", [".", "..", ".hidden", "-rf", "a/b", "a b", ""])
@pytest.mark.parametrize("where", ["experiment", "models", "continual.runs", "continual.corpora"])
def test_names_that_could_leave_their_folder_are_refused_at_validation(name, where):
    cfg = yaml.safe_load((ROOT / "tests/config/e2e.yaml").read_text())
    if where == "experiment":
        cfg["experiment"] = name
    else:
        section, _, sub = where.partition(".")
        node = cfg[section][sub] if sub else cfg[section]
        node[name] = next(iter(node.values()))
    with pytest.raises(ConfigError, match=rf"^config: {re.escape(where)}: {re.escape(repr(name))} is not a name"):
        validate_config(cfg, SCHEMA)


def test_the_schema_and_the_layout_share_one_name_pattern():
    schema = yaml.safe_load(SCHEMA.read_text())
    assert schema["$defs"]["name"]["pattern"] == f"^{NAME_PATTERN}$"


def test_the_layout_refuses_a_path_outside_its_experiment():
    layout = Layout("tiny")
    assert layout.stream("m", "baseline", "tokens.npy") == "results/tiny/streams/m/baseline/tokens.npy"
    assert layout.training("{model}", "{step}", "{variant}", "{run}", "model").startswith("results/tiny/continual/")
    for bad in ("..", ".", "a/../b", ""):
        with pytest.raises(LayoutError, match="not a path inside results/tiny/"):
            layout.stream("m", bad, "tokens.npy")
    with pytest.raises(LayoutError):
        Layout("..").table("entropy.parquet")
    with pytest.raises(LayoutError):
        Layout.hub_checkpoint("..", 10)


def test_malformed_yaml_names_the_file_line_and_column(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiment: x\nmodels:\n  tiny: {source: pretrain, steps: [10, 20}\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(bad))}:3:\d+: not valid YAML: "):
        load_config_file(bad)


def test_an_unreadable_table_names_the_rule_that_writes_it(tmp_path):
    path = tmp_path / "original.parquet"
    write_table(pd.DataFrame({"x": [1.0]}), path)
    path.write_bytes(path.read_bytes()[:20])  # truncated by something outside the pipeline
    with pytest.raises(InputError) as err:
        read_table(path, {str(path): "measure_entropy"})
    message = str(err.value)
    assert message.startswith(f"{path}: cannot read it (")
    assert "written by rule measure_entropy: redo it with `snakemake --forcerun measure_entropy`" in message
    assert "\n" not in message


def test_a_corpus_with_fewer_or_far_longer_documents_warns_with_the_numbers(tmp_path, caplog):
    from kentropy.sources.corpora import build_corpus, text_file_warnings, token_sequences
    from tests.conftest import tiny_olmo

    text = tmp_path / "one line.txt"
    text.write_text("word " * 4000 + "\n")
    warnings = text_file_warnings(text, count=24, max_length=32)  # at DAG build, from the file alone
    assert warnings[0] == f"entropy.corpus.path: {text} has 1 non-empty line(s) (documents), fewer than count 24"
    assert "has a line of 19,999 bytes (about 4,999 tokens), far past entropy.max_length 32" in warnings[1]
    assert text_file_warnings(text, count=1, max_length=8000) == []
    with caplog.at_level("WARNING"):
        corpus = build_corpus({"source": "text", "path": str(text), "count": 24})
        _, tokenizer, _ = tiny_olmo(tmp_path, n_fictional=4)
        seqs = token_sequences(corpus, tokenizer, max_length=32)
    assert "the text source gave 1 document(s), fewer than count 24; measuring 1" in caplog.text
    assert re.search(
        r"1 of 1 document\(s\) run far past entropy.max_length 32 \(the longest: about \d+ tokens\)", caplog.text
    )
    assert [len(s) for s in seqs] == [32]


def test_entropy_tables_are_identical_under_different_thread_counts():
    """The same checkpoint and corpus with 1, 2 and 4 torch threads: the same bits (float64 sums over tokens in
    an order fixed by the shapes, kentropy.measurement.meters.kernels.fixed_order_sum)."""
    from transformers import OlmoConfig, OlmoForCausalLM

    from kentropy.measurement.attention import ENTROPY_ATTENTION
    from kentropy.measurement.entropy_pass import measure

    torch.manual_seed(0)
    config = OlmoConfig(vocab_size=1024, hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                        num_attention_heads=4, max_position_embeddings=256, pad_token_id=0, eos_token_id=1,
                        bos_token_id=None)  # fmt: skip
    model = OlmoForCausalLM(config).eval()
    model.set_attn_implementation(ENTROPY_ATTENTION)
    g = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(3):
        ids = torch.randint(2, 1024, (32, 256), generator=g)
        mask = (torch.arange(256) < torch.randint(20, 257, (32, 1), generator=g)).long()
        batches.append({"input_ids": ids, "attention_mask": mask})
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 4):
            torch.set_num_threads(threads)
            meter = measure(model, batches, progress=False, average="instance")
            results.append((meter.table(), meter.mean_abs_coefficients()))
    finally:
        torch.set_num_threads(before)
    for table, coef in results[1:]:
        pd.testing.assert_frame_equal(table, results[0][0], check_exact=True)
        assert coef.tobytes() == results[0][1].tobytes()


def test_checksums_record_every_file_but_the_records(checkpoint):
    from kentropy.core.integrity import CHECKSUMS

    recorded = json.loads((checkpoint / CHECKSUMS).read_text())
    assert set(recorded) == {"config.json", "generation_config.json", "model.safetensors"}


def test_a_truncated_checksums_file_names_itself_and_its_rule(checkpoint):
    from kentropy.core.integrity import CheckpointError, verify

    (checkpoint / "pretrain.json").write_text("{}")  # what pretraining leaves beside its checkpoint
    (checkpoint / "checksums.json").write_text('{"config.json": "ab')
    with pytest.raises(CheckpointError) as err:
        verify(checkpoint)
    assert str(err.value).startswith(f"{checkpoint / 'checksums.json'}: cannot read it (JSONDecodeError: ")
    assert "it is written by rule pretrain_tiny" in str(err.value) and "\n" not in str(err.value)


def test_a_pipeline_checkpoint_without_its_checksums_is_refused_not_trusted(checkpoint):
    """Checksums deleted and a byte changed: the folder's own record says the pipeline wrote it, so it is not
    taken for a user's folder (whose bytes nothing checks)."""
    from kentropy.core.integrity import CheckpointError
    from kentropy.sources.architectures import load_causal_lm

    (checkpoint / "resuscitation.json").write_text("{}")
    (checkpoint / "checksums.json").unlink()
    _nan_in_place(checkpoint / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"written by rule resuscitate, but its checksums.json is missing"):
        load_causal_lm(str(checkpoint))


def test_a_truncated_coefficient_file_names_its_rule(checkpoint, tmp_path):
    from kentropy.training.resuscitation import resuscitate_checkpoint

    coef = tmp_path / "original.coef.npy"
    np.save(coef, np.ones((3, 48)))
    coef.write_bytes(coef.read_bytes()[:100])
    with pytest.raises(InputError, match=r"cannot read it .* it is written by rule measure_entropy: redo it"):
        resuscitate_checkpoint(str(checkpoint), str(coef), 50, 2.0, str(tmp_path / "out"),
                               producers={str(coef): "measure_entropy"})  # fmt: skip


def test_every_checkpoint_writer_the_integrity_module_names_is_a_rule():
    from kentropy.core.integrity import WRITERS

    rules = set(re.findall(r"^rule (\w+):", "".join(p.read_text() for p in (ROOT / "workflow/rules").glob("*.smk")),
                           re.MULTILINE))  # fmt: skip
    assert set(WRITERS.values()) <= rules
