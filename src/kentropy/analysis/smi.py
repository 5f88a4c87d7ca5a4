"""Size-dependent Mutual Information (SMI; Jiang et al., arXiv 2502.04066) as its released code computes it,
and the linear fit of closed-book QA accuracy on it (docs/design.md, "SMI", cites every line):

- mi = p_so log2(p_so / (p_s p_o)) with p = n / N, 0 when n_so = 0 (``analysis/tools/1_merge_outputs.py``
  line 56); facts with mi <= 0 are left out (``analysis/tools/2_analysis.py`` line 38);
- x = trunc(5 log2 mi) / 5, min-max scaled to [0, 1] over the facts (lines 25-31);
- SMI = x^(1 + 1/P) (line 56), where the released code has P = the size in billions of parameters
  (``code/analysis.py`` line 20 at 73f06f2) or P = log2 of the parameter count (``normalize_p``, lines
  124-126): ``SIZES``;
- facts with equal SMI form a bin; accuracy is averaged per bin and regressed on SMI over the bins,
  unweighted (line 68); MSE is the mean over bins of the mean squared deviation of the bin's facts from the
  line (lines 70-84); the "upper bound" is the line at SMI = 1, slope + intercept (line 97).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Definitions of P, the model size in SMI's exponent 1 + 1/P: parameter count -> P.
SIZES = {"log2": lambda n: float(np.log2(n)), "billions": lambda n: n / 1e9}
#: Columns of one fit (``fit``) and of one bin (``bins``).
FIT_COLUMNS = ["slope", "intercept", "r2", "mse", "upper_bound", "x_intercept", "bins", "facts", "accuracy"]
FIT_MISSING = ("slope", "intercept", "r2", "mse", "upper_bound", "x_intercept")
BIN_COLUMNS = ["smi", "accuracy", "facts"]


def mutual_information(counts: pd.DataFrame) -> np.ndarray:
    """mi of every fact from its document counts (``kentropy.sources.facts_file.COUNTS``), float64."""
    n = counts.N.to_numpy(dtype=np.float64)
    p_s, p_o, p_so = (counts[c].to_numpy(dtype=np.float64) / n for c in ("n_s", "n_o", "n_so"))
    with np.errstate(divide="ignore", invalid="ignore"):
        mi = p_so * np.log2(p_so / (p_s * p_o))
    return np.where(counts.n_so.to_numpy() > 0, mi, 0.0)


def scaled_bins(mi: np.ndarray) -> np.ndarray:
    """x of each fact with mi > 0: log2 mi truncated to a multiple of 1/5 (toward zero, as Python's int()),
    min-max scaled to [0, 1] (all 0 when every fact falls in one bin; the released code divides by 0)."""
    binned = np.trunc(np.log2(mi) * 5) / 5
    span = binned.max() - binned.min()
    return (binned - binned.min()) / span if span > 0 else np.zeros_like(binned)


def smi(mi: np.ndarray, parameters: int, size: str) -> np.ndarray:
    """SMI of facts with mi > 0, for a model of ``parameters`` parameters and a ``SIZES`` definition of P."""
    return scaled_bins(mi) ** (1 + 1 / SIZES[size](parameters))


def bins(metric: np.ndarray, accuracy: np.ndarray) -> pd.DataFrame:
    """Facts grouped by equal metric value: ``BIN_COLUMNS``, in metric order."""
    frame = pd.DataFrame({"smi": metric, "accuracy": np.asarray(accuracy, dtype=np.float64)})
    return frame.groupby("smi", sort=True).accuracy.agg(["mean", "size"]).reset_index().set_axis(BIN_COLUMNS, axis=1)


def fit(metric: np.ndarray, accuracy: np.ndarray) -> dict:
    """The released code's fit of accuracy on a metric over its bins: ``FIT_COLUMNS`` (NaN with fewer than two
    bins, where no line is defined)."""
    from scipy import stats

    metric, accuracy = np.asarray(metric, dtype=np.float64), np.asarray(accuracy, dtype=np.float64)
    per_bin = bins(metric, accuracy)
    out = dict.fromkeys(FIT_MISSING, np.nan)
    out.update(bins=len(per_bin), facts=len(metric), accuracy=float(accuracy.mean()) if len(metric) else np.nan)
    if len(per_bin) < 2:
        return out
    line = stats.linregress(per_bin.smi, per_bin.accuracy)
    residual = pd.Series((accuracy - (line.slope * metric + line.intercept)) ** 2)
    out.update(
        slope=float(line.slope),
        intercept=float(line.intercept),
        r2=float(line.rvalue**2),
        mse=float(residual.groupby(metric).mean().mean()),
        upper_bound=float(line.slope + line.intercept),
        x_intercept=float(-line.intercept / line.slope) if line.slope != 0 else np.nan,
    )
    return out
