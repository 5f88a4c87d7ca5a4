"""The paper's entropies (docs/design.md, "Definitions"): knowledge entropy (Eq. 2) and its ReLU variant
from the memory coefficients, attention entropy (Eq. 3), next-token entropy.

Knowledge entropy is, per layer, the Shannon entropy of the corpus-summed |coefficient| vector normalised
to sum 1, summed over layers; the ``relu`` variant uses max(coef, 0). Attention entropy is each head's
entropy over keys, averaged over heads and tokens, per layer, summed over layers. Next-token entropy is the
predicted distribution's entropy averaged over tokens.
"""

from __future__ import annotations

from .reductions import shannon_entropy
from .registry import Metric, Statistic, register_metric, register_statistic

#: The paper's quantity: the metric Table 2's neighbours, the resuscitation table and Figure 8 lead with.
KNOWLEDGE_ENTROPY = "knowledge_entropy"
#: The corpus-summed |coefficient| per memory vector: knowledge entropy's input, and resuscitation's.
ABS_COEFFICIENTS = "abs_coefficients"


def _coefficients(meter, coef, cache):
    """The batch's coefficients as (tokens, d_ff) in the sum dtype, and their weighted |.| column sums, once
    per hook call (both coefficient statistics need them). A column is reduced by one thread in a fixed order;
    a matrix-vector product's order would follow the BLAS threads."""
    if "abs" not in cache:
        cache["coef"] = coef.reshape(-1, coef.shape[-1]).to(meter.token_weights.dtype)
        cache["abs"] = cache["coef"].abs().mul_(meter.token_weights[:, None]).sum(0).double()
    return cache["coef"], cache["abs"]


def _abs_sum(meter, coef, cache):
    return _coefficients(meter, coef, cache)[1]


def _relu_sum(meter, coef, cache):
    """relu(x) = (x + |x|) / 2, so the signed sum gives the ReLU variant without a clamped copy."""
    coef, abs_sum = _coefficients(meter, coef, cache)
    return (abs_sum + coef.mul(meter.token_weights[:, None]).sum(0).double()) / 2


def _attention_sum(meter, output, cache):
    """Weighted sum over tokens of the head-mean attention entropy of each query."""
    import torch

    from .kernels import fixed_order_sum

    weights = output[1]
    if weights is None:
        from ..attention import ENTROPY_ATTENTION

        raise RuntimeError(
            "attention weights are not returned; load the model with attn_implementation='eager' or "
            f"{ENTROPY_ATTENTION!r} (kentropy.measurement.attention)"
        )
    if meter.fused:  # (batch, heads, seq) entropies
        per_query = weights.to(meter.sum_dtype).mean(1)
    else:  # (batch, heads, seq, seq) weights
        per_query = torch.special.entr(weights.float()).sum(-1).mean(1)  # (batch, seq): mean over heads
    weighted = per_query.reshape(-1).to(meter.token_weights.dtype) * meter.token_weights
    return fixed_order_sum(weighted).double()


def _next_token_sum(meter, logits, cache):
    from .kernels import fixed_order_sum, next_token_entropy

    entropies = next_token_entropy(logits.reshape(-1, logits.shape[-1]), meter.sum_dtype)
    return fixed_order_sum(entropies.double() * meter.token_weights64)


def _entropy_of_sum(layer_sum, weight_total) -> float:
    return shannon_entropy(layer_sum)  # normalised: the weight total cancels


def _mean(layer_sum, weight_total) -> float:
    return float(layer_sum / weight_total)


register_statistic(Statistic(ABS_COEFFICIENTS, "ffn_input", True, _abs_sum))
register_statistic(Statistic("relu_coefficients", "ffn_input", True, _relu_sum))
register_statistic(Statistic("attention_entropy", "attention", False, _attention_sum))
register_statistic(Statistic("next_token_entropy", "logits", False, _next_token_sum))

register_metric(
    Metric(
        KNOWLEDGE_ENTROPY,
        ABS_COEFFICIENTS,
        _entropy_of_sum,
        sum,
        "Knowledge entropy",
        "entropy (nats)",
        "knowledge entropy (Eq. 2): the entropy of each layer's corpus-mean |memory coefficient| vector, "
        "summed over layers",
        correlate=True,
    )
)
register_metric(
    Metric(
        "knowledge_entropy_relu",
        "relu_coefficients",
        _entropy_of_sum,
        sum,
        "Knowledge entropy (ReLU)",
        "entropy (nats)",
        "knowledge entropy with max(coefficient, 0) in place of |coefficient|",
        correlate=True,
    )
)
register_metric(
    Metric(
        "attention_entropy",
        "attention_entropy",
        _mean,
        sum,
        "Attention entropy",
        "entropy (nats)",
        "attention entropy (Eq. 3): each head's entropy over keys, averaged over heads and tokens, summed over layers",
    )
)
register_metric(
    Metric(
        "next_token_entropy",
        "next_token_entropy",
        _mean,
        None,
        "Next-token entropy",
        "entropy (nats)",
        "next-token entropy: the entropy of the predicted distribution, averaged over tokens",
    )
)
