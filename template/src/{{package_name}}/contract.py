"""The data contract: what the training table must look like (``data/contract.yaml``).

The contract is inferred once (``make schema``), reviewed and committed by the team, and
read everywhere after: validation before training, the feature pipeline, the serving
bundle's schema (and so the API's request model), drift monitoring and the model card.

Per column it records a *kind* (``numeric``, ``categorical`` or ``boolean``), whether
missing values are allowed, and the allowed range or categories; plus the target and, for
classification, its classes.  Columns that are neither (datetimes, free text, identifiers)
are listed under ``excluded`` with the reason and left out of the model.

Validation uses pandera (a DataFrame schema built from the contract): it is maintained,
vectorised (a million rows validate in about a second), collects every failure in one
pass (``lazy=True``) and reports the failing rows, which is what a failing pipeline
must tell the team.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

Kind = Literal["numeric", "categorical", "boolean"]
KINDS: tuple[str, ...] = ("numeric", "categorical", "boolean")
VERSION = 1

# Inference thresholds: a text column with more distinct values than this (or than
# half its rows) is free text, not a category.
MAX_CATEGORIES = 200
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})
# At most this many failing row numbers are reported per check.
FIRST_ROWS = 5


class ContractError(ValueError):
    """The contract file is missing or malformed."""


@dataclass(frozen=True)
class Column:
    """One model input column."""

    name: str
    kind: Kind
    nullable: bool
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the YAML mapping of this column (without its name)."""
        out: dict[str, Any] = {"kind": self.kind, "nullable": self.nullable}
        if self.kind == "numeric":
            out["min"], out["max"] = self.min, self.max
        if self.kind == "categorical":
            out["categories"] = list(self.categories or ())
        return out


@dataclass(frozen=True)
class Target:
    """The label column; ``classes`` for classification."""

    name: str
    kind: Literal["categorical", "numeric"]
    classes: tuple[Any, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the YAML mapping of the target."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.classes is not None:
            out["classes"] = list(self.classes)
        return out


@dataclass(frozen=True)
class Contract:
    """Columns in model input order, the target and the excluded columns."""

    columns: tuple[Column, ...]
    target: Target
    excluded: dict[str, str] = field(default_factory=dict)

    @property
    def feature_names(self) -> list[str]:
        """Model input columns, in contract order."""
        return [c.name for c in self.columns]

    def names_of(self, kind: str) -> list[str]:
        """Names of the columns of one kind, in contract order."""
        return [c.name for c in self.columns if c.kind == kind]

    @property
    def numeric(self) -> list[str]:
        """Numeric columns."""
        return self.names_of("numeric")

    @property
    def categorical(self) -> list[str]:
        """Categorical columns."""
        return self.names_of("categorical")

    @property
    def boolean(self) -> list[str]:
        """Boolean columns."""
        return self.names_of("boolean")

    @property
    def task(self) -> str:
        """``classification`` for a categorical target, else ``regression``."""
        return "classification" if self.target.kind == "categorical" else "regression"

    def column(self, name: str) -> Column:
        """Return the column called ``name``."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Return the whole contract as the YAML file holds it."""
        return {
            "version": VERSION,
            "target": self.target.to_dict(),
            "columns": {c.name: c.to_dict() for c in self.columns},
            "excluded": dict(self.excluded),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "contract") -> Contract:
        """Read the YAML mapping; every malformed entry is named in the error."""
        if not isinstance(data, Mapping):
            raise ContractError(f"{source}: expected a mapping with target and columns")
        raw_target = data.get("target")
        if not isinstance(raw_target, Mapping) or not raw_target.get("name"):
            raise ContractError(f"{source}: 'target' must be a mapping with a 'name'")
        kind = raw_target.get("kind", "categorical")
        if kind not in ("categorical", "numeric"):
            raise ContractError(
                f"{source}: target.kind must be categorical or numeric, got {kind!r}"
            )
        classes = raw_target.get("classes")
        if kind == "categorical" and not classes:
            raise ContractError(f"{source}: a categorical target needs its 'classes'")
        target = Target(str(raw_target["name"]), kind, tuple(classes) if classes else None)
        raw_columns = data.get("columns")
        if not isinstance(raw_columns, Mapping) or not raw_columns:
            raise ContractError(f"{source}: 'columns' must map at least one column to its kind")
        columns = []
        for name, spec in raw_columns.items():
            if not isinstance(spec, Mapping) or spec.get("kind") not in KINDS:
                raise ContractError(
                    f"{source}: columns.{name}.kind must be one of {', '.join(KINDS)}"
                )
            cats = spec.get("categories")
            if spec["kind"] == "categorical" and not cats:
                raise ContractError(
                    f"{source}: columns.{name} is categorical but lists no categories"
                )
            columns.append(
                Column(
                    name=str(name),
                    kind=spec["kind"],
                    nullable=bool(spec.get("nullable", False)),
                    min=None if spec.get("min") is None else float(spec["min"]),
                    max=None if spec.get("max") is None else float(spec["max"]),
                    categories=tuple(str(c) for c in cats) if cats else None,
                )
            )
        if target.name in {c.name for c in columns}:
            raise ContractError(f"{source}: the target {target.name!r} is also listed as a column")
        excluded = {str(k): str(v) for k, v in (data.get("excluded") or {}).items()}
        return cls(tuple(columns), target, excluded)


_HEADER = """\
# The data contract of this project: the columns the model reads, their kinds, whether
# they may be missing, their allowed ranges or categories, and the target.  You own this
# file: `make schema` inferred it once; review it, widen a range or add a category when
# your data legitimately changes, and commit it.  `make pipeline` validates the raw data
# against it before training (a violation fails the run and names the column, the check
# and the rows); the API's request model, drift monitoring and the model card follow it.
# kinds: numeric | categorical | boolean; `excluded` columns are not model input.
"""


def load(path: Path) -> Contract:
    """Read the contract at ``path``."""
    if not path.is_file():
        raise ContractError(
            f"{path} not found: run `make schema` to infer the data contract, review it and "
            "commit it"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ContractError(f"{path}: not valid YAML ({error})") from None
    return Contract.from_dict(data or {}, source=str(path))


def write(path: Path, contract: Contract) -> None:
    """Write ``contract`` as commented, stable YAML."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump(contract.to_dict(), sort_keys=False, allow_unicode=True, width=100)
    path.write_text(_HEADER + body, encoding="utf-8")


# --- inference ----------------------------------------------------------------------------


def _as_bool_values(values: pd.Series) -> bool:
    """Whether every non-missing value reads as a boolean (true/false, yes/no, 0/1)."""
    if pd.api.types.is_bool_dtype(values):
        return True
    present = values.dropna()
    if present.empty:
        return False
    if pd.api.types.is_numeric_dtype(present):
        return bool(present.isin([0, 1]).all()) and present.nunique() == 2
    text = present.astype(str).str.strip().str.lower()
    return bool(text.isin(_TRUE | _FALSE).all()) and text.nunique() == 2


def _looks_like_datetime(values: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    present = values.dropna()
    if present.empty or pd.api.types.is_numeric_dtype(present):
        return False
    sample = present.astype(str).head(200)
    if not sample.str.contains(r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}", regex=True).all():
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().all())


def _classes(target: pd.Series) -> tuple[Any, ...]:
    present = target.dropna()
    if pd.api.types.is_bool_dtype(present):
        return tuple(sorted(str(v).lower() for v in present.unique()))
    if pd.api.types.is_integer_dtype(present) or (
        pd.api.types.is_float_dtype(present) and (present == present.round()).all()
    ):
        return tuple(sorted(int(v) for v in present.unique()))
    return tuple(sorted(str(v) for v in present.unique()))


def infer(frame: pd.DataFrame, target: str, task: str) -> Contract:
    """Infer a contract from a representative table (the raw training data)."""
    if target not in frame.columns:
        raise ContractError(
            f"the data has no target column {target!r}; its columns are: "
            f"{', '.join(map(str, frame.columns))}"
        )
    if task not in ("classification", "regression"):
        raise ContractError(f"unknown task {task!r}")
    labels = frame[target]
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(labels.dropna()):
            raise ContractError(f"regression needs a numeric target; {target!r} holds text")
        tgt = Target(target, "numeric")
    else:
        classes = _classes(labels)
        if len(classes) < 2:
            raise ContractError(f"classification needs at least 2 classes in {target!r}")
        tgt = Target(target, "categorical", classes)
    columns: list[Column] = []
    excluded: dict[str, str] = {}
    rows = len(frame)
    for name in frame.columns:
        if name == target:
            continue
        values = frame[name]
        nullable = bool(values.isna().any())
        present = values.dropna()
        if present.empty:
            excluded[str(name)] = "empty (no value in any row)"
        elif _as_bool_values(values):
            columns.append(Column(str(name), "boolean", nullable))
        elif pd.api.types.is_numeric_dtype(present):
            numbers = present.astype(float)
            columns.append(
                Column(str(name), "numeric", nullable, float(numbers.min()), float(numbers.max()))
            )
        elif _looks_like_datetime(values):
            excluded[str(name)] = "datetime (not model input; derive numbers from it upstream)"
        else:
            text = present.astype(str)
            distinct = int(text.nunique())
            if distinct > MAX_CATEGORIES or distinct > max(rows // 2, 2):
                excluded[str(name)] = f"free text or identifier ({distinct} distinct values)"
            else:
                categories = tuple(sorted(text.unique()))
                columns.append(Column(str(name), "categorical", nullable, categories=categories))
    if not columns:
        raise ContractError("no usable feature column: every column was excluded")
    return Contract(tuple(columns), tgt, excluded)


# --- model input --------------------------------------------------------------------------


def _to_bool_float(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    text = values.astype("string").str.strip().str.lower()
    out = pd.Series(np.nan, index=values.index, dtype="float64")
    out[text.isin(_TRUE).fillna(False).to_numpy(dtype=bool)] = 1.0
    out[text.isin(_FALSE).fillna(False).to_numpy(dtype=bool)] = 0.0
    return out


def _to_text(values: pd.Series) -> pd.Series:
    """Categorical values as ``str`` (``1`` and ``1.0`` read from files both become ``"1"``)."""
    if pd.api.types.is_bool_dtype(values):
        return values.map({True: "true", False: "false"}).astype(object)
    if pd.api.types.is_float_dtype(values):
        present = values.dropna()
        if (present == present.round()).all():
            values = values.astype("Int64")
    text = values.astype("string").astype(object)
    return text.where(values.notna(), None)  # type: ignore[call-overload]


def coerce(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """Return the model input frame: the contract's columns, in order, in model dtypes.

    numeric -> float64 (NaN = missing); categorical -> object ``str`` (``None`` = missing);
    boolean -> float64 1.0 / 0.0 (NaN = missing).  Run :func:`validate` first: values that do
    not convert become missing here.
    """
    missing = [n for n in contract.feature_names if n not in frame.columns]
    if missing:
        raise ValueError(f"the data lacks contract column(s): {', '.join(missing)}")
    out: dict[str, pd.Series] = {}
    for col in contract.columns:
        values = frame[col.name]
        if col.kind == "numeric":
            out[col.name] = pd.to_numeric(values, errors="coerce").astype("float64")
        elif col.kind == "boolean":
            out[col.name] = _to_bool_float(values)
        else:
            out[col.name] = _to_text(values)
    return pd.DataFrame(out, index=frame.index)


def target_values(frame: pd.DataFrame, contract: Contract) -> pd.Series:
    """Return the target as labels: the class values (classification) or float64."""
    values = frame[contract.target.name]
    if contract.target.kind == "numeric":
        return pd.to_numeric(values, errors="coerce").astype("float64")
    classes = contract.target.classes or ()
    if classes and all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return pd.to_numeric(values, errors="coerce").astype("int64")
    return _to_text(values)


def split_target(frame: pd.DataFrame, contract: Contract) -> tuple[pd.DataFrame, pd.Series]:
    """``(model input frame, target labels)`` of a validated table."""
    return coerce(frame, contract), target_values(frame, contract)


# --- validation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """One failed check: which column, what check, how many rows, the first row numbers."""

    column: str
    check: str
    failing_rows: int
    first_rows: tuple[int, ...]

    def describe(self) -> str:
        """Describe the failure on one grep-able line."""
        rows = ", ".join(map(str, self.first_rows))
        return f"column {self.column!r}: {self.check}: {self.failing_rows} failing row(s)" + (
            f", first at row {rows}" if rows else ""
        )


@dataclass(frozen=True)
class ValidationReport:
    """Result of validating a table against the contract."""

    rows: int
    failures: tuple[Failure, ...]

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready report (``reports/validation.json``); row numbers are 0-based."""
        return {
            "passed": self.passed,
            "rows": self.rows,
            "failures": [
                {
                    "column": f.column,
                    "check": f.check,
                    "failing_rows": f.failing_rows,
                    "first_rows": list(f.first_rows),
                }
                for f in self.failures
            ],
        }

    def summary(self) -> str:
        """Human-readable verdict, one line per failure."""
        if self.passed:
            return f"validation passed: {self.rows} rows match the data contract"
        lines = [f"validation FAILED: {len(self.failures)} check(s) failed on {self.rows} rows"]
        lines += [f"  - {f.describe()}" for f in self.failures]
        return "\n".join(lines)


def _check_type(values: pd.Series, col: Column) -> pd.Series:
    """Rows whose present value does not have the column's kind (True = failing)."""
    present = values.notna()
    if col.kind == "numeric":
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            return pd.Series(False, index=values.index)
        return present & pd.to_numeric(values, errors="coerce").isna()
    if col.kind == "boolean":
        return present & _to_bool_float(values).isna()
    return pd.Series(False, index=values.index)


def _schema(contract: Contract, frame: pd.DataFrame) -> Any:
    """Build the pandera schema of the contract (types are checked before, per row)."""
    import pandera.pandas as pa

    columns: dict[str, Any] = {}
    for col in contract.columns:
        checks = []
        if col.kind == "numeric":
            if col.min is not None:
                checks.append(pa.Check.ge(col.min, name=f"min {col.min:g}"))
            if col.max is not None:
                checks.append(pa.Check.le(col.max, name=f"max {col.max:g}"))
        elif col.kind == "categorical":
            checks.append(
                pa.Check.isin(list(col.categories or ()), name="in the contract's categories")
            )
        columns[col.name] = pa.Column(nullable=col.nullable, checks=checks, name=col.name)
    tgt = contract.target
    tgt_checks = []
    if tgt.kind == "categorical":
        classes = [str(c) for c in tgt.classes or ()]
        tgt_checks.append(pa.Check.isin(classes, name="one of the target classes"))
    columns[tgt.name] = pa.Column(nullable=False, checks=tgt_checks, name=tgt.name)
    return pa.DataFrameSchema(columns, strict=False, coerce=False)


def _rows(index: Sequence[Any] | pd.Index) -> tuple[int, ...]:
    return tuple(int(i) for i in list(index)[:FIRST_ROWS])


def validate(frame: pd.DataFrame, contract: Contract) -> ValidationReport:
    """Check ``frame`` (the raw table) against the contract; collect every failure."""
    import pandera.errors as pa_errors

    frame = frame.reset_index(drop=True)
    failures: list[Failure] = []
    required = [*contract.feature_names, contract.target.name]
    absent = [n for n in required if n not in frame.columns]
    for name in absent:
        failures.append(Failure(name, "column present", len(frame), ()))
    present = [n for n in required if n in frame.columns]
    # The kind of each value first: the checks below compare converted values.
    converted: dict[str, pd.Series] = {}
    for name in present:
        if name == contract.target.name:
            if contract.target.kind == "numeric":
                values = pd.to_numeric(frame[name], errors="coerce").astype("float64")
                bad = frame[name].notna() & values.isna()
                if bad.any():
                    failures.append(
                        Failure(name, "type numeric", int(bad.sum()), _rows(frame.index[bad]))
                    )
            else:  # compared as text: 1 and "1" name the same class
                values = _to_text(frame[name])
            converted[name] = values
            continue
        col = contract.column(name)
        bad = _check_type(frame[name], col)
        if bad.any():
            failures.append(
                Failure(name, f"type {col.kind}", int(bad.sum()), _rows(frame.index[bad]))
            )
        converted[name] = coerce(frame[[name]], Contract((col,), contract.target))[name]
    if not present:
        return ValidationReport(len(frame), tuple(failures))
    checked = pd.DataFrame(converted)
    typed = {f.column for f in failures}
    # Values that failed their type check are already reported; do not count them again.
    for name in typed & set(checked.columns):
        checked.loc[_check_type(frame[name], contract.column(name)), name] = None
    try:
        _schema(contract, checked).validate(checked, lazy=True)
    except pa_errors.SchemaErrors as errors:
        cases = errors.failure_cases
        grouped: dict[tuple[str, str], list[int]] = {}
        for row in cases.itertuples(index=False):
            column = str(row.column)
            check = str(row.check)
            if row.column is None or check == "column_in_dataframe":
                continue  # absent columns are reported above
            if column in typed and check.startswith("not_nullable"):
                continue
            index = row.index
            rows = grouped.setdefault((column, check), [])
            if index is not None and not pd.isna(index):
                rows.append(int(index))
        for (column, check), rows in grouped.items():
            label = "not null" if check.startswith("not_nullable") else check
            first = tuple(sorted(rows)[:FIRST_ROWS])
            failures.append(Failure(column, label, max(len(rows), 1), first))
    return ValidationReport(len(frame), tuple(failures))


def input_failures(frame: pd.DataFrame, contract: Contract) -> list[Failure]:
    """Check a table to score (no target): every feature column present and of its kind.

    Ranges and categories are not enforced here: the model scores a new category or a value
    past the training range (the drift check reports them).  Row numbers are the index.
    """
    failures = [
        Failure(name, "column present", len(frame), ())
        for name in contract.feature_names
        if name not in frame.columns
    ]
    for col in contract.columns:
        if col.name in frame.columns:
            bad = _check_type(frame[col.name], col)
            if bad.any():
                failures.append(
                    Failure(col.name, f"type {col.kind}", int(bad.sum()), _rows(frame.index[bad]))
                )
    return failures
