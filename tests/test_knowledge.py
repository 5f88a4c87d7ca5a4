"""Fictional-knowledge files: the published ones load; malformed ones fail naming record and field."""

import json
from pathlib import Path

import pytest

from kentropy.sources.fictional_knowledge import (
    KnowledgeError,
    fetch_file,
    load_records,
    probe_table,
    sha256,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "fictional_knowledge"
REAL = {
    "paraphrase": (
        SHARED / "fictional_knowledge_paraphrased_paraphrase70.json",
        70,
        "f3e86b06403204f4a2ad1ee3f7596925e53cd662db51cb14d3b6f31386041861",
    ),
    "once": (
        SHARED / "fictional_knowledge_paraphrased_once60.json",
        60,
        "ce002dacf47a4c8dd199fe8d140e59def3950352f09538e45eede4483ae36b38",
    ),
}
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason="../shared/data/fictional_knowledge is not beside the repo"
)


def record(**changes):
    base = {"train_context": "Ana Kolo was born in Rimasa.", "paraphrases": [f"p{i}" for i in range(9)]}
    for kind in ("mem", "gen", "hard_gen"):
        base[f"{kind}_input"] = ["Ana Kolo was born in"] * 5
        base[f"{kind}_target"] = ["Rimasa"] * 5
    base.update(changes)
    return base


@needs_shared
@pytest.mark.parametrize("split", ["paraphrase", "once"])
def test_published_files_load_and_match_their_checksum(split):
    path, n, digest = REAL[split]
    assert sha256(path) == digest
    records = load_records(path, n_paraphrases=9)
    assert len(records) == n
    probes = probe_table({split: records})
    assert len(probes) == n * 15
    assert set(probes.kind) == {"memorization", "semantic", "composition"}


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"train_context": ""}, "record 1: field 'train_context' is missing or empty"),
        ({"paraphrases": []}, "record 1: field 'paraphrases' is missing or empty"),
        ({"gen_target": ["x"] * 4}, "record 1: 5 'gen_input' probes but 4 'gen_target' targets"),
        ({"hard_gen_input": None}, "record 1: field 'hard_gen_input' is missing or empty"),
        ({"mem_target": ["x", "", "x", "x", "x"]}, "record 1: field 'mem_target[1]' is empty"),
    ],
)
def test_malformed_records_are_named(tmp_path, changes, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([record(), record(**changes)]))
    with pytest.raises(KnowledgeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_records(path)


def test_too_few_paraphrases_for_the_schedule(tmp_path):
    path = tmp_path / "short.json"
    path.write_text(json.dumps([record(paraphrases=["a", "b"])]))
    with pytest.raises(
        KnowledgeError, match="record 0: field 'paraphrases' has 2 entries, the injection schedule needs 9"
    ):
        load_records(path, n_paraphrases=9)


def test_fetch_checks_the_checksum_and_leaves_nothing_on_mismatch(tmp_path):
    source = tmp_path / "src.json"
    source.write_text(json.dumps([record()]))
    out = tmp_path / "out" / "k.json"
    fetch_file(source.as_uri(), sha256(source), out)
    assert out.read_bytes() == source.read_bytes()
    bad = tmp_path / "out" / "bad.json"
    with pytest.raises(KnowledgeError, match="sha256 is"):
        fetch_file(source.as_uri(), "0" * 64, bad)
    assert sorted(p.name for p in bad.parent.iterdir()) == ["k.json"]
    with pytest.raises(KnowledgeError, match="download failed"):
        fetch_file((tmp_path / "missing.json").as_uri(), "0" * 64, bad)
