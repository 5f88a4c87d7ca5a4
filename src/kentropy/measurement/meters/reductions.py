"""What the metrics reduce a layer's corpus-summed vector to (numpy, float64): no torch, so figures and the
DAG build can read the registry."""

from __future__ import annotations

import numpy as np


def shannon_entropy(weights: np.ndarray) -> float:
    """Entropy (nats) of a non-negative vector after normalising it to sum 1; 0 log 0 = 0."""
    p = np.asarray(weights, dtype=np.float64)
    p = p / p.sum()
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum())


def hoyer_sparsity(weights: np.ndarray) -> float:
    """Hoyer (2004) sparsity of a non-negative vector of length n: (sqrt(n) - |x|_1 / |x|_2) / (sqrt(n) - 1),
    0 when every entry is equal, 1 when one entry holds everything. Scale-free."""
    x = np.asarray(weights, dtype=np.float64)
    root = np.sqrt(x.size)
    return float((root - np.abs(x).sum() / np.sqrt((x * x).sum())) / (root - 1))


def gini_coefficient(weights: np.ndarray) -> float:
    """Gini coefficient of a non-negative vector of length n: sum_ij |x_i - x_j| / (2 n sum x), computed from
    the sorted values as 2 sum_k k x_(k) / (n sum x) - (n + 1) / n. 0 for equal entries, (n - 1) / n when
    one entry holds everything. Scale-free."""
    x = np.sort(np.asarray(weights, dtype=np.float64))
    n = x.size
    return float(2 * (np.arange(1, n + 1) * x).sum() / (n * x.sum()) - (n + 1) / n)


def coefficient_of_variation(weights: np.ndarray) -> float:
    """Population standard deviation over the mean of a non-negative vector: 0 when every entry is equal;
    knowledge entropy's gap to ln n is about half its square when the spread is small."""
    x = np.asarray(weights, dtype=np.float64)
    return float(x.std() / x.mean())


def dormant_fraction(weights: np.ndarray, threshold: float) -> float:
    """The share of entries at most ``threshold`` times the mean (Sokar et al. 2023's dormant neurons, whose
    score x_i / mean(x) is n times the entry's share of the total)."""
    x = np.asarray(weights, dtype=np.float64)
    return float(np.mean(x <= threshold * x.mean()))
