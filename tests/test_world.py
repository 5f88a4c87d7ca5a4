"""The generated world: deterministic, and fictional knowledge in the kaist-ai schema."""

from __future__ import annotations

import json

from kentropy.core.layout import WORLD_FILES
from kentropy.sources.world import build_world, fictional_record, multiple_choice_questions, write_world

ARGS = dict(
    seed=3,
    n_people=40,
    n_documents=50,
    n_new_domain_documents=10,
    n_paraphrase=4,
    n_once=6,
    n_questions=12,
    person_zipf=1.0,
    object_zipf=1.0,
    fact_probability=0.6,
)


def files(folder):
    """A file per role of the world, as the generate_world rule names them."""
    return {role: folder / name for role, name in WORLD_FILES.items()}


def test_deterministic_under_seed(tmp_path):
    write_world(files(tmp_path / "a"), **ARGS)
    write_world(files(tmp_path / "b"), **ARGS)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(WORLD_FILES.values())
    for f in WORLD_FILES.values():
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_fictional_records_follow_schema_and_are_new(tmp_path):
    write_world(files(tmp_path), **ARGS)
    world = build_world(3, 40, 10)
    known = {p.name for p in world.people}
    for split, n in (("paraphrase", 4), ("once", 6)):
        records = json.loads((tmp_path / f"fictional_{split}.json").read_text())
        assert len(records) == n
        for r in records:
            for kind in ("mem", "gen", "hard_gen"):
                assert len(r[f"{kind}_input"]) == len(r[f"{kind}_target"]) == 5
            assert len(r["paraphrases"]) == 9
            assert not any(name in r["train_context"] for name in known)
            for inp, tgt in zip(r["mem_input"], r["mem_target"]):
                assert f"{inp} {tgt}" in r["train_context"]


def test_composition_probe_uses_pretraining_geography():
    world = build_world(0, 10, 2)
    person = world.fictional[0]
    record = fictional_record(person, world.country_of[person.city], seed=0)
    assert record["hard_gen_target"][0] == world.country_of[person.city]


def test_questions_have_the_right_answer():
    world = build_world(1, 20, 1)
    by_name = {p.name: p for p in world.people}
    for q in multiple_choice_questions(world, 30, seed=2):
        answer = q["choices"][q["answer"]]
        person = next(p for n, p in by_name.items() if n in q["question"])
        assert answer in (person.city, person.profession, person.instrument)
        assert len(set(q["choices"])) == len(q["choices"])


def test_uniform_settings_give_the_earlier_world():
    """person_zipf 0, object_zipf 0, fact_probability 1 draw the world of issues 1-24 value for value (the digest
    of this corpus as that code wrote it), so the miniature's documented numbers stay reproducible."""
    import hashlib

    from kentropy.sources.world import pretraining_corpus

    world = build_world(3, 40, 10, object_zipf=0.0)
    corpus = pretraining_corpus(world, 50, 4, person_zipf=0.0, fact_probability=1.0)
    digest = hashlib.sha256("\n".join(corpus).encode()).hexdigest()
    assert digest == "07b92cbd212800b2bd06d536825de6629ac6768049f2b7a313cfdd44f136249f"


def test_a_models_own_skew_reads_the_worlds_corpus_at_that_skew(tmp_path):
    """At the world's own skew the skewed corpus is the world's pretraining file, text for text; at another
    it draws the same people with other weights (docs/lab.md, the data factor)."""
    import pandas as pd

    from kentropy.core.layout import WORLD_FILES
    from kentropy.sources.world import skewed_pretraining_corpus, write_world

    spec = dict(seed=3, n_people=20, n_documents=60, n_paraphrase=2, n_once=2, fact_probability=0.6)
    files = {role: tmp_path / name for role, name in WORLD_FILES.items()}
    write_world(files, n_new_domain_documents=5, n_questions=4, person_zipf=1.0,
                object_zipf=1.0, **spec)  # fmt: skip
    skewed_pretraining_corpus(tmp_path / "same.parquet", person_zipf=1.0, object_zipf=1.0, **spec)
    world = pd.read_parquet(files["pretrain"])
    assert pd.read_parquet(tmp_path / "same.parquet").equals(world)
    skewed_pretraining_corpus(tmp_path / "flat.parquet", person_zipf=0.0, object_zipf=1.5, **spec)
    flat = pd.read_parquet(tmp_path / "flat.parquet")
    assert len(flat) == len(world) and not flat.equals(world)


def test_entropy_documents_are_held_out_draws_that_grow_by_appending(tmp_path):
    """The entropy documents are the pretraining distribution at seed + 2, written by their own rule: a larger
    evaluation set keeps the smaller one as its first documents, and its size is no param of the world's rule
    (so it reruns no pretraining)."""
    import pandas as pd

    from kentropy.sources.world import pretraining_corpus, skewed_pretraining_corpus, spec_for, write_entropy_documents

    spec = {k: v for k, v in ARGS.items() if k not in ("n_documents", "n_new_domain_documents", "n_questions")}
    write_entropy_documents(tmp_path / "small.parquet", n_entropy_documents=6, **spec)
    write_entropy_documents(tmp_path / "large.parquet", n_entropy_documents=15, **spec)
    small, large = (pd.read_parquet(tmp_path / f).text.tolist() for f in ("small.parquet", "large.parquet"))
    world = build_world(3, 40, 10, object_zipf=1.0)
    assert large == pretraining_corpus(world, 15, 3 + 2, person_zipf=1.0, fact_probability=0.6)
    assert large[:6] == small
    section = {**ARGS, "n_entropy_documents": 15}
    assert spec_for(write_world, section) == ARGS
    assert "n_entropy_documents" not in spec_for(skewed_pretraining_corpus, section, exclude=("person_zipf",))
    assert set(spec_for(write_entropy_documents, section)) == {*spec, "n_entropy_documents"}
