"""hf_olmo (OLMo-7B intermediate branches) -> transformers Olmo: logits equal to a reference forward."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import save_file

from kentropy.sources.olmo_checkpoints import convert_hf_olmo_checkpoint, olmo_config_from_hf_olmo

CFG = {
    "d_model": 32,
    "n_heads": 4,
    "n_layers": 2,
    "mlp_hidden_size": 96,
    "max_sequence_length": 64,
    "vocab_size": 50,
    "embedding_size": 64,
    "weight_tying": False,
    "activation_type": "swiglu",
    "block_type": "sequential",
    "rope": True,
    "alibi": False,
    "layer_norm_with_affine": False,
    "include_bias": False,
    "pad_token_id": 1,
    "eos_token_id": 0,
    "rope_theta": 10000.0,
}


def random_hf_olmo_state(cfg: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    d, h, v = cfg["d_model"], cfg["mlp_hidden_size"], cfg["embedding_size"]
    state = {
        "model.transformer.wte.weight": torch.randn(v, d, generator=g),
        "model.transformer.ff_out.weight": torch.randn(v, d, generator=g) / math.sqrt(d),
    }
    for i in range(cfg["n_layers"]):
        p = f"model.transformer.blocks.{i}."
        state |= {
            p + "att_proj.weight": torch.randn(3 * d, d, generator=g) / math.sqrt(d),
            p + "attn_out.weight": torch.randn(d, d, generator=g) / math.sqrt(d),
            p + "ff_proj.weight": torch.randn(h, d, generator=g) / math.sqrt(d),
            p + "ff_out.weight": torch.randn(d, h // 2, generator=g) / math.sqrt(h),
        }
    return state


def reference_forward(state: dict, cfg: dict, ids: torch.Tensor) -> torch.Tensor:
    """OLMo's block written out: non-parametric LayerNorm, fused qkv, rotary (rotate-half), causal
    softmax attention, SwiGLU with ff_proj = [value; gate]."""
    d, n_heads = cfg["d_model"], cfg["n_heads"]
    hd, T = d // n_heads, ids.shape[1]
    norm = lambda x: torch.nn.functional.layer_norm(x, (d,), eps=1e-5)  # noqa: E731
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    ang = torch.outer(torch.arange(T, dtype=torch.float64), inv)
    cos, sin = torch.cat([ang, ang], -1).cos(), torch.cat([ang, ang], -1).sin()

    def rope(x):
        x1, x2 = x[..., : hd // 2], x[..., hd // 2 :]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    W = {k.removeprefix("model.transformer."): t.double() for k, t in state.items()}
    x = W["wte.weight"][ids]
    for i in range(cfg["n_layers"]):
        b = f"blocks.{i}."
        q, k, v = (norm(x) @ W[b + "att_proj.weight"].T).split(d, -1)
        q, k, v = (t.view(1, T, n_heads, hd).transpose(1, 2) for t in (q, k, v))
        scores = rope(q) @ rope(k).transpose(-1, -2) / math.sqrt(hd)
        scores = scores.masked_fill(torch.ones(T, T).triu(1).bool(), float("-inf"))
        att = (scores.softmax(-1) @ v).transpose(1, 2).reshape(1, T, d)
        x = x + att @ W[b + "attn_out.weight"].T
        value, gate = (norm(x) @ W[b + "ff_proj.weight"].T).chunk(2, -1)
        x = x + (torch.nn.functional.silu(gate) * value) @ W[b + "ff_out.weight"].T
    return norm(x) @ W["ff_out.weight"].T


def test_converted_logits_equal_reference(tmp_path):
    state = random_hf_olmo_state(CFG)
    src = tmp_path / "hf_olmo"
    src.mkdir()
    (src / "config.json").write_text(json.dumps(CFG))
    save_file(state, src / "model.safetensors")
    convert_hf_olmo_checkpoint(src, tmp_path / "olmo")

    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tmp_path / "olmo", dtype=torch.float64, attn_implementation="eager")
    ids = torch.randint(0, CFG["vocab_size"], (1, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model(ids).logits
    # transformers' Olmo runs its LayerNorm and rotary in float32 even in a float64 model: float32 tolerance.
    torch.testing.assert_close(ours, reference_forward(state, CFG, ids), rtol=1e-4, atol=1e-5)
    # The tolerance separates right from wrong: swapping the SwiGLU halves is far outside it.
    swapped = dict(state)
    for i in range(CFG["n_layers"]):
        key = f"model.transformer.blocks.{i}.ff_proj.weight"
        swapped[key] = torch.cat(state[key].chunk(2, 0)[::-1])
    assert (ours - reference_forward(swapped, CFG, ids)).abs().max() > 1e-2


def test_unsupported_hf_olmo_setting_is_named():
    with pytest.raises(ValueError, match="alibi=True is not supported"):
        olmo_config_from_hf_olmo({**CFG, "alibi": True})
