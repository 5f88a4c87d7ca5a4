"""Convert checkpoints in the older hf_olmo layout (OLMo-7B intermediate branches) to transformers' Olmo.

hf_olmo stores per block a fused ``att_proj`` (q, k and v stacked on the output dimension), ``attn_out``,
a fused ``ff_proj`` whose first half is the SwiGLU value ("up") and second half the gate, and ``ff_out``
(the FFN output, "down"). Layer norms have no parameters. Only that architecture is accepted: any other
setting is refused with the config key named.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

# hf_olmo config values the conversion relies on (key -> accepted value).
_REQUIRED = {
    "activation_type": "swiglu",
    "block_type": "sequential",
    "alibi": False,
    "rope": True,
    "layer_norm_with_affine": False,
    "attention_layer_norm": False,
    "multi_query_attention": False,
}


def olmo_config_from_hf_olmo(cfg: dict):
    """transformers ``OlmoConfig`` equivalent of an hf_olmo ``config.json`` dict."""
    from transformers import OlmoConfig

    for key, value in _REQUIRED.items():
        if cfg.get(key) is not None and cfg[key] != value:
            raise ValueError(f"hf_olmo config: {key}={cfg[key]!r} is not supported (need {value!r})")
    d_model = cfg["d_model"]
    hidden = cfg.get("mlp_hidden_size") or cfg["mlp_ratio"] * d_model
    return OlmoConfig(
        vocab_size=cfg.get("embedding_size") or cfg["vocab_size"],
        hidden_size=d_model,
        intermediate_size=hidden // 2,
        num_hidden_layers=cfg["n_layers"],
        num_attention_heads=cfg["n_heads"],
        max_position_embeddings=cfg["max_sequence_length"],
        rope_theta=cfg.get("rope_theta", 10000.0),
        attention_bias=cfg.get("include_bias", False),
        clip_qkv=cfg.get("clip_qkv"),
        pad_token_id=cfg.get("pad_token_id"),
        eos_token_id=cfg.get("eos_token_id"),
        bos_token_id=None,
        tie_word_embeddings=cfg.get("weight_tying", False),
    )


def convert_hf_olmo_state_dict(
    state: dict[str, torch.Tensor], n_layers: int, d_model: int, tie_word_embeddings: bool
) -> dict[str, torch.Tensor]:
    """Rename and split hf_olmo tensors into transformers Olmo names."""
    state = {k.removeprefix("model."): v for k, v in state.items()}
    out = {"model.embed_tokens.weight": state["transformer.wte.weight"]}
    for i in range(n_layers):
        src, dst = f"transformer.blocks.{i}.", f"model.layers.{i}."
        q, k, v = torch.split(state[src + "att_proj.weight"], d_model, dim=0)
        up, gate = torch.chunk(state[src + "ff_proj.weight"], 2, dim=0)
        out |= {
            dst + "self_attn.q_proj.weight": q,
            dst + "self_attn.k_proj.weight": k,
            dst + "self_attn.v_proj.weight": v,
            dst + "self_attn.o_proj.weight": state[src + "attn_out.weight"],
            dst + "mlp.up_proj.weight": up,
            dst + "mlp.gate_proj.weight": gate,
            dst + "mlp.down_proj.weight": state[src + "ff_out.weight"],
        }
    out["lm_head.weight"] = state["transformer.wte.weight" if tie_word_embeddings else "transformer.ff_out.weight"]
    return {k: v.contiguous() for k, v in out.items()}


def _load_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("pytorch_model*.bin"))
    if not files:
        raise FileNotFoundError(f"{folder}: no *.safetensors or pytorch_model*.bin weights")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state |= load_file(f) if f.suffix == ".safetensors" else torch.load(f, map_location="cpu", weights_only=True)
    return state


def convert_hf_olmo_checkpoint(src: str | Path, dst: str | Path) -> None:
    """Write ``src`` (an hf_olmo snapshot folder) to ``dst`` as an Olmo ``save_pretrained`` checkpoint."""
    from transformers import OlmoForCausalLM, PreTrainedTokenizerFast

    src, dst = Path(src), Path(dst)
    raw = json.loads((src / "config.json").read_text())
    config = olmo_config_from_hf_olmo(raw)
    state = convert_hf_olmo_state_dict(
        _load_weights(src), config.num_hidden_layers, config.hidden_size, config.tie_word_embeddings
    )
    with torch.device("meta"):
        model = OlmoForCausalLM(config)
    model.load_state_dict(state, assign=True, strict=True)
    model.save_pretrained(dst)
    if (src / "tokenizer.json").is_file():
        eos = raw.get("eos_token_id")
        pad = raw.get("pad_token_id")
        tok = PreTrainedTokenizerFast(tokenizer_file=str(src / "tokenizer.json"))
        vocab = {i: t for t, i in tok.get_vocab().items()}
        tok.eos_token = vocab.get(eos)
        tok.pad_token = vocab.get(pad)
        tok.save_pretrained(dst)
