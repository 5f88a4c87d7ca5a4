"""The world's knowledge frequency, the facts file, and each fact's exposures in a data order, against brute force."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from kentropy.core.layout import WORLD_FILES
from kentropy.measurement.exposure import fact_exposure, statement_positions
from kentropy.sources.corpora import pack_blocks
from kentropy.sources.facts_file import FactsError, check_facts, load_facts, questions, search_counts
from kentropy.sources.world import HELD_OUT_TEMPLATES, RELATIONS, write_world
from kentropy.training.pretrain import batch_indices

WORLD = dict(seed=5, n_people=60, n_documents=600, n_new_domain_documents=4, n_paraphrase=1,
             n_once=1, n_questions=2, person_zipf=1.0, object_zipf=1.0, fact_probability=0.6)  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("world")
    write_world({role: folder / name for role, name in WORLD_FILES.items()}, **WORLD)
    texts = pd.read_parquet(folder / WORLD_FILES["pretrain"]).text.tolist()
    return folder, load_facts(folder / WORLD_FILES["facts"]), pd.read_parquet(folder / "statements.parquet"), texts


def test_exact_counts_against_the_texts(world):
    """n_s: documents containing the full name anywhere (names are unique); n_so: documents stating the fact
    (a value appears in its person's biography only through that fact); N: every document."""
    _, facts, statements, texts = world
    assert (facts.N == len(texts)).all()
    for row in facts.itertuples():
        assert row.n_s == sum(row.subject in t for t in texts), row.subject
        stating = statements[(statements.subject == row.subject) & (statements.relation == row.relation)]
        assert row.n_so == stating.document.nunique() == len(stating)
        assert row.n_so <= min(row.n_s, row.n_o)


def test_statement_offsets_point_at_the_object(world):
    _, _, statements, texts = world
    for row in statements.itertuples():
        assert texts[row.document][row.start : row.start + len(row.object)] == row.object
        assert row.subject in texts[row.document]


def test_search_counts_against_brute_force(world):
    """The released method: a document names a string when it holds it with a space before it."""
    _, facts, _, texts = world
    found = search_counts(facts, texts)
    for i, row in enumerate(facts.itertuples()):
        s = [(" " + row.subject) in t for t in texts]
        o = [(" " + row.object) in t for t in texts]
        assert found.loc[i].tolist() == [len(texts), sum(s), sum(o), sum(a and b for a, b in zip(s, o))]
    exact = facts[["n_s", "n_o", "n_so"]].to_numpy()
    assert (exact == facts[["n_s_search", "n_o_search", "n_so_search"]].to_numpy()).all(axis=1).mean() < 1


def test_frequencies_vary(world):
    """Zipf persons (two orders of magnitude of document counts), biographies stating a subset of the facts,
    objects of unequal frequency."""
    _, facts, statements, _ = world
    people = facts.drop_duplicates("subject")
    assert people.n_s.max() >= 100 * max(1, people[people.n_s > 0].n_s.min())
    assert statements.groupby("document").size().min() < len(RELATIONS)
    assert (facts.n_so < facts.n_s).mean() > 0.5
    professions = facts[facts.relation == "profession"].object.value_counts()
    assert professions.iloc[0] >= 3 * professions.iloc[-1]


def test_held_out_templates_never_in_the_corpus(world):
    _, facts, _, texts = world
    corpus = " ".join(texts)
    for relation, templates in HELD_OUT_TEMPLATES.items():
        subject = facts[facts.relation == relation].subject.iloc[0]
        for template in templates:
            assert template.format(subject=subject) not in corpus
    asked = questions(facts)
    assert set(asked.templates) == {"corpus", "held_out"}
    corpus_questions = asked[asked.templates == "corpus"]
    assert all(p in corpus for p in corpus_questions.prompt[corpus_questions.subject.isin(
        [s for s in facts.subject if s in corpus])].head(30))  # fmt: skip


def test_facts_file_schema_errors_name_the_column(tmp_path):
    good = pd.DataFrame(
        {"subject": ["Ada"], "relation": ["city"], "object": ["Paris"], "templates": [["{subject} lived in"]]}
    )
    path = tmp_path / "facts.jsonl"
    path.write_text(good.to_json(orient="records", lines=True))
    assert load_facts(path).templates[0] == ["{subject} lived in"]
    with pytest.raises(FactsError, match="no column templates"):
        check_facts(good.drop(columns="templates"))
    with pytest.raises(FactsError, match=r"column templates: template 'lived in' has no \{subject\}"):
        check_facts(good.assign(templates=[["lived in"]]))
    with pytest.raises(FactsError, match="exact counts need all of N, n_s, n_o, n_so"):
        check_facts(good.assign(N=10))
    with pytest.raises(FactsError, match="column object must hold non-empty strings"):
        check_facts(good.assign(object=[""]))
    (tmp_path / "facts.csv").write_text("x")
    with pytest.raises(FactsError, match="a facts file is .parquet, .jsonl or .json"):
        load_facts(tmp_path / "facts.csv")
    records = tmp_path / "facts.json"
    records.write_text(json.dumps([{**good.iloc[0].to_dict(), "held_out_templates": None}]))
    assert load_facts(records).held_out_templates[0] == []


def test_exposure_against_a_replay_of_the_data_order(world, tmp_path):
    """Positions hold the first token of " " + object in the packed stream; exposures and the last step equal
    a step-by-step replay of the batches."""
    from kentropy.training.pretrain import train_tokenizer

    _, facts, statements, texts = world
    train_tokenizer(texts, 300, tmp_path / "tok")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "tok")
    seq_len, batch_size, seed, checkpoints = 32, 4, 7, [3, 10, 25]
    blocks = pack_blocks(texts, tokenizer, seq_len)
    positions = statement_positions(texts, statements, tokenizer)
    flat = blocks.reshape(-1)
    for position, obj in zip(positions, statements.object):
        if position < flat.size:
            assert flat[position] == tokenizer(" " + obj, add_special_tokens=False)["input_ids"][0]
    table = fact_exposure(facts, statements, positions, len(blocks), seq_len, batch_size, seed, checkpoints)
    for checkpoint in checkpoints:
        trained = [set(batch_indices(s, batch_size, len(blocks), seed).tolist()) for s in range(checkpoint)]
        for fact, row in enumerate(facts.itertuples()):
            mine = statements[(statements.subject == row.subject) & (statements.relation == row.relation)]
            hits = [s + 1 for p in positions[mine.index] for s in range(checkpoint) if p // seq_len in trained[s]]
            got = table[(table.step == checkpoint) & (table.fact == fact)].iloc[0]
            assert got.exposures == len(hits) and got.statements == len(mine)
            assert (math.isnan(got.last_exposure) and not hits) or got.last_exposure == max(hits)
    assert table[table.step == 25].exposures.sum() > 0
    assert (np.diff(table.pivot(index="fact", columns="step", values="exposures").to_numpy(), axis=1) >= 0).all()


def test_checkpoint_outcomes_are_correlated_across_steps():
    """QA accuracy, SMI's R² and upper bound and PSS per checkpoint become rows of run ``pretraining``: Pearson r
    with each entropy metric across steps, per trajectory; a trajectory without SMI values still gets its row."""
    from scipy import stats

    from kentropy.analysis.fact_tables import PRETRAINING, checkpoint_outcomes
    from kentropy.analysis.outcomes import correlations

    steps, rng = [10, 20, 30, 40], np.random.default_rng(2)
    keys = [(t, s) for t in (0, 1) for s in steps]
    entropy = pd.DataFrame([{"model": "m", "trajectory": t, "step": s, "metric": "knowledge_entropy", "layer": pd.NA,
                             "value": rng.random()} for t, s in keys])  # fmt: skip
    qa = pd.DataFrame([{"model": "m", "trajectory": t, "step": s, "templates": kind, "fact": f,
                        "accuracy": rng.random()}
                       for t, s in keys for kind in ("corpus", "held_out") for f in range(3)])  # fmt: skip
    smi = pd.DataFrame([{"model": "m", "trajectory": t, "step": s, "counts": c, "templates": "corpus", "size": z,
                         "r2": np.nan if t == 0 else rng.random(), "upper_bound": rng.random()}
                        for t, s in keys for c in ("exact", "search") for z in ("log2", "billions")])  # fmt: skip
    pss = pd.DataFrame([{"model": "m", "trajectory": t, "step": s, "view": v, "pss": rng.random(),
                         "masking": rng.random()}
                        for t, s in keys for v in ("person", "relation")])  # fmt: skip
    outcomes = checkpoint_outcomes(qa, smi, pss, "log2", seed=0)
    assert sorted(set(outcomes.metric)) == ["pss", "pss_masking", "qa_accuracy", "smi_r2", "smi_upper_bound"]
    continual = pd.DataFrame(columns=["model", "trajectory", "step", "variant", "run", "seed", "metric", "split",
                                      "kind", "value"])  # fmt: skip
    table = correlations(entropy, continual, ["knowledge_entropy"], checkpoints=outcomes)
    assert set(table.run) == {PRETRAINING} and len(table) == 2 * 5 * 2  # trajectories x outcomes x methods
    for t in (0, 1):
        x = entropy[entropy.trajectory == t].value.to_numpy()
        mean_accuracy = qa[(qa.trajectory == t) & (qa.templates == "corpus")].groupby("step").accuracy.mean()
        row = table[(table.trajectory == t) & (table.y == "qa_accuracy") & (table.method == "pearson")].iloc[0]
        assert row.r == pytest.approx(stats.pearsonr(x, mean_accuracy.to_numpy()).statistic, rel=1e-12)
        upper = smi[(smi.trajectory == t) & (smi.counts == "exact") & (smi["size"] == "log2")].upper_bound
        row = table[(table.trajectory == t) & (table.y == "smi_upper_bound") & (table.method == "pearson")].iloc[0]
        assert row.r == pytest.approx(stats.pearsonr(x, upper.to_numpy()).statistic, rel=1e-12)
    no_r2 = table[(table.trajectory == 0) & (table.y == "smi_r2")]
    assert no_r2.r.isna().all() and (no_r2.n == 0).all()


def test_config_checks_the_facts_section(tmp_path):
    """At DAG build (kentropy.pipeline.config_check): validation, then the facts file's own check."""
    from kentropy.core.config import SCHEMA, ConfigError, load_config
    from kentropy.pipeline.config_check import check_config

    config = load_config(SCHEMA.parent / "config.yaml")
    assert config["facts"]["size"] == "log2" and config["facts"]["specialization"]["k"] == [1, 8, 64]
    config["facts"] = {"source": "file", "path": str(tmp_path / "none.jsonl")}
    with pytest.raises(ConfigError, match=r"config: facts.path: no file .*none.jsonl"):
        check_config(config, SCHEMA)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"subject": "a", "relation": "r", "object": "o"}\n')
    config["facts"] = {"source": "file", "path": str(bad)}
    with pytest.raises(ConfigError, match=r"config: facts.path: .*bad.jsonl: no column templates"):
        check_config(config, SCHEMA)
    config["facts"] = {"source": "file"}
    with pytest.raises(ConfigError, match="facts: 'path' is a required property"):
        check_config(config, SCHEMA)
