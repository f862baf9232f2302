"""The bundle's ``schema.json`` as typed features, and request values turned into model input.

The model input is what the pipeline was trained on (``contract.coerce``): numeric and
boolean features as float64 with NaN for a missing value (a boolean is 1.0 or 0.0), and
categorical features as object arrays holding ``str``, or ``None`` when missing.  Every
route builds a :class:`ModelInput`; the runtimes, the response and the live metrics read it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

NUMERIC, CATEGORICAL, BOOLEAN = "numeric", "categorical", "boolean"
KINDS = (NUMERIC, CATEGORICAL, BOOLEAN)
_NONE = type(None)
_NUMBERS = frozenset({int, float})


class InputError(ValueError):
    """A request value the model cannot take; ``field`` names the feature (or part of the body)."""

    def __init__(self, field: str, message: str) -> None:
        """Keep the field apart so that the answer can name it."""
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Feature:
    """One model input column, as the data contract declares it."""

    name: str
    kind: str
    nullable: bool
    categories: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> Feature:
        """Read one ``features`` entry of schema.json (a bundle without kinds is all numeric)."""
        kind = str(entry.get("kind", NUMERIC))
        if kind not in KINDS:
            raise ValueError(
                f"schema.json: feature {entry.get('name')!r} has unknown kind {kind!r}"
            )
        low, high = entry.get("min"), entry.get("max")
        return cls(
            name=str(entry["name"]),
            kind=kind,
            nullable=bool(entry.get("nullable", False)),
            categories=tuple(str(c) for c in entry.get("categories") or ()),
            minimum=None if low is None else float(low),
            maximum=None if high is None else float(high),
        )

    def describe(self) -> str:
        """One line for the OpenAPI description of the field."""
        null = "; null when missing" if self.nullable else ""
        if self.kind == CATEGORICAL:
            known = ", ".join(self.categories) or "none recorded"
            return (
                f"categorical (string){null}; known values: {known}. Any other string is "
                "accepted, scored as an unseen category and counted in the metrics."
            )
        if self.kind == BOOLEAN:
            return f"boolean{null}"
        if self.minimum is None or self.maximum is None:
            return f"number{null}"
        return f"number{null}; training range [{self.minimum:.6g}, {self.maximum:.6g}]"

    def example(self) -> Any:
        """Return a valid value (OpenAPI example)."""
        if self.kind == CATEGORICAL:
            return self.categories[0] if self.categories else "a"
        if self.kind == BOOLEAN:
            return True
        return self.minimum if self.minimum is not None else 0.0


@dataclass(frozen=True)
class InputSchema:
    """schema.json: the task, the classes and the features in model-input order."""

    task: str
    target: str
    classes: tuple[Any, ...] | None
    features: tuple[Feature, ...]
    names: tuple[str, ...] = field(init=False)
    #: numeric and boolean features, the columns of :attr:`ModelInput.floats`
    floats: tuple[Feature, ...] = field(init=False)
    categorical: tuple[Feature, ...] = field(init=False)
    has_boolean: bool = field(init=False)

    def __post_init__(self) -> None:
        """Derive the per-kind views once."""
        set_ = object.__setattr__
        set_(self, "names", tuple(f.name for f in self.features))
        set_(self, "floats", tuple(f for f in self.features if f.kind != CATEGORICAL))
        set_(self, "categorical", tuple(f for f in self.features if f.kind == CATEGORICAL))
        set_(self, "has_boolean", any(f.kind == BOOLEAN for f in self.features))
        if len(set(self.names)) != len(self.names):
            raise ValueError("schema.json: feature names are not unique")

    @classmethod
    def from_dict(cls, schema: Mapping[str, Any]) -> InputSchema:
        """Read schema.json as written by ``bundle.build_schema``."""
        classes = schema.get("classes")
        return cls(
            task=str(schema.get("task", "classification")),
            target=str(schema.get("target", "target")),
            classes=None if classes is None else tuple(classes),
            features=tuple(Feature.from_dict(f) for f in schema["features"]),
        )

    @property
    def classification(self) -> bool:
        """Whether predictions are class labels."""
        return self.task == "classification"


@dataclass
class ModelInput:
    """A batch of rows in model-input form (see the module docstring)."""

    schema: InputSchema
    #: (rows, len(schema.floats)) float64, NaN = missing
    floats: np.ndarray
    #: categorical feature name -> object array of ``str`` / ``None``
    strings: dict[str, np.ndarray]

    @property
    def rows(self) -> int:
        """Number of rows."""
        return int(self.floats.shape[0])

    def columns(self) -> dict[str, np.ndarray]:
        """Every feature's values, in schema order (the live metrics' input)."""
        out: dict[str, np.ndarray] = {}
        position = 0
        for feature in self.schema.features:
            if feature.kind == CATEGORICAL:
                out[feature.name] = self.strings[feature.name]
            else:
                out[feature.name] = self.floats[:, position]
                position += 1
        return out

    def frame(self) -> pd.DataFrame:
        """Return the model input frame, exactly as ``contract.coerce`` builds it for training."""
        return pd.DataFrame(self.columns())

    @classmethod
    def from_frame(cls, schema: InputSchema, frame: pd.DataFrame) -> ModelInput:
        """Build model input from a frame in model-input dtypes (``contract.coerce``'s)."""
        floats = np.empty((len(frame), len(schema.floats)), dtype=np.float64)
        for i, feature in enumerate(schema.floats):
            floats[:, i] = pd.to_numeric(frame[feature.name], errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
        strings = {
            f.name: _objects([_text_or_none(v) for v in frame[f.name].tolist()])
            for f in schema.categorical
        }
        return cls(schema, floats, strings)


def _objects(values: Sequence[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _text_or_none(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return str(value)


def reference_rows(schema: InputSchema, reference: Mapping[str, Any]) -> ModelInput:
    """Zip the aligned per-feature ``sample`` lists of reference.json into rows."""
    samples = {f.name: reference["features"][f.name]["sample"] for f in schema.features}
    lengths = {len(v) for v in samples.values()}
    if len(lengths) != 1:
        raise ValueError("reference.json: the feature samples differ in length (not aligned)")
    floats = np.array([samples[f.name] for f in schema.floats], dtype=np.float64).T.reshape(
        lengths.pop(), len(schema.floats)
    )
    strings = {
        f.name: _objects([None if v is None else str(v) for v in samples[f.name]])
        for f in schema.categorical
    }
    return ModelInput(schema, floats, strings)


# --- /predict and /predict/batch: JSON rows, strictly typed ----------------------------------


def from_rows(schema: InputSchema, rows: Any) -> ModelInput | None:
    """Well-formed rows straight into model input, without a pydantic model per row.

    Returns None when anything is off (not a non-empty list of objects with exactly the
    feature names; a value of the wrong type; null where the contract forbids it; a
    non-finite number); the caller then validates with the request model, whose error
    names the field.
    """
    if type(rows) is not list or not rows:
        return None
    width = len(schema.features)
    if any(type(r) is not dict or len(r) != width for r in rows):
        return None
    try:
        numbers = [r[f.name] for r in rows for f in schema.floats]
        texts = {f.name: [r[f.name] for r in rows] for f in schema.categorical}
    except KeyError:
        return None
    n = len(rows)
    floats = _strict_floats(schema, numbers, n)
    if floats is None:
        return None
    strings: dict[str, np.ndarray] = {}
    for feature in schema.categorical:
        values = texts[feature.name]
        types = set(map(type, values))
        if not types <= ({str, _NONE} if feature.nullable else {str}):
            return None
        strings[feature.name] = _objects(values)
    return ModelInput(schema, floats, strings)


def _strict_floats(schema: InputSchema, numbers: list[Any], n: int) -> np.ndarray | None:
    if not schema.floats:
        return np.empty((n, 0), dtype=np.float64)
    width = len(schema.floats)
    types = set(map(type, numbers))
    if schema.has_boolean or not types <= _NUMBERS:
        # a boolean feature takes true/false, a numeric one a number (JSON true is no number)
        for i, feature in enumerate(schema.floats):
            allowed = {bool} if feature.kind == BOOLEAN else _NUMBERS
            if not set(map(type, numbers[i::width])) <= allowed | {_NONE}:
                return None
    if _NONE in types:
        for i, feature in enumerate(schema.floats):
            if not feature.nullable and None in numbers[i::width]:
                return None
    try:
        x = np.array(numbers, dtype=np.float64).reshape(n, width)
    except (OverflowError, ValueError, TypeError):
        return None
    missing = np.isnan(x)
    # NaN / Infinity literals (json.loads accepts them) are not numbers: only null is missing
    if np.isinf(x).any() or int(missing.sum()) != numbers.count(None):
        return None
    return x


# --- /invocations: MLflow's scoring protocol, column by column ------------------------------


def column_values(feature: Feature, values: Sequence[Any]) -> np.ndarray:
    """One feature's values as ``mlflow models serve`` clients send them, in model-input form.

    Like MLflow's scoring server: null (and a NaN) is a missing value in any column; an
    integer is a number; a boolean feature takes true/false or 1/0; a number or boolean in
    a categorical column is its text, as ``contract.coerce`` reads it from a file.  Anything
    else raises :class:`InputError`.
    """
    types = set(map(type, values))
    if feature.kind == CATEGORICAL:
        if types <= {str}:
            return _objects(values)
        return _objects([_category(feature, row, value) for row, value in enumerate(values)])
    allowed = _NUMBERS | {_NONE} | ({bool} if feature.kind == BOOLEAN else set())
    if not types <= allowed:
        row, value = next((i, v) for i, v in enumerate(values) if type(v) not in allowed)
        expected = "true, false, 1, 0 or null" if feature.kind == BOOLEAN else "a number or null"
        raise InputError(feature.name, f"row {row}: expected {expected}, got {value!r}")
    try:
        x = np.array(values, dtype=np.float64)
    except OverflowError:
        raise InputError(feature.name, "a number is out of the float64 range") from None
    if np.isinf(x).any():
        raise InputError(feature.name, "Infinity is not a number the model takes")
    if feature.kind == BOOLEAN:
        present = x[~np.isnan(x)]
        if ((present != 0.0) & (present != 1.0)).any():
            raise InputError(feature.name, "expected true, false, 1, 0 or null")
    return x


def _category(feature: Feature, row: int, value: Any) -> str | None:
    """Read a categorical value as ``contract.coerce`` reads a file's: 1 and 1.0 are "1"."""
    kind = type(value)
    if value is None or kind is str:
        return value
    if kind is bool:
        return "true" if value else "false"
    if kind is float and math.isnan(value):
        return None
    if kind is int or (kind is float and math.isfinite(value)):
        return str(int(value)) if value == int(value) else str(value)
    raise InputError(feature.name, f"row {row}: expected a string or null, got {value!r}")


def from_columns(schema: InputSchema, columns: Mapping[str, Sequence[Any]], n: int) -> ModelInput:
    """Model input from per-feature value lists of length ``n`` (extra columns are ignored)."""
    missing = [name for name in schema.names if name not in columns]
    if missing:
        raise InputError("body", f"missing column(s): {', '.join(missing)}")
    floats = np.empty((n, len(schema.floats)), dtype=np.float64)
    for i, feature in enumerate(schema.floats):
        floats[:, i] = column_values(feature, columns[feature.name])
    strings = {f.name: column_values(f, columns[f.name]) for f in schema.categorical}
    return ModelInput(schema, floats, strings)
