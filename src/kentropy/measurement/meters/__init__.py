"""Per-checkpoint metrics as plug-ins (``registry``): the paper's entropies (``entropies``), the sparsity of
memory use (``sparsity``) and its distance from uniform (``memory_use``). Adding one: a module that registers
its Metric (and its Statistic when it reads the forward pass differently), imported here, and its brute-force
test; docs/design.md, "How to extend"."""

from . import memory_use, sparsity  # noqa: F401  (register their metrics; the entropies on import of .entropies)
from .entropies import ABS_COEFFICIENTS, KNOWLEDGE_ENTROPY
from .registry import HOOKS, METRICS, STATISTICS, Metric, Statistic, correlated, per_layer

__all__ = [
    "ABS_COEFFICIENTS",
    "HOOKS",
    "KNOWLEDGE_ENTROPY",
    "METRICS",
    "STATISTICS",
    "Metric",
    "Statistic",
    "correlated",
    "per_layer",
]
