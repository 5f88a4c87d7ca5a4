"""Sparsity of memory use (the measures pico-lm/pico-analyze applies to weights and activations), on the
same input as knowledge entropy: each layer's corpus-summed |memory coefficient| vector. Both are
scale-free and grow as a layer's use concentrates on fewer memory vectors (knowledge entropy falls); the
whole-model value is their mean over layers."""

from __future__ import annotations

from statistics import fmean

from .entropies import ABS_COEFFICIENTS
from .reductions import gini_coefficient, hoyer_sparsity
from .registry import Metric, register_metric


def _hoyer(layer_sum, weight_total) -> float:
    return hoyer_sparsity(layer_sum)


def _gini(layer_sum, weight_total) -> float:
    return gini_coefficient(layer_sum)


register_metric(
    Metric(
        "coefficient_hoyer",
        ABS_COEFFICIENTS,
        _hoyer,
        fmean,
        "Hoyer sparsity of memory use",
        "Hoyer sparsity",
        "the Hoyer sparsity of each layer's corpus-mean |memory coefficient| vector, averaged over layers",
        correlate=True,
    )
)
register_metric(
    Metric(
        "coefficient_gini",
        ABS_COEFFICIENTS,
        _gini,
        fmean,
        "Gini coefficient of memory use",
        "Gini coefficient",
        "the Gini coefficient of each layer's corpus-mean |memory coefficient| vector, averaged over layers",
        correlate=True,
    )
)
