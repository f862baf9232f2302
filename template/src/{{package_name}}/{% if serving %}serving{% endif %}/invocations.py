"""MLflow's scoring protocol: the request bodies ``mlflow models serve`` takes on /invocations.

* ``application/json``: an object with exactly one of ``dataframe_split`` (``columns`` +
  ``data`` rows, optional ``index``), ``dataframe_records`` (a list of row objects),
  ``instances`` or ``inputs`` (row objects, columns of values, or, for ``inputs``, one row
  object); a ``params`` key, and any other key, is ignored, as MLflow does.
* ``text/csv``: a header row, then one line per row (what ``DataFrame.to_csv`` writes).

The answer is MLflow's, ``{"predictions": [...]}`` (labels or values, no probabilities),
so a client of ``mlflow models serve`` switches by changing the URL.  As there, columns
the model does not read are ignored, and null is a missing value in any column.  Unlike
MLflow, each value is checked against the contract: a refused body is a 400 whose message
names the column, never a model error.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from .inputs import BOOLEAN, CATEGORICAL, NUMERIC, InputError, InputSchema, ModelInput, from_columns

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
JSON, CSV = "application/json", "text/csv"
_ABSENT = object()
_TRUE = frozenset({"true", "1", "1.0"})
_FALSE = frozenset({"false", "0", "0.0"})


class UnsupportedMediaTypeError(InputError):
    """A content type the protocol does not define (HTTP 415)."""


def media_type(header: str | None) -> str:
    """Return the media type of a Content-Type header (only UTF-8, as MLflow)."""
    if not header:
        return JSON
    kind, *parameters = (part.strip() for part in header.split(";"))
    for parameter in parameters:
        key, _, value = parameter.partition("=")
        if key.strip().lower() != "charset":
            message = f"unrecognised parameter {key.strip()!r}"
            raise UnsupportedMediaTypeError("content-type", message)
        if value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            message = "the scoring server only supports UTF-8"
            raise UnsupportedMediaTypeError("content-type", message)
    kind = kind.lower()
    if kind not in (JSON, CSV):
        raise UnsupportedMediaTypeError(
            "content-type", f"expected {JSON} or {CSV}, got {kind or 'nothing'!r}"
        )
    return kind


def parse_json(schema: InputSchema, data: Any) -> ModelInput:
    """Model input from a decoded JSON body (raises :class:`InputError`)."""
    if type(data) is not dict:
        raise InputError(
            "body", f"expected a JSON object with one of {', '.join(FORMATS)}; got {_kind(data)}"
        )
    keys = [k for k in FORMATS if k in data]
    if len(keys) != 1:
        raise InputError(
            "body",
            f"expected exactly one of {', '.join(FORMATS)}; got the keys {sorted(map(str, data))}",
        )
    key = keys[0]
    payload = data[key]
    if key == "dataframe_split":
        return _split(schema, payload)
    if type(payload) is list:
        return _records(schema, payload, key)
    if key != "dataframe_records" and type(payload) is dict:
        return _columns(schema, payload, key)
    expected = "a list of records" if key == "dataframe_records" else "records or columns"
    raise InputError(key, f"expected {expected}, got {_kind(payload)}")


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(
        type(value), "a number" if type(value) in (int, float) else type(value).__name__
    )


def _split(schema: InputSchema, payload: Any) -> ModelInput:
    key = "dataframe_split"
    if type(payload) is not dict:
        raise InputError(key, f"expected an object with columns and data, got {_kind(payload)}")
    unknown = sorted(set(payload) - {"columns", "data", "index"})
    if unknown:
        raise InputError(key, f"unknown key(s) {unknown}; expected columns, data and index")
    columns, data = payload.get("columns"), payload.get("data")
    if type(columns) is not list or not all(type(c) is str for c in columns):
        raise InputError(f"{key}.columns", "expected the list of column names")
    if len(set(columns)) != len(columns):
        raise InputError(f"{key}.columns", "column names repeat")
    if type(data) is not list or not data:
        raise InputError(f"{key}.data", "expected a non-empty list of rows")
    width = len(columns)
    for i, row in enumerate(data):
        if type(row) is not list or len(row) != width:
            got = f"{len(row)} values" if type(row) is list else _kind(row)
            raise InputError(f"{key}.data[{i}]", f"expected a list of {width} values, got {got}")
    index = payload.get("index")
    if index is not None and (type(index) is not list or len(index) != len(data)):
        raise InputError(f"{key}.index", f"expected a list of {len(data)} labels")
    position = {c: i for i, c in enumerate(columns)}
    values = {
        name: [row[position[name]] for row in data] for name in schema.names if name in position
    }
    return from_columns(schema, values, len(data))


def _records(schema: InputSchema, records: list[Any], key: str) -> ModelInput:
    if not records:
        raise InputError(key, "expected at least one record")
    for i, record in enumerate(records):
        if type(record) is not dict:
            raise InputError(f"{key}[{i}]", f"expected an object, got {_kind(record)}")
    values: dict[str, list[Any]] = {}
    for name in schema.names:
        try:
            values[name] = [r[name] for r in records]
        except KeyError:
            # as a DataFrame of records: a key some records lack is missing in those
            column = [r.get(name, _ABSENT) for r in records]
            if any(v is not _ABSENT for v in column):
                values[name] = [None if v is _ABSENT else v for v in column]
    return from_columns(schema, values, len(records))


def _columns(schema: InputSchema, payload: Mapping[str, Any], key: str) -> ModelInput:
    values = {name: payload[name] for name in schema.names if name in payload}
    lists = [type(v) is list for v in values.values()]
    if values and all(lists):
        lengths = {len(v) for v in values.values()}
        if len(lengths) != 1 or 0 in lengths:
            raise InputError(key, "every column must hold the same, non-zero number of values")
        return from_columns(schema, values, lengths.pop())
    if any(lists):
        raise InputError(key, "expected every column as a list of values, or one value each")
    return from_columns(schema, {k: [v] for k, v in values.items()}, 1)


def parse_csv(schema: InputSchema, body: bytes) -> ModelInput:
    """Model input from a CSV body with a header row (raises :class:`InputError`)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("body", "the CSV is not UTF-8 text") from None
    # numbers parsed by pandas' CSV reader, as `mlflow models serve` parses them
    dtypes: Any = {f.name: "float64" if f.kind == NUMERIC else object for f in schema.features}
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=dtypes)
    except (ValueError, pd.errors.ParserError) as exc:
        raise _csv_error(schema, text, exc) from None
    if frame.empty:
        raise InputError("body", "the CSV has no rows")
    values: dict[str, list[Any]] = {}
    for feature in schema.features:
        if feature.name not in frame.columns:
            continue
        column = frame[feature.name].tolist()
        if feature.kind == BOOLEAN:
            values[feature.name] = [_flag(feature.name, v) for v in column]
        elif feature.kind == CATEGORICAL:
            values[feature.name] = [None if _missing(v) else str(v) for v in column]
        else:
            values[feature.name] = column
    return from_columns(schema, values, len(frame))


def _csv_error(schema: InputSchema, text: str, error: Exception) -> InputError:
    """Name the column holding a value that is not a number, if that is what went wrong."""
    try:
        raw = pd.read_csv(io.StringIO(text), dtype=object)
    except (ValueError, pd.errors.ParserError) as exc:
        return InputError("body", f"not a CSV table with a header row ({exc})")
    for feature in schema.features:
        if feature.kind == NUMERIC and feature.name in raw.columns:
            for value in raw[feature.name].tolist():
                if not _missing(value) and not _is_number(value):
                    return InputError(feature.name, f"{value!r} is not a number")
    return InputError("body", f"not a CSV table with a header row ({error})")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _flag(name: str, value: Any) -> float | None:
    if _missing(value):
        return None
    text = str(value).strip().lower()
    if text in _TRUE:
        return 1.0
    if text in _FALSE:
        return 0.0
    raise InputError(name, f"{value!r} is not true, false, 1 or 0")
