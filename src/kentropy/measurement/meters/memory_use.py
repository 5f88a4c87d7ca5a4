"""How far each layer's use of its memory is from uniform (the lab's per-layer measures, docs/lab.md), on the
same input as knowledge entropy: each layer's corpus-summed |memory coefficient| vector over its m memory
vectors. The gap ln m - H_l compares layers and models of different widths, where H_l itself cannot; the
coefficient of variation is what the gap grows with (ln m - H_l ≈ CV² / 2 for a small spread); the dormant
fraction counts vectors used at most a tenth as much as the layer's mean (Sokar et al. 2023). All three are
scale-free, so the corpus sum stands for the corpus mean."""

from __future__ import annotations

import math
from statistics import fmean

from .entropies import ABS_COEFFICIENTS
from .reductions import coefficient_of_variation, dormant_fraction, shannon_entropy
from .registry import Metric, register_metric

#: A memory vector is dormant when its mean |coefficient| is at most this share of its layer's mean.
DORMANT_THRESHOLD = 0.1


def _gap(layer_sum, weight_total) -> float:
    return math.log(len(layer_sum)) - shannon_entropy(layer_sum)


def _cv(layer_sum, weight_total) -> float:
    return coefficient_of_variation(layer_sum)


def _dormant(layer_sum, weight_total) -> float:
    return dormant_fraction(layer_sum, DORMANT_THRESHOLD)


register_metric(
    Metric(
        "knowledge_entropy_gap",
        ABS_COEFFICIENTS,
        _gap,
        sum,
        "Gap to uniform memory use",
        "ln m − H (nats)",
        "each layer's ln m minus its knowledge entropy (0 when every memory vector is used equally), summed over "
        "layers",
    )
)
register_metric(
    Metric(
        "coefficient_cv",
        ABS_COEFFICIENTS,
        _cv,
        fmean,
        "Spread of memory use",
        "coefficient of variation",
        "the coefficient of variation (population SD over the mean) of each layer's corpus-mean |memory "
        "coefficient| vector, averaged over layers",
    )
)
register_metric(
    Metric(
        "dormant_fraction",
        ABS_COEFFICIENTS,
        _dormant,
        fmean,
        "Dormant memory vectors",
        "share of vectors",
        f"the share of each layer's memory vectors whose mean |coefficient| is at most {DORMANT_THRESHOLD} of the "
        "layer's mean (Sokar et al. 2023), averaged over layers",
    )
)
