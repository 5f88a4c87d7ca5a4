"""Per-checkpoint metrics as plug-ins (``registry``): the paper's entropies (``entropies``) and the sparsity
of memory use (``sparsity``). Adding one: a module that registers its Metric (and its Statistic when it reads
the forward pass differently), imported here, and its brute-force test; docs/design.md, "How to extend"."""

from . import entropies, sparsity  # noqa: F401  (each registers its metrics)
from .registry import HOOKS, METRICS, STATISTICS, Metric, Statistic, correlated, per_layer

__all__ = ["HOOKS", "METRICS", "STATISTICS", "Metric", "Statistic", "correlated", "per_layer"]
