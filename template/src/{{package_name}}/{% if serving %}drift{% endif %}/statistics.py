"""The drift statistics, vectorised numpy: PSI, binned KS, chi-square, missing-share test.

Numeric columns are compared on a reference *quantile grid*: sorting the current values once
and searching the few grid edges in them gives the current CDF on the grid, hence both the KS
statistic (within 0.002 of scipy's exact one for a 1,000-point grid) and the PSI bins.
Categorical columns are compared on category counts, with an extra "unseen" bucket for values
the reference never held.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Fractions are floored before the PSI logarithm (an empty bin would be infinite).
EPS = 1e-4


def sorted_present(values: np.ndarray) -> np.ndarray:
    """Sort (SIMD sort: ~15 ms per million values) and drop NaN, which sorts last."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    return ordered[: int(np.searchsorted(ordered, np.inf, side="right"))]


def fractions_below(sorted_edges: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, int]:
    """Fraction of the non-missing ``values`` strictly below each edge; and their count.

    Sorting the values and searching the few edges in them is ~10x faster than searching
    a million values in the edges.
    """
    ordered = sorted_present(values)
    n = int(ordered.size)
    below = np.searchsorted(ordered, sorted_edges, side="left").astype(np.float64)
    return below / max(n, 1), n


def quantiles(ordered: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Quantiles of sorted values, linear interpolation (numpy's default method)."""
    position = probs * (ordered.size - 1)
    low = np.floor(position).astype(np.intp)
    high = np.minimum(low + 1, ordered.size - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def bin_fractions(lt: np.ndarray, psi_idx: np.ndarray) -> np.ndarray:
    """Fractions of the PSI bins (x < e0, e0 <= x < e1, ..., x >= e_last) from a CDF."""
    cuts = np.concatenate(([0.0], lt[psi_idx], [1.0]))
    return np.diff(cuts)


def psi(current: np.ndarray, reference: np.ndarray) -> float:
    """Compute the population stability index of two distributions over the same buckets."""
    cur = np.maximum(current, EPS)
    ref = np.maximum(reference, EPS)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def ks_pvalue(stat: float, n: int, m: int) -> float:
    """Asymptotic two-sample Kolmogorov-Smirnov p-value."""
    # scipy.special's functions cost a microsecond; scipy.stats' distributions ~100x that
    from scipy.special import kolmogorov

    if n == 0 or m == 0:
        return 1.0
    en = np.sqrt(n * m / (n + m))
    return float(kolmogorov(stat * en))


def chi2_pvalue(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Chi-square test that two samples share their category distribution (2 x k table).

    The reference is a sample too (the training set), so this is the homogeneity test rather
    than goodness of fit against fixed shares; a bucket empty on both sides carries no
    information and is dropped, so the unseen bucket needs no floor.
    """
    from scipy.special import chdtrc

    table = np.vstack((reference_counts, current_counts)).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    totals = table.sum(axis=1)
    if table.shape[1] < 2 or totals.min() <= 0:
        return 1.0
    expected = np.outer(totals, table.sum(axis=0)) / totals.sum()
    stat = float(np.sum((table - expected) ** 2 / expected))
    return float(chdtrc(table.shape[1] - 1, stat))


def proportion_pvalue(
    reference_share: float, n_ref: int, current_share: float, n_cur: int
) -> float:
    """Two-sided two-proportion z-test p-value (pooled), e.g. of the missing-value shares."""
    from scipy.special import ndtr

    if n_ref == 0 or n_cur == 0:
        return 1.0
    pooled = (reference_share * n_ref + current_share * n_cur) / (n_ref + n_cur)
    spread = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n_ref + 1.0 / n_cur))
    if spread == 0.0:
        return 1.0
    return float(2.0 * ndtr(-abs(current_share - reference_share) / spread))


def category_counts(index: pd.Index, values: np.ndarray) -> tuple[np.ndarray, int]:
    """Count each category of ``index``, then the unseen values; and the missing values.

    ``values`` are in model-input form: ``str``/``None`` (categorical) or float with NaN
    (boolean).  One hash lookup per value (~30 ms per million strings).
    """
    # pandas-stubs only allow an Index; an array works and spares building one
    codes = index.get_indexer(values)  # type: ignore[arg-type]
    other = codes < 0
    n_missing = int(pd.isna(values[other]).sum()) if other.any() else 0
    counts = np.bincount(codes[~other], minlength=len(index)).astype(np.float64)
    unseen = float(int(other.sum()) - n_missing)
    return np.append(counts, unseen), n_missing


def missing_count(values: np.ndarray) -> int:
    """Count the missing values (NaN, ``None``)."""
    if values.dtype.kind == "f":
        return int(np.isnan(values).sum())
    return int(pd.isna(values).sum())
