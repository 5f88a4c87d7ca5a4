"""Attention entropy from fused attention, without materialising the attention weights.

Per head and query, with scores s_j = scale * q.k_j (plus the mask's 0 / -inf) and p = softmax(s):

    H = -sum_j p_j log p_j = logsumexp(s) - sum_j p_j s_j,    sum_j p_j s_j = scale * q . (sum_j p_j k_j)

and sum_j p_j k_j is the output of the same attention with the values replaced by the keys. Fused kernels
compute logsumexp(s) anyway (they need it for the backward pass), so attention entropy costs one more
fused attention call per layer instead of a (batch, heads, T, T) weight tensor.

``ENTROPY_ATTENTION`` is registered in transformers' attention-function registry (and its mask registry, as
SDPA), so any stock model loaded with ``attn_implementation=ENTROPY_ATTENTION`` runs it in place of SDPA:
its attention output is SDPA's, and the second element it returns, where eager attention returns the
weights, is the per-query entropy (batch, heads, T), which ``kentropy.measurement.entropy_pass`` reads with a hook.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

ENTROPY_ATTENTION = "kentropy_entropy_sdpa"


def attention_with_lse(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(softmax(scale q k^T + mask) v, logsumexp of the masked scores), (B, H, T, D) and (B, H, T), from
    the device's fused kernel; ``mask`` is an additive float mask, or None for causal attention."""
    causal = mask is None
    if query.device.type == "cpu":
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            query, key, value, 0.0, causal, attn_mask=mask, scale=scale
        )[:2]
    else:
        out, lse = torch.ops.aten._scaled_dot_product_efficient_attention(
            query, key, value, mask, True, 0.0, causal, scale=scale
        )[:2]
    return out, lse[..., : query.shape[2]].to(query.dtype)  # the CUDA kernel pads its lse to a block size


def additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``mask`` (boolean, True = attend, as sdpa_mask builds it; or additive) as an additive float mask whose
    rows start at multiples of 16 elements in memory, as CUDA's efficient kernel requires of a bias (torch's
    own SDPA pads its masks the same way before that kernel)."""
    n_keys = mask.shape[-1]
    padded = torch.zeros(*mask.shape[:-1], -(-n_keys // 16) * 16, dtype=dtype, device=mask.device)[..., :n_keys]
    if mask.dtype == torch.bool:
        return padded.masked_fill_(~mask, float("-inf"))
    return padded.copy_(mask)


def entropy_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """An attention function for transformers' registry: the attention output of transformers' own SDPA
    call (so the forward is the plain SDPA forward), and the per-query attention entropy (B, H, T) in place
    of the weights, from one more fused call with the keys as values. That call runs in float32 for
    half-precision inputs: the entropy is a difference of two numbers of the size of the scores, and bf16
    kernels moved a layer's mean attention entropy by up to 3e-3 relative (fp32: 3e-6)."""
    out, _ = sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=0.0, **kwargs)
    work = torch.promote_types(query.dtype, torch.float32)
    q, k = query.to(work), repeat_kv(key, query.shape[1] // key.shape[1]).to(work)
    scale = scaling if scaling is not None else q.shape[-1] ** -0.5
    mask = None
    if attention_mask is not None:
        # A broadcast view over heads: copying it per head would allocate (batch, heads, T, T), the size of
        # the weights this module exists not to materialise.
        mask = additive_mask(attention_mask[:, :, :, : k.shape[-2]], work).expand(q.shape[0], q.shape[1], -1, -1)
    expected_key, lse = attention_with_lse(q, k, k, mask, scale)
    return out, lse - scale * (q * expected_key).sum(-1)


AttentionInterface.register(ENTROPY_ATTENTION, entropy_attention)
AttentionMaskInterface.register(ENTROPY_ATTENTION, sdpa_mask)
