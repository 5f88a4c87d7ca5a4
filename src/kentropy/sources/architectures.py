"""Where the memory coefficients and attention weights live in stock Hugging Face causal LMs.

Knowledge entropy needs the input of each layer's FFN output projection (the "memory coefficients") and,
for attention entropy, the attention probabilities. Both are reached with hooks on the unmodified
transformers modules; this file only names those modules per architecture.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..core.integrity import CheckpointError, verify


@dataclass(frozen=True)
class LayerModules:
    """The modules of one decoder layer that the measurements hook."""

    down: nn.Linear  # input of this Linear = memory coefficients (length d_ff per token)
    attention: nn.Module  # returns (attn_output, attn_weights, ...) under eager attention
    up: nn.Linear | None  # rows scale coefficients one-to-one (gated MLPs only; used by resuscitation)
    pre_activation: nn.Linear | None = None  # a non-gated MLP's input projection: coefficient = act(row · x + b)


def decoder_layers(model: nn.Module) -> list[LayerModules]:
    """Per-layer modules of ``model``; raises ValueError naming the class when it is not supported.

    Supported: gated MLPs with ``mlp.{gate,up,down}_proj`` and ``self_attn`` (Olmo, Olmo2, Llama,
    Mistral, Qwen2, ...), and GPT-NeoX/Pythia (``mlp.dense_4h_to_h``, ``attention``).
    """
    base = getattr(model, "base_model", model)
    layers = getattr(base, "layers", None)
    if layers is not None and hasattr(layers[0], "mlp") and hasattr(layers[0].mlp, "down_proj"):
        return [LayerModules(down=x.mlp.down_proj, attention=x.self_attn, up=x.mlp.up_proj) for x in layers]
    if layers is not None and hasattr(layers[0], "mlp") and hasattr(layers[0].mlp, "dense_4h_to_h"):
        return [
            LayerModules(down=x.mlp.dense_4h_to_h, attention=x.attention, up=None, pre_activation=x.mlp.dense_h_to_4h)
            for x in layers
        ]
    raise ValueError(
        f"{type(model).__name__}: no supported decoder layout (expected layers with mlp.down_proj/self_attn, "
        "as in Olmo, Olmo2 and Llama, or mlp.dense_4h_to_h/attention, as in GPT-NeoX)"
    )


def load_causal_lm(path: str, dtype: torch.dtype = torch.float32, attention: str = "sdpa") -> nn.Module:
    """Load a ``save_pretrained`` checkpoint in eval mode, after checking its files' hashes
    (kentropy.core.integrity). The entropy pass needs ``eager`` (the weights) or
    ``kentropy.measurement.attention.ENTROPY_ATTENTION`` (fused, per-query entropies); probes and benchmarks SDPA."""
    from transformers import AutoModelForCausalLM

    verify(path)  # the bytes its producer wrote (kentropy.core.integrity), before a model is built from them
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation=attention)
    except Exception as err:  # safetensors, json, OSError: all say only what failed, not where
        raise CheckpointError(f"{path}: cannot load the checkpoint ({type(err).__name__}: {err})") from err
    return model.eval()
