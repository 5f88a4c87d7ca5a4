"""Every metric against a brute-force float64 reference that materialises all coefficients."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
import torch

from kentropy.measurement.entropy_pass import measure, position_ids_from_mask
from kentropy.measurement.meters import STATISTICS
from kentropy.measurement.meters.kernels import next_token_entropy
from kentropy.sources.corpora import padded_batches
from tests.conftest import random_sequences, tiny_model

REL = 1e-6


def _entropy_explicit(weights: np.ndarray) -> float:
    total = sum(weights)
    return -sum((w / total) * np.log(w / total) for w in weights if w > 0)


def reference(model, sequences: list[list[int]], average: str = "instance") -> dict:
    """Unpadded, one sequence at a time; coefficients recomputed from each MLP's input by hand."""
    layers = model.base_model.layers
    coefs: list[list[np.ndarray]] = [[] for _ in layers]
    inputs: dict[int, torch.Tensor] = {}
    handles = [
        layer.mlp.register_forward_pre_hook(lambda m, a, i=i: inputs.__setitem__(i, a[0]))
        for i, layer in enumerate(layers)
    ]
    attn_rows: list[list[np.ndarray]] = [[] for _ in layers]
    next_token = []
    with torch.no_grad():
        for seq in sequences:
            out = model(torch.tensor([seq]), output_attentions=True)
            for i, layer in enumerate(layers):
                x, mlp = inputs[i][0], layer.mlp
                if hasattr(mlp, "down_proj"):
                    c = mlp.act_fn(x @ mlp.gate_proj.weight.T) * (x @ mlp.up_proj.weight.T)
                else:
                    c = mlp.act(x @ mlp.dense_h_to_4h.weight.T + mlp.dense_h_to_4h.bias)
                coefs[i].append(c.numpy())
                attn = out.attentions[i][0].numpy()  # (heads, q, k)
                ent = np.where(attn > 0, -attn * np.log(np.where(attn > 0, attn, 1.0)), 0.0).sum(-1)
                attn_rows[i].append(ent.mean(0))
            logits = out.logits[0].numpy().astype(np.float64)
            logp = logits - logits.max(-1, keepdims=True)
            logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
            next_token.append(-(np.exp(logp) * logp).sum(-1))
    for h in handles:
        h.remove()
    if average == "token":  # pool every token of the corpus
        mean = lambda parts: np.concatenate(parts).mean(0)  # noqa: E731
    else:  # the paper's: over each instance's tokens, then over instances (1/|D| sum_n 1/T_n sum_j)
        mean = lambda parts: np.mean([p.mean(0) for p in parts], axis=0)  # noqa: E731
    mean_abs = np.stack([mean([np.abs(c) for c in layer]) for layer in coefs])
    mean_relu = np.stack([mean([np.maximum(c, 0) for c in layer]) for layer in coefs])
    return {
        "coef": mean_abs,
        "knowledge_entropy": [_entropy_explicit(v) for v in mean_abs],
        "knowledge_entropy_relu": [_entropy_explicit(v) for v in mean_relu],
        "attention_entropy": [mean(a) for a in attn_rows],
        "next_token_entropy": mean(next_token),
        "n_tokens": sum(len(s) for s in sequences),
    }


def run(model, sequences, batch_size=4, padding_side="right", average="instance"):
    return measure(
        model,
        padded_batches(sequences, batch_size, pad_id=0, padding_side=padding_side),
        progress=False,
        average=average,
    )


def value(table: pd.DataFrame, metric: str, layer=None) -> float:
    rows = table[(table.metric == metric) & (table.layer.isna() if layer is None else table.layer == layer)]
    assert len(rows) == 1
    return float(rows.value.iloc[0])


@pytest.mark.parametrize("average", ["instance", "token"])
def test_every_metric_matches_brute_force(arch, average):
    """Ragged sequences (3 to 17 tokens) in right-padded batches, either average."""
    model = tiny_model(arch)
    sequences = random_sequences(9, seed=1)
    meter = run(model, sequences, batch_size=4, average=average)
    table, ref = meter.table(), reference(model, sequences, average)
    np.testing.assert_allclose(meter.mean_abs_coefficients(), ref["coef"], rtol=REL, atol=0)
    for metric in ("knowledge_entropy", "knowledge_entropy_relu", "attention_entropy"):
        for layer, expected in enumerate(ref[metric]):
            assert value(table, metric, layer) == pytest.approx(expected, rel=REL), (metric, layer)
        assert value(table, metric) == pytest.approx(sum(ref[metric]), rel=REL), metric
    assert value(table, "next_token_entropy") == pytest.approx(ref["next_token_entropy"], rel=REL)
    assert (table.n_tokens == ref["n_tokens"]).all()


@pytest.mark.parametrize("vocab", [16384, 50304])
def test_next_token_entropy_of_wide_rows_matches_float64(vocab):
    """Every row, at the tiny model's vocabulary and OLMo's, flat to peaked rows (entropies from ln(vocab)
    down to 5e-5 nats), a row count that leaves a partial chunk. Within 1e-5 nats: a float32 dot product over
    the vocabulary (the version before) was off by 4e-5 nats at 16,384 and 2e-4 at 50,304."""
    scale = torch.logspace(-1, 1.2, 67)[:, None]  # the logits' standard deviation, 0.1 to 16, per row
    logits = torch.randn(67, vocab, generator=torch.Generator().manual_seed(0)) * scale
    logp = torch.log_softmax(logits.double(), -1)
    expected = -(logp.exp() * logp).sum(-1)
    np.testing.assert_allclose(next_token_entropy(logits).numpy(), expected.numpy(), rtol=0, atol=1e-5)


@pytest.mark.parametrize("variant", ["left_padding", "batch_size_1", "batch_size_all", "shuffled"])
def test_invariant_to_padding_batching_and_order(variant):
    # float32, as the pipeline runs: transformers computes the eager softmax in float32, so float64's mask
    # minimum becomes -inf and the fully masked rows of left padding turn into NaN in float64 only.
    model = tiny_model("olmo", dtype=torch.float32)
    sequences = random_sequences(10, seed=2)
    base = run(model, sequences, batch_size=3).table()
    if variant == "left_padding":
        other = run(model, sequences, batch_size=3, padding_side="left")
    elif variant == "batch_size_1":
        other = run(model, sequences, batch_size=1)
    elif variant == "batch_size_all":
        other = run(model, sequences, batch_size=len(sequences))
    else:
        shuffled = sequences[:]
        random.Random(0).shuffle(shuffled)
        other = run(model, shuffled, batch_size=3)
    np.testing.assert_allclose(other.table().value, base.value, rtol=1e-5)


def test_padding_never_counts():
    """Garbage token ids under mask 0 change nothing."""
    model = tiny_model("llama")
    sequences = random_sequences(6, seed=3)
    clean = list(padded_batches(sequences, 6, pad_id=0))
    dirty = [{**b, "input_ids": torch.where(b["attention_mask"].bool(), b["input_ids"], 5)} for b in clean]
    np.testing.assert_allclose(
        measure(model, dirty, progress=False, average="instance").table().value,
        measure(model, clean, progress=False, average="instance").table().value,
        rtol=1e-10,
    )


def test_position_ids_count_real_tokens_only():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 0, 0]])
    assert position_ids_from_mask(mask).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 2, 2]]


def test_memory_is_independent_of_corpus_size():
    model = tiny_model("olmo")
    small, large = run(model, random_sequences(4, seed=4)), run(model, random_sequences(40, seed=5))
    assert small.sums.keys() == large.sums.keys() == STATISTICS.keys()
    for name in STATISTICS:
        assert small.sums[name].shape == large.sums[name].shape


def test_empty_corpus_is_an_error():
    with pytest.raises(ValueError, match="no non-padding tokens"):
        measure(tiny_model("olmo"), [], progress=False, average="instance").table()


def test_bfloat16_matches_float32_closely():
    """bf16 runs accumulate in float32 at least; entropies stay within bf16 forward noise."""
    model32 = tiny_model("olmo", dtype=torch.float32)
    sequences = random_sequences(8, seed=6)
    t32 = run(model32, sequences).table()
    t16 = run(model32.to(torch.bfloat16), sequences).table()
    np.testing.assert_allclose(t16.value, t32.value, rtol=2e-2)


def test_instance_and_token_averages_differ_on_ragged_corpora():
    """The two averages agree when every instance has the same length, and not otherwise."""
    model = tiny_model("olmo")
    equal = [seq[:8] for seq in random_sequences(6, seed=7, min_len=8)]
    np.testing.assert_allclose(
        run(model, equal, average="instance").table().value,
        run(model, equal, average="token").table().value,
        rtol=1e-10,
    )
    ragged = random_sequences(6, seed=7, min_len=2, max_len=30)
    a = value(run(model, ragged, average="instance").table(), "attention_entropy")
    b = value(run(model, ragged, average="token").table(), "attention_entropy")
    assert abs(a - b) / b > 0.01
    with pytest.raises(ValueError, match="entropy.average: 'mean' is not one of instance, token"):
        run(model, ragged, average="mean")


@pytest.mark.parametrize("average", ["instance", "token"])
def test_fused_attention_entropy_matches_brute_force(arch, average):
    """kentropy.measurement.attention (fused SDPA with log-sum-exp, no weights) against the eager float64 reference, on
    ragged right-padded batches; the forward itself is unchanged."""
    from kentropy.measurement.attention import ENTROPY_ATTENTION

    model = tiny_model(arch)
    sequences = random_sequences(9, seed=1)
    ref = reference(model, sequences, average)
    model.set_attn_implementation(ENTROPY_ATTENTION)
    table = run(model, sequences, batch_size=4, average=average).table()
    for metric in ("knowledge_entropy", "attention_entropy"):
        for layer, expected in enumerate(ref[metric]):
            assert value(table, metric, layer) == pytest.approx(expected, rel=REL), (metric, layer)
    assert value(table, "next_token_entropy") == pytest.approx(ref["next_token_entropy"], rel=REL)


def test_fused_attention_entropy_agrees_with_eager_in_float32(arch):
    from kentropy.measurement.attention import ENTROPY_ATTENTION

    model = tiny_model(arch, dtype=torch.float32)
    sequences = random_sequences(16, seed=4, max_len=40)
    eager = run(model, sequences, batch_size=5).table()
    model.set_attn_implementation(ENTROPY_ATTENTION)
    fused = run(model, sequences, batch_size=5).table()
    np.testing.assert_allclose(fused.value, eager.value, rtol=1e-5, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (runs on the device machine)")
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_fused_attention_entropy_on_cuda_agrees_with_eager_on_cpu(arch, padding_side):
    """The CUDA branch (the efficient kernel, its padded bias rows) against the eager float32 CPU pass."""
    from kentropy.measurement.attention import ENTROPY_ATTENTION

    model = tiny_model(arch, dtype=torch.float32)
    sequences = random_sequences(16, seed=4, max_len=40)
    eager = run(model, sequences, batch_size=5, padding_side=padding_side).table()
    model.cuda().set_attn_implementation(ENTROPY_ATTENTION)
    fused = run(model, sequences, batch_size=5, padding_side=padding_side).table()
    np.testing.assert_allclose(fused.value, eager.value, rtol=1e-5, atol=0)


@pytest.mark.parametrize("average", ["instance", "token"])
def test_per_document_sums_are_each_documents_term_and_add_up_to_the_corpus(average):
    """The lab's bootstrap input (docs/lab.md): each document's |coefficient| sum equals the float64 reference
    on that document alone (times its weight total), every element; summed, the meter's corpus sum and its
    knowledge entropy."""
    from kentropy.analysis.lab_design import knowledge_entropy_from_documents
    from kentropy.measurement.entropy_pass import document_coefficient_sums
    from kentropy.measurement.meters import ABS_COEFFICIENTS

    model = tiny_model("olmo")
    sequences = random_sequences(7, seed=4)
    sums = document_coefficient_sums(model, sequences, average)
    for doc, sequence in enumerate(sequences):
        weight = 1.0 if average == "instance" else len(sequence)
        want = np.asarray(reference(model, [sequence], average)["coef"]) * weight
        np.testing.assert_allclose(sums[doc], want, rtol=REL)
    meter = run(model, sequences, batch_size=3, average=average)
    np.testing.assert_allclose(sums.sum(0), meter.sums[ABS_COEFFICIENTS].numpy(), rtol=REL)  # padded batches
    assert knowledge_entropy_from_documents(sums) == pytest.approx(value(meter.table(), "knowledge_entropy"), rel=REL)


def test_a_meter_of_one_statistic_sums_it_bit_for_bit_and_has_no_table():
    """``statistics`` restricts the meter to the sums a caller reads (the lab's per-document pass): the same
    bits as the full meter's for that statistic, and no metric table it could not fill."""
    from kentropy.measurement.entropy_pass import EntropyMeter
    from kentropy.measurement.meters import ABS_COEFFICIENTS

    model = tiny_model("olmo")
    sequences = random_sequences(5, seed=2)
    full = run(model, sequences, batch_size=5)
    one = EntropyMeter(model, "instance", statistics=[ABS_COEFFICIENTS])
    (batch,) = padded_batches(sequences, 5, pad_id=0)
    with one.hooks():
        one.update(batch["input_ids"], batch["attention_mask"])
    assert list(one.sums) == [ABS_COEFFICIENTS]
    assert torch.equal(one.sums[ABS_COEFFICIENTS], full.sums[ABS_COEFFICIENTS])
    with pytest.raises(ValueError, match="no table of every metric"):
        one.table()
