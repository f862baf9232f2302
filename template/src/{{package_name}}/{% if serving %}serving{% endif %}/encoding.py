"""Compile the fitted feature steps of a pipeline into per-column lookups and affine maps.

The feature steps the pipeline is built with (imputers, scalers, one-hot and ordinal
encoders in a ``ColumnTransformer``, and HistGradientBoosting's own re-encoding of the
categorical columns) each treat one input column on its own.  Probing the fitted steps
once, at load time, with chosen values tells what every column becomes:

* a numeric or boolean column: an affine map ``x * scale + shift`` of each output column
  it moves, and a fixed value (or NaN) for a missing input;
* a categorical column: one row of output values per known category, one for any unseen
  value and one for a missing value, so a request costs a dict lookup per value.

Nothing is assumed about the steps' types: :func:`compile_encoder` refuses steps whose
probes do not fit that shape (an output moved by two inputs, a non-affine numeric map,
an error), and :meth:`Encoder.matches` checks the encoder against the steps themselves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .inputs import CATEGORICAL, InputSchema, ModelInput

#: A category no training data holds (probes the encoders' handling of unseen values).
UNSEEN = "\x00unseen category\x00"
# Probes of a numeric or boolean column besides the base value 0.0: 1.0 gives the scale,
# NaN the missing value; 2.5 and -3.0 check that the map is affine.
_FLOAT_PROBES = (1.0, math.nan, 2.5, -3.0)

Transform = Callable[[pd.DataFrame], Any]


@dataclass(frozen=True)
class CategoryTable:
    """What one categorical column becomes: a row of ``table`` per value."""

    name: str
    index: dict[str | None, int]  # known category (and None = missing) -> row of table
    unseen: int  # row for any other value
    table: np.ndarray  # (values, len(columns))
    columns: np.ndarray  # output columns this feature moves


@dataclass(frozen=True)
class Encoder:
    """Model input -> the estimator's input matrix, without the steps' per-call overhead."""

    width: int
    constant: np.ndarray  # (width,) output columns no input moves
    source: np.ndarray  # float input column of each affine output column
    columns: np.ndarray  # the affine output columns
    scale: np.ndarray
    shift: np.ndarray
    fill: np.ndarray  # output for a missing input (NaN: stays missing)
    tables: tuple[CategoryTable, ...]

    def encode(self, batch: ModelInput) -> np.ndarray:
        """Return the estimator's input for ``batch`` (float64, one row per input row)."""
        z = np.empty((batch.rows, self.width), dtype=np.float64)
        z[:] = self.constant
        if self.columns.size:
            x = batch.floats[:, self.source]
            z[:, self.columns] = np.where(np.isnan(x), self.fill, x * self.scale + self.shift)
        for t in self.tables:
            get, unseen = t.index.get, t.unseen
            z[:, t.columns] = t.table[[get(v, unseen) for v in batch.strings[t.name].tolist()]]
        return z

    def matches(self, transform: Transform, batch: ModelInput) -> bool:
        """Whether :meth:`encode` equals the fitted steps on ``batch``."""
        expected = _dense(transform(batch.frame()))
        got = self.encode(batch)
        if expected.shape != got.shape:
            return False
        return bool(np.allclose(got, expected, rtol=1e-9, atol=1e-9, equal_nan=True))


def _dense(values: Any) -> np.ndarray:
    if hasattr(values, "toarray"):  # a sparse matrix
        values = values.toarray()
    return np.asarray(values, dtype=np.float64)


def _differs(block: np.ndarray, base: np.ndarray) -> np.ndarray:
    same = (block == base) | (np.isnan(block) & np.isnan(base))
    return ~same


def fitted_categories(step: Any, found: dict[str, set[str]] | None = None) -> dict[str, set[str]]:
    """Text categories the fitted encoders inside ``step`` know, by input column name."""
    found = {} if found is None else found
    names = getattr(step, "feature_names_in_", None)
    categories = getattr(step, "categories_", None)
    if names is not None and categories is not None:
        for name, values in zip(names, categories, strict=False):
            found.setdefault(str(name), set()).update(v for v in values if isinstance(v, str))
    children: Iterable[Any] = ()
    if hasattr(step, "steps"):
        children = (s for _, s in step.steps)
    elif hasattr(step, "transformers_"):
        children = (t for _, t, _ in step.transformers_)
    for child in children:
        if not isinstance(child, str):
            fitted_categories(child, found)
    return found


def compile_encoder(
    transform: Transform, schema: InputSchema, known: dict[str, set[str]]
) -> Encoder | None:
    """Probe ``transform`` (the fitted feature steps) and compile it; None if it does not fit."""
    features = schema.features
    base: dict[str, Any] = {
        f.name: (f.categories[0] if f.categories else UNSEEN) if f.kind == CATEGORICAL else 0.0
        for f in features
    }
    rows: list[dict[str, Any]] = [base]
    probes: list[tuple[int, list[Any]]] = []
    for feature in features:
        if feature.kind == CATEGORICAL:
            values: list[Any] = sorted(set(feature.categories) | known.get(feature.name, set()))
            values += [UNSEEN, None]
        else:
            values = list(_FLOAT_PROBES)
        probes.append((len(rows), values))
        rows.extend({**base, feature.name: v} for v in values)
    frame = pd.DataFrame(
        {
            f.name: pd.Series(
                [r[f.name] for r in rows], dtype=object if f.kind == CATEGORICAL else np.float64
            )
            for f in features
        }
    )
    try:
        out = _dense(transform(frame))
    except Exception:  # the steps refuse a probe (an unseen category, a missing value)
        return None
    if out.ndim != 2 or out.shape[0] != len(rows):
        return None
    width = out.shape[1]
    first = out[0]
    owner = np.full(width, -1)
    affine: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    tables: list[CategoryTable] = []
    float_position = {f.name: i for i, f in enumerate(schema.floats)}
    for i, (feature, (start, values)) in enumerate(zip(features, probes, strict=True)):
        block = out[start : start + len(values)]
        moved = np.flatnonzero(_differs(block, first).any(axis=0))
        if (owner[moved] >= 0).any():
            return None  # an output column depends on two inputs: not column by column
        owner[moved] = i
        if feature.kind == CATEGORICAL:
            index: dict[str | None, int] = {v: j for j, v in enumerate(values[:-2])}
            index[None] = len(values) - 1
            tables.append(
                CategoryTable(feature.name, index, len(values) - 2, block[:, moved].copy(), moved)
            )
            continue
        shift = first[moved]
        one, nan, plus, minus = (block[j, moved] for j in range(4))
        scale = one - shift
        for x, y in ((2.5, plus), (-3.0, minus)):
            if not np.allclose(x * scale + shift, y, rtol=1e-9, atol=1e-12):
                return None  # not an affine map of the column
        if not (np.isfinite(scale).all() and np.isfinite(shift).all()):
            return None
        affine.append((float_position[feature.name], moved, scale, shift, nan))
    if affine:
        source = np.concatenate([np.full(len(m), s) for s, m, *_ in affine])
        columns, scale, shift, fill = (np.concatenate([a[k] for a in affine]) for k in (1, 2, 3, 4))
    else:
        source = columns = np.empty(0, dtype=np.intp)
        scale = shift = fill = np.empty(0)
    return Encoder(
        width=width,
        constant=first.copy(),
        source=source.astype(np.intp),
        columns=columns.astype(np.intp),
        scale=scale,
        shift=shift,
        fill=fill,
        tables=tuple(tables),
    )
