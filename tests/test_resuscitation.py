"""Algorithm 1: resuscitated coefficients are exactly the scaled originals, on the same corpus."""

import json

import numpy as np
import pytest
import torch

from kentropy.measurement.entropy_pass import measure
from kentropy.sources.corpora import padded_batches
from kentropy.training.resuscitation import (
    apply_factors,
    resuscitate_checkpoint,
    resuscitation_factors,
)

from .conftest import random_sequences, tiny_model

GATED = ["olmo", "olmo2", "llama"]


def coefficients(model, sequences):
    return measure(model, padded_batches(sequences, 5, pad_id=0), progress=False, average="instance")


def test_factors_follow_algorithm_1_by_hand():
    coef = np.array([[1.0, 2.0, 3.0, 4.0, 10.0], [0.0, 5.0, 5.0, 5.0, 5.0]])
    f = resuscitation_factors(coef, p=0.4, q=2.0)
    # layer 0: quantile_0.4 of [1, 2, 3, 4, 10] = 2.6 -> neurons 0, 1; mean 4
    np.testing.assert_allclose(f[0], [4 / 1 * 2, 4 / 2 * 2, 1, 1, 1])
    # layer 1: quantile 5 -> everything at or below it, except the dead neuron (c = 0 keeps factor 1)
    np.testing.assert_allclose(f[1], [1, 4 / 5 * 2, 4 / 5 * 2, 4 / 5 * 2, 4 / 5 * 2])
    with pytest.raises(ValueError, match="p must be a fraction"):
        resuscitation_factors(coef, p=50, q=1)


@pytest.mark.parametrize("arch", GATED)
def test_each_layer_scales_its_selected_coefficients_exactly(arch):
    sequences = random_sequences(13, seed=3)
    model = tiny_model(arch)
    before = coefficients(model, sequences).mean_abs_coefficients()
    factors = resuscitation_factors(before, p=0.5, q=2.0)
    for layer in range(len(before)):
        # One layer at a time: the layers after it see a changed input, so only its own coefficients
        # (and those before it) have a defined "before".
        only = np.ones_like(factors)
        only[layer] = factors[layer]
        changed = tiny_model(arch)
        apply_factors(changed, only)
        after = coefficients(changed, sequences).mean_abs_coefficients()
        selected = factors[layer] != 1
        assert selected.sum() >= len(factors[layer]) // 2 - 1
        np.testing.assert_allclose(
            after[layer, selected], before[layer, selected] * factors[layer, selected], rtol=1e-5
        )
        np.testing.assert_array_equal(after[layer, ~selected], before[layer, ~selected])
        np.testing.assert_array_equal(after[:layer], before[:layer])


@pytest.mark.parametrize("arch", GATED)
def test_resuscitation_raises_knowledge_entropy(arch):
    sequences = random_sequences(13, seed=4)
    model = tiny_model(arch)
    meter = coefficients(model, sequences)
    entropy = meter.table().query("metric == 'knowledge_entropy' and layer.isna()").value.iloc[0]
    apply_factors(model, resuscitation_factors(meter.mean_abs_coefficients(), p=0.5, q=1.0))
    after = coefficients(model, sequences).table().query("metric == 'knowledge_entropy' and layer.isna()").value.iloc[0]
    assert after > entropy


def test_a_non_gated_mlp_scales_its_selected_pre_activations_exactly_and_nothing_else():
    """GPT-NeoX (GELU, biases): row i of the input projection and its bias scale by factor i, so neuron i's
    pre-activation does (within rounding); the other neurons' coefficients stay bit for bit, and the selected
    neurons are used more on the corpus (mean |coefficient| up), so knowledge entropy rises."""
    sequences = random_sequences(13, seed=3)
    model = tiny_model("gpt_neox")
    meter = coefficients(model, sequences)
    before = meter.mean_abs_coefficients()
    factors = resuscitation_factors(before, p=0.5, q=2.0)
    only = np.ones_like(factors)
    only[0] = factors[0]
    changed = tiny_model("gpt_neox")
    assert apply_factors(changed, only) is False
    x = torch.randn(7, 32, dtype=torch.float64)
    original, scaled = model.gpt_neox.layers[0].mlp.dense_h_to_4h, changed.gpt_neox.layers[0].mlp.dense_h_to_4h
    torch.testing.assert_close(scaled(x), original(x) * torch.as_tensor(factors[0]), rtol=1e-12, atol=1e-12)
    after = coefficients(changed, sequences).mean_abs_coefficients()
    selected = factors[0] != 1
    np.testing.assert_array_equal(after[0, ~selected], before[0, ~selected])
    assert (after[0, selected] > before[0, selected]).mean() > 0.9
    entropy = meter.table().query("metric == 'knowledge_entropy' and layer.isna()").value.iloc[0]
    apply_factors(model, resuscitation_factors(before, p=0.5, q=1.0))
    resuscitated = coefficients(model, sequences).table()
    assert resuscitated.query("metric == 'knowledge_entropy' and layer.isna()").value.iloc[0] > entropy


def test_checkpoint_is_written_with_its_record(tmp_path):
    from tokenizers import Tokenizer, models
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    model = tiny_model("olmo", dtype=torch.float32)
    model.save_pretrained(tmp_path / "ckpt")
    PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"a": 0, "b": 1}, unk_token="a")), eos_token="b", pad_token="a"
    ).save_pretrained(tmp_path / "ckpt")
    coef = np.abs(np.random.default_rng(0).normal(size=(3, 48))) + 0.1
    np.save(tmp_path / "coef.npy", coef)
    record = resuscitate_checkpoint(str(tmp_path / "ckpt"), str(tmp_path / "coef.npy"), 30, 2.0, str(tmp_path / "out"))
    saved = json.loads((tmp_path / "out" / "resuscitation.json").read_text())
    assert saved == record and saved["p"] == 0.3 and saved["q"] == 2.0 and saved["exact"] is True
    assert saved["selected_per_layer"] == [int((c <= np.quantile(c, 0.3)).sum()) for c in coef]
    out = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    factors = resuscitation_factors(coef, 0.3, 2.0)
    for layer, orig, new in zip(range(3), model.model.layers, out.model.layers):
        want = orig.mlp.up_proj.weight * torch.as_tensor(factors[layer], dtype=torch.float32)[:, None]
        torch.testing.assert_close(new.mlp.up_proj.weight, want)
        torch.testing.assert_close(new.mlp.gate_proj.weight, orig.mlp.gate_proj.weight)
    assert out.dtype == torch.float32
