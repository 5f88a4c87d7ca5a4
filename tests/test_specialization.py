"""Parameter specialization (kentropy.measurement.specialization) and closed-book QA (kentropy.measurement.qa) against
brute force, on every supported architecture, float64."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from kentropy.analysis.fact_tables import specialization_summary as summary
from kentropy.analysis.outcomes import mean_interval
from kentropy.evaluation.probes import encode_probe, score_targets
from kentropy.measurement.qa import answer_questions, greedy_continuations
from kentropy.measurement.specialization import (
    concept_sets,
    masked,
    peaks,
    pss,
    question_coefficients,
    specialization,
    top_vectors,
    vector_scores,
)
from kentropy.sources.architectures import decoder_layers, load_causal_lm
from kentropy.sources.facts_file import questions
from tests.conftest import random_sequences, tiny_model, tiny_olmo


def test_question_coefficients_against_one_question_at_a_time(arch):
    model = tiny_model(arch)
    sequences = random_sequences(7, seed=2)
    got = question_coefficients(model, sequences, batch_size=3, pad_id=0)
    layers = decoder_layers(model)
    for q, seq in enumerate(sequences):
        captured = {}
        handles = [
            layer.down.register_forward_pre_hook(lambda m, a, i=i: captured.__setitem__(i, a[0]))
            for i, layer in enumerate(layers)
        ]
        with torch.no_grad():
            model(input_ids=torch.tensor([seq]))
        for h in handles:
            h.remove()
        for i in range(len(layers)):
            expected = captured[i][0].abs().mean(0).numpy()
            np.testing.assert_allclose(got[q, i], expected, rtol=1e-6, atol=0)  # padded batches: test_entropy.REL


def test_masking_equals_zeroed_down_columns(arch):
    """Setting coefficient j of a layer to 0 on every token is removing column j of its down projection."""
    model = tiny_model(arch)
    layers = decoder_layers(model)
    scores = np.random.default_rng(0).random((len(layers), layers[0].down.in_features))
    vectors = top_vectors(scores, 9)
    ids = torch.tensor(random_sequences(3, seed=5, min_len=6, max_len=6))
    with torch.no_grad(), masked(model, vectors):
        hooked = model(input_ids=ids).logits
    with torch.no_grad():
        plain = model(input_ids=ids).logits
        for layer, index in vectors:
            layers[layer].down.weight[:, index] = 0
        zeroed = model(input_ids=ids).logits
    torch.testing.assert_close(hooked, zeroed, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(hooked, plain)


def test_top_vectors_and_scores_against_brute_force():
    rng = np.random.default_rng(1)
    coefficients = rng.random((10, 3, 5))
    concept = np.arange(10) < 4
    scores = vector_scores(coefficients, concept, ~concept)
    for layer in range(3):
        for j in range(5):
            expected = coefficients[:4, layer, j].mean() - coefficients[4:, layer, j].mean()
            assert scores[layer, j] == pytest.approx(expected, rel=1e-14, abs=1e-15)
    flat = sorted(((scores[i, j], i, j) for i in range(3) for j in range(5)), key=lambda t: -t[0])
    assert [tuple(v) for v in top_vectors(scores, 4)] == [(i, j) for _, i, j in flat[:4]]
    assert pss(0.8, 0.2, 0.9) == pytest.approx(0.6 / 0.9) and math.isnan(pss(0.1, 0.1, 0.0))


def test_peaks_and_summary_against_brute_force():
    rows = []
    rng = np.random.default_rng(4)
    for step in (10, 20):
        for concept in "abc":
            for k in (1, 2, 4):
                rows.append({"model": "m", "trajectory": 0, "step": step, "view": "person", "concept": concept,
                             "frequency": float(ord(concept)), "k": k, "pss": rng.random(), "cs_before": 0.5,
                             "gs_before": 0.6, "pss_unmasked": 0.1 * (ord(concept) - 96)})  # fmt: skip
    concepts = pd.DataFrame(rows)
    concepts.loc[(concepts.step == 20) & (concepts.concept == "c"), "pss"] = np.nan
    peak = peaks(concepts, ["model", "trajectory", "step"])
    for row in peak.itertuples():
        at = concepts[(concepts.step == row.step) & (concepts.concept == row.concept)]
        if at.pss.isna().all():
            assert math.isnan(row.pss)
        else:
            assert row.pss == at.pss.max() and row.k_peak == at.k[at.pss.idxmax()]
            assert row.masking == pytest.approx(at.pss.max() - 0.1 * (ord(row.concept) - 96), rel=1e-14)
    table = summary(peak, ["model", "trajectory", "step"])
    for row in table.itertuples():
        kept = peak[(peak.step == row.step) & peak.pss.notna()]
        assert (row.pss, row.ci_low, row.ci_high) == pytest.approx(mean_interval(kept.pss))
        assert row.concepts == len(kept)
        expected = mean_interval(kept.pss - kept.pss_unmasked)
        assert (row.masking, row.masking_ci_low, row.masking_ci_high) == pytest.approx(expected)


@pytest.fixture(scope="module")
def world_model(tmp_path_factory):
    """A tiny OLMo with a tokenizer of a small world, and that world's facts (a hand-made file)."""
    root = tmp_path_factory.mktemp("qa")
    world, tokenizer, model = tiny_olmo(root, n_fictional=1, noise=0.5)
    facts = pd.DataFrame(
        [(p.name, rel, str(getattr(p, rel)), [f"{{subject}} {stem}", f"About {{subject}}: {stem}"],
          [f"So {{subject}} {stem}"], 100, 5 + i, 9, 2 + i % 3)
         for i, p in enumerate(world.people[:8])
         for rel, stem in (("city", "was born in"), ("profession", "worked as a"))],
        columns=["subject", "relation", "object", "templates", "held_out_templates", "N", "n_s", "n_o", "n_so"],
    )  # fmt: skip
    return tokenizer, model.double(), facts


def test_greedy_batches_group_prompts_by_length_and_equal_one_prompt_at_a_time(world_model, monkeypatch):
    tokenizer, model, facts = world_model
    prompts = list(questions(facts).prompt[:9])
    lengths = [len(tokenizer(p)["input_ids"]) for p in prompts]
    assert lengths != sorted(lengths)  # the batches' order is not the prompts'
    widths, generate = [], model.generate
    monkeypatch.setattr(
        model, "generate", lambda **kw: widths.append(kw["attention_mask"].sum(1).tolist()) or generate(**kw)
    )
    batched = greedy_continuations(model, tokenizer, prompts, max_new_tokens=5, batch_size=4)
    assert sum(widths, []) == sorted(lengths) and len(widths) == 3
    monkeypatch.undo()
    alone = [greedy_continuations(model, tokenizer, [p], max_new_tokens=5, batch_size=1)[0] for p in prompts]
    assert batched == alone and len(set(alone)) > 1  # each answer is its own prompt's


def test_match_is_a_greedy_continuation_that_begins_with_the_object(world_model):
    """The teacher-forced match equals greedy decoding token by token, one question at a time."""
    tokenizer, model, facts = world_model
    asked = questions(facts)
    encoded = [encode_probe(tokenizer, p, o) for p, o in zip(asked.prompt, asked.object)]
    _, match = score_targets(model, encoded, 16, tokenizer.pad_token_id)
    for (ids, n), got in zip(encoded, match):
        context = torch.tensor([ids[:-n]])
        with torch.no_grad():
            out = model.generate(context, max_new_tokens=n, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        assert got == (out[0, -n:].tolist() == ids[-n:])
    answers = answer_questions(model, tokenizer, facts, max_new_tokens=6, batch_size=8)
    assert list(answers.columns[:6]) == ["fact", "subject", "relation", "object", "templates", "template"]
    assert answers.correct.dtype == bool and (answers.templates == "held_out").sum() == len(facts)
    for row in answers.head(6).itertuples():
        assert row.correct == (row.object in row.answer)


def test_specialization_rows_against_masked_accuracy(world_model):
    tokenizer, model, facts = world_model
    table = specialization(model, tokenizer, facts, ks=[1, 3], n_concepts=3, n_control=6, batch_size=5, seed=0)
    pool, sets = concept_sets(facts, 3, 6, 0)
    assert set(table.view) == {"person", "relation"} and len(table) == (3 + 2) * 2
    assert list(sets["person"]) == list(facts.sort_values("n_s", ascending=False, kind="stable").drop_duplicates(
        "subject").subject.iloc[[0, 4, 7]])  # fmt: skip
    encoded = [encode_probe(tokenizer, p, o) for p, o in zip(pool.prompt, pool.object)]
    prompts = [tokenizer(p)["input_ids"] for p in pool.prompt]
    coefficients = question_coefficients(model, prompts, 5, tokenizer.pad_token_id)
    for row in table.itertuples():
        is_concept, is_control, _ = sets[row.view][row.concept]
        vectors = top_vectors(vector_scores(coefficients, is_concept, is_control), row.k)
        before = score_targets(model, encoded, 5, tokenizer.pad_token_id, progress=False)[1]
        with masked(model, vectors):
            after = score_targets(model, encoded, 5, tokenizer.pad_token_id, progress=False)[1]
        expected = (
            before[is_concept].mean(),
            before[is_control].mean(),
            after[is_concept].mean(),
            after[is_control].mean(),
        )
        assert (row.cs_before, row.gs_before, row.cs_after, row.gs_after) == pytest.approx(expected)
        assert row.pss == pytest.approx(pss(expected[3], expected[2], expected[1]), nan_ok=True)
        assert row.pss_unmasked == pytest.approx(pss(expected[1], expected[0], expected[1]), nan_ok=True)


def test_qa_and_specialization_on_another_architecture(world_model, tmp_path):
    """A random-weight Llama checkpoint with the world's tokenizer, saved and loaded as a real one is: the same
    code answers every question and masks its value vectors."""
    import transformers as tf

    tokenizer, _, facts = world_model
    config = tf.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=48, max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
    )  # fmt: skip
    torch.manual_seed(0)
    tf.LlamaForCausalLM(config).save_pretrained(tmp_path / "llama")
    tokenizer.save_pretrained(tmp_path / "llama")
    model = load_causal_lm(str(tmp_path / "llama"))
    answers = answer_questions(model, tokenizer, facts, max_new_tokens=4, batch_size=8)
    assert len(answers) == 3 * len(facts) and np.isfinite(answers.logprob).all()
    table = specialization(model, tokenizer, facts, ks=[2], n_concepts=2, n_control=4, batch_size=8, seed=0)
    assert len(table) == 2 + 2 and table.n_concept.gt(0).all()
