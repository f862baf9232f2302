"""Reference profiles: the reference side of each column, computed once, compared many times.

A profile is built either from the serving bundle's ``reference.json`` (what the API and
``make drift`` use) or from a full reference column (``make drift`` with ``--reference``).
Values are in model-input form (the data contract's ``coerce``): numeric and boolean columns
are float64 with NaN for missing, categorical columns hold ``str`` with ``None`` for missing.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import statistics as st

BOOLEAN_LABELS = ("false", "true")
_BOOLEAN_VALUES = {"false": 0.0, "true": 1.0}


@dataclass(frozen=True)
class NumericProfile:
    """Reference side of one numeric column.

    ``edges`` is a sorted grid, ``ref_lt[i]`` the reference fraction strictly below
    ``edges[i]``; ``psi_idx`` points at the grid edges that bound the PSI bins and
    ``psi_ref`` holds the reference fraction of each PSI bin.  All of them are over the
    non-missing values; ``missing`` is the reference share of missing values, over ``rows``.
    """

    edges: np.ndarray
    ref_lt: np.ndarray
    psi_idx: np.ndarray
    psi_ref: np.ndarray
    n_ref: int
    missing: float = 0.0
    rows: int = 0
    kind: str = "numeric"

    @property
    def empty(self) -> bool:
        """Whether the reference held no value at all (only the missing share is compared)."""
        return self.edges.size == 0

    @property
    def bin_labels(self) -> list[str]:
        """Readable bounds of the PSI bins (chart labels)."""
        cuts = self.edges[self.psi_idx]
        if cuts.size == 0:
            return ["all"]
        inner = [f"{_short(a)}-{_short(b)}" for a, b in itertools.pairwise(cuts)]
        return [f"< {_short(cuts[0])}", *inner, f">= {_short(cuts[-1])}"]


@dataclass(frozen=True)
class CategoricalProfile:
    """Reference side of a categorical or boolean column, or of the predicted class.

    ``categories`` are the values as the model input holds them (``str``; 0.0 / 1.0 for a
    boolean), ``labels`` their display names and ``ref_fractions`` their shares among the
    non-missing reference values; any other current value counts as *unseen*.
    """

    categories: tuple[Any, ...]
    labels: tuple[str, ...]
    ref_fractions: np.ndarray
    n_ref: int
    missing: float = 0.0
    rows: int = 0
    kind: str = "categorical"
    index: pd.Index = field(init=False, repr=False, compare=False)
    known: frozenset[Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Build the hash index the checks look values up in."""
        object.__setattr__(self, "index", pd.Index(list(self.categories)))
        object.__setattr__(self, "known", frozenset(self.categories))

    def unseen_count(self, values: np.ndarray) -> int:
        """How many non-missing ``values`` the reference never held."""
        if len(values) <= 10_000:  # a set lookup per value beats pandas below ~10k values
            known = self.known
            return sum(1 for v in values.tolist() if v is not None and v == v and v not in known)
        counts, _ = st.category_counts(self.index, values)
        return int(counts[-1])


Profile = NumericProfile | CategoricalProfile


def _short(value: float) -> str:
    """Three significant digits with a k/M suffix: 0.0123, 41.5, 11.6k, 2.5M."""
    size = abs(value)
    if size >= 1e9:
        return f"{value:.2e}"
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if size >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def numeric_profile(values: np.ndarray, *, grid: int = 1000, bins: int = 10) -> NumericProfile:
    """Profile a full reference column: a ``grid``-quantile CDF and ``bins`` PSI bins."""
    values = np.asarray(values, dtype=np.float64)
    ordered = st.sorted_present(values)
    rows = int(values.size)
    missing = (rows - int(ordered.size)) / max(rows, 1)
    if ordered.size == 0:
        return _empty_numeric(missing, rows)
    edges = np.unique(st.quantiles(ordered, np.linspace(0.0, 1.0, grid + 1)))
    n = int(ordered.size)
    ref_lt = np.searchsorted(ordered, edges, side="left") / n
    psi_edges = np.unique(st.quantiles(ordered, np.linspace(0.0, 1.0, bins + 1))[1:-1])
    psi_idx = np.searchsorted(edges, psi_edges)
    return NumericProfile(
        edges, ref_lt, psi_idx, st.bin_fractions(ref_lt, psi_idx), n, missing, rows
    )


def _empty_numeric(missing: float, rows: int) -> NumericProfile:
    none = np.empty(0, dtype=np.float64)
    return NumericProfile(none, none, np.empty(0, dtype=np.intp), np.ones(1), 0, missing, rows)


def categorical_profile(
    values: np.ndarray, *, kind: str = "categorical", categories: Sequence[Any] | None = None
) -> CategoricalProfile:
    """Profile a full reference column: the shares of ``categories`` plus any value it holds.

    A boolean column always has the categories 0.0 and 1.0 (labelled false and true).
    """
    values = np.asarray(values)
    rows = int(values.size)
    counts = pd.Series(values).value_counts(dropna=True)
    present = int(counts.sum())
    if kind == "boolean":
        cats: list[Any] = [0.0, 1.0]
        labels = list(BOOLEAN_LABELS)
    else:
        cats = list(categories or ())
        given = set(cats)
        cats += [c for c in counts.index.tolist() if c not in given]
        labels = [str(c) for c in cats]
    fractions = np.array([counts.get(c, 0) for c in cats], dtype=np.float64) / max(present, 1)
    missing = (rows - present) / max(rows, 1)
    return CategoricalProfile(tuple(cats), tuple(labels), fractions, present, missing, rows, kind)


def profile_from_reference(stats: Mapping[str, Any], rows: int) -> Profile:
    """Profile one entry of the bundle's ``reference.json`` (a feature or the prediction).

    ``rows`` is the size of the training set the entry describes: its category shares,
    histogram and missing share are over all of it; the KS grid is its stored sample.
    """
    kind = str(stats.get("kind", "numeric"))
    missing = float(stats.get("missing", 0.0))
    present = round(rows * (1.0 - missing))
    if kind in ("categorical", "boolean"):
        names = [str(c) for c in stats["categories"]]
        cats: list[Any] = (
            [_BOOLEAN_VALUES[c.lower()] for c in names] if kind == "boolean" else names
        )
        fractions = np.asarray(stats["fractions"], dtype=np.float64)
        return CategoricalProfile(
            tuple(cats), tuple(names), fractions, present, missing, rows, kind
        )
    sample = st.sorted_present(np.asarray(stats["sample"], dtype=np.float64))
    if sample.size == 0:
        return _empty_numeric(missing, rows)
    hist = stats["histogram"]
    interior = np.asarray(hist["edges"], dtype=np.float64)[1:-1]
    edges = np.unique(np.concatenate((sample, interior)))
    ref_lt, n = st.fractions_below(edges, sample)
    psi_idx = np.searchsorted(edges, interior)
    fractions = np.asarray(hist["fractions"], dtype=np.float64)
    if fractions.size != psi_idx.size + 1:  # degenerate histogram: fall back to the sample
        fractions = st.bin_fractions(ref_lt, psi_idx)
    return NumericProfile(edges, ref_lt, psi_idx, fractions, n, missing, rows)
