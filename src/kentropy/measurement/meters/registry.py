"""The registry of per-checkpoint metrics: what a forward pass accumulates (``Statistic``) and what each
metric reduces it to (``Metric``), kept apart so several metrics share one running sum.

A statistic names the hook it reads (``HOOKS``) and returns, per batch, the float64 summand of its running
sum (per layer, or one for the whole model); kentropy.measurement.entropy_pass's meter owns the hooks and the sums. A
metric names its statistic and reduces the corpus sums to one value per layer and one for the whole model, and
carries what figures, tables and the report show. Light on purpose: figures, correlations and the DAG build
read the registry; torch is only imported by the jobs that measure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: Where a statistic reads the forward pass: the input of each layer's FFN down projection (the memory
#: coefficients, tokens x d_ff), each layer's attention output (weights, or per-query entropies under
#: kentropy.measurement.attention), or the model's logits (tokens x vocabulary, once per batch).
HOOKS = ("ffn_input", "attention", "logits")


@dataclass(frozen=True)
class Statistic:
    """A weighted running sum over the corpus's tokens (token weights: kentropy.measurement.entropy_pass,
    ``average``)."""

    name: str
    hook: str  #: one of HOOKS; ``logits`` statistics are whole-model, the others per layer
    per_memory_vector: bool  #: one sum per memory vector (d_ff of them per layer), else one per layer
    #: ``(meter, tensor, cache) -> float64 summand``: ``meter`` gives the batch's token weights
    #: (``meter.token_weights``), ``cache`` is shared by the statistics of one hook call (a common sub-result).
    accumulate: Callable


@dataclass(frozen=True)
class Metric:
    """One per-checkpoint metric: a row per layer (when ``layer`` is given) and one whole-model row of
    ``entropy.parquet``, a panel of Figure 3, a row of Figure 8, and an x of the correlations."""

    name: str  #: the ``metric`` column's value
    statistic: str  #: the Statistic it reduces
    #: ``(corpus sum of one layer, weight total) -> value``; for a scalar statistic, the whole-model value
    layer: Callable
    #: per-layer values -> the whole-model value (None for a scalar statistic)
    whole: Callable[[list[float]], float] | None
    title: str  #: panel title
    unit: str  #: axis label
    caption: str  #: one sentence for the report: what it is and where it comes from
    correlate: bool = False  #: correlated with acquisition, forgetting and the decay exponent across steps


STATISTICS: dict[str, Statistic] = {}
METRICS: dict[str, Metric] = {}


class RegistryError(ValueError):
    """A statistic or metric registered twice, or a metric over an unknown statistic or hook."""


def register_statistic(statistic: Statistic) -> Statistic:
    if statistic.name in STATISTICS:
        raise RegistryError(f"statistic {statistic.name!r} is registered twice")
    if statistic.hook not in HOOKS:
        raise RegistryError(f"statistic {statistic.name!r}: hook {statistic.hook!r} is not one of {HOOKS}")
    STATISTICS[statistic.name] = statistic
    return statistic


def register_metric(metric: Metric) -> Metric:
    if metric.name in METRICS:
        raise RegistryError(f"metric {metric.name!r} is registered twice")
    if metric.statistic not in STATISTICS:
        raise RegistryError(f"metric {metric.name!r}: no statistic {metric.statistic!r}")
    per_layer = STATISTICS[metric.statistic].hook != "logits"
    if per_layer != (metric.whole is not None):
        raise RegistryError(f"metric {metric.name!r}: a per-layer statistic needs `whole`, a scalar one none")
    METRICS[metric.name] = metric
    return metric


def per_layer(metric: Metric) -> bool:
    """Whether the metric has a value per layer (besides its whole-model value)."""
    return metric.whole is not None


def correlated() -> list[str]:
    """Names of the metrics the correlations take as x, in registration order."""
    return [name for name, metric in METRICS.items() if metric.correlate]
