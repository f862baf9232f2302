"""Check a team's data file before ``andamio new --data-file`` writes anything.

:func:`inspect` refuses, with the file and column named, a file that is missing, not a
readable regular file, not CSV or Parquet (by suffix *and* content), has no such target
column, or has fewer rows than the project's train/test split needs (:data:`MIN_ROWS`;
for classification two rows of every class, and a test split that can hold every class).
It also infers ``ml_task`` from the target's values (:func:`infer_task`).

CSV is read here with the standard library, the way the generated project's pandas
reads it (comma-separated UTF-8 text with a header row, pandas' missing-value markers).
Parquet's target column is read with pyarrow by :data:`PARQUET_PROBE`, a script that runs
in andamio's interpreter when pyarrow is installed there and otherwise in the generated
project's ``.venv`` right after ``make setup`` (:func:`probe_parquet`), so a Parquet file
is checked by the same rules, only later.
"""

from __future__ import annotations

import csv
import difflib
import importlib.util
import json
import math
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from andamio.errors import AndamioError

Format = Literal["csv", "parquet"]
Kind = Literal["string", "boolean", "integer", "number"]

SUFFIXES: dict[str, Format] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
#: The project holds out 20 % for testing (``prepare.test_size`` in params.yaml): 50 rows
#: leave 10 test rows; with fewer, the test metrics are noise.
TEST_SIZE = 0.2
MIN_ROWS = 50
#: An integer target with at most this many distinct values is a class label.
MAX_INTEGER_CLASSES = 20
#: Distinct target values counted one by one; past this the target is not a class label.
MAX_COUNTED = 1000
#: pandas' default missing-value markers (``pandas.read_csv(na_values=...)``).
NA_VALUES = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
     "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)  # fmt: skip
_TRUE, _FALSE = frozenset({"True", "true", "TRUE"}), frozenset({"False", "false", "FALSE"})
#: Answers --data-file and --target set; the user must not give them with --data too.
OWN_ANSWERS = ("data_source", "data_path", "target")
_PARQUET_MAGIC = b"PAR1"
_SNIFF_BYTES = 64 * 1024

Label = str | int | float | bool


@dataclass(frozen=True)
class Target:
    """What the target column holds (missing values left out)."""

    kind: Kind
    rows: int  # rows with a value
    missing: int
    counts: dict[Label, int] | None  # rows per value; None past MAX_COUNTED distinct values
    distinct: int  # MAX_COUNTED + 1 stands for "more than MAX_COUNTED"


@dataclass(frozen=True)
class DataFile:
    """A data file that passed the checks andamio can make before rendering."""

    path: Path  # the file as given, resolved
    format: Format
    target_name: str
    columns: tuple[str, ...] | None  # None: not read yet (Parquet without pyarrow here)
    target: Target | None

    @property
    def name(self) -> str:
        """Portable file name under ``data/raw/``: the original suffix, unsafe characters as ``_``."""
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", self.path.stem).strip("._-") or "data"
        return f"{stem}{self.path.suffix.lower()}"

    @property
    def data_path(self) -> str:
        """The ``data_path`` answer: where the project keeps the file."""
        return f"data/raw/{self.name}"


def inspect(path: Path, target: str, ml_task: str | None = None) -> DataFile:
    """Check ``path`` and its ``target`` column; raise :class:`AndamioError` saying what is wrong.

    ``ml_task`` (classification or regression), when the user chose it, is checked
    against the target's values; otherwise :func:`infer_task` decides later.
    """
    path = path.expanduser()
    fmt = _check_file(path)
    path = path.resolve()
    if fmt == "parquet":
        if importlib.util.find_spec("pyarrow") is None:
            return DataFile(path, fmt, target, None, None)
        return probe_parquet(path, target, Path(sys.executable), ml_task)
    columns, summary = _read_csv(path, target)
    checked = DataFile(path, fmt, target, columns, summary)
    check_target(checked, ml_task or infer_task(summary)[0])
    return checked


def answers(data: DataFile, given: Mapping[str, str]) -> tuple[dict[str, str], str]:
    """Return the copier answers for ``data`` over the ``given`` ones, and how ``ml_task`` was chosen."""
    clash = sorted(set(given) & set(OWN_ANSWERS))
    if clash:
        raise AndamioError(
            f"--data {', '.join(clash)}: --data-file and --target set {', '.join(OWN_ANSWERS)}; drop it"
        )
    merged = {**given, "data_source": "file", "data_path": data.data_path, "target": data.target_name}
    if "ml_task" in given:
        return merged, f"ml_task={given['ml_task']} (from --data)"
    if data.target is None:
        return merged, (
            "ml_task=classification unless you choose (pyarrow is not installed with andamio: "
            f"{data.path.name} is read after `make setup`, and a numeric target is refused then; "
            "pass -d ml_task=regression for one)"
        )
    task, why = infer_task(data.target)
    merged["ml_task"] = task
    return merged, f"ml_task={task}, inferred from {data.target_name!r}: {why}"


def infer_task(target: Target) -> tuple[str, str]:
    """Return ``(ml_task, why)`` from the target's values.

    Text and true/false labels, and whole numbers with at most
    :data:`MAX_INTEGER_CLASSES` distinct values, are classes; other numbers are regression.
    """
    if target.kind == "string":
        return "classification", f"text labels, {_distinct(target)} classes"
    if target.kind == "boolean":
        return "classification", "true/false labels"
    if target.kind == "integer" and target.distinct <= MAX_INTEGER_CLASSES:
        return "classification", f"whole numbers with {target.distinct} distinct values"
    if target.kind == "integer":
        return "regression", f"whole numbers with {_distinct(target)} distinct values"
    return "regression", "numbers"


def check_target(data: DataFile, ml_task: str) -> None:
    """Refuse a target ``ml_task`` cannot learn, or too few rows for the train/test split."""
    summary, where = data.target, f"column {data.target_name!r} of {data.path}"
    if summary is None:
        return
    if summary.rows < MIN_ROWS:
        missing = f" ({summary.missing} more have no value)" if summary.missing else ""
        raise AndamioError(
            f"{data.path} has {summary.rows} rows with a {data.target_name!r} value{missing}; "
            f"the train/test split needs at least {MIN_ROWS} ({TEST_SIZE:.0%} held out for testing)"
        )
    if ml_task == "regression" and summary.kind not in ("integer", "number"):
        raise AndamioError(f"{where} holds {summary.kind} values; regression needs numbers")
    if ml_task == "classification" and summary.kind == "number":
        raise AndamioError(
            f"{where} holds fractional numbers; classification needs class labels "
            "(for a numeric target: -d ml_task=regression)"
        )
    if ml_task != "classification":
        return
    if summary.counts is None and summary.kind == "string":
        raise AndamioError(
            f"{where} holds text with more than {MAX_COUNTED} distinct values: free text or an "
            "identifier, not a class label"
        )
    if summary.counts is None:
        return
    if len(summary.counts) < 2:
        raise AndamioError(f"{where} has a single value ({_show(summary.counts)}); classification needs two")
    rare = sorted(str(v) for v, n in summary.counts.items() if n < 2)
    if rare:
        raise AndamioError(
            f"{where}: class {', '.join(rare[:5])} has a single row; the stratified train/test split "
            "needs at least two rows of every class (drop those rows or merge the class)"
        )
    test_rows = math.ceil(summary.rows * TEST_SIZE)
    if test_rows < len(summary.counts):
        raise AndamioError(
            f"{where} has {len(summary.counts)} classes but the test split holds {test_rows} rows; "
            "it needs one of every class (more rows, or fewer classes)"
        )


def probe_parquet(
    path: Path, target: str, python: Path, ml_task: str | None = None, *, guessed: bool = False
) -> DataFile:
    """Read and check a Parquet file's columns and target with ``python`` (an interpreter with pyarrow).

    ``guessed``: ``ml_task`` is a default nobody chose, so a target that says otherwise is refused.
    """
    proc = subprocess.run(
        [str(python), "-I", "-c", PARQUET_PROBE, str(path), target, str(MAX_COUNTED)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise AndamioError(f"{path} could not be read as Parquet: {last}")
    facts = json.loads(proc.stdout)
    columns = tuple(facts["columns"])
    _check_target_column(path, target, columns)
    if facts["kind"] not in ("string", "boolean", "integer", "number"):
        raise AndamioError(
            f"column {target!r} of {path} has type {facts['kind']}; a target is a class label or a number"
        )
    counts = None if facts["counts"] is None else {v: n for v, n in facts["counts"]}
    summary = Target(facts["kind"], facts["rows"], facts["missing"], counts, facts["distinct"])
    checked = DataFile(path, "parquet", target, columns, summary)
    inferred, why = infer_task(summary)
    if guessed and ml_task and inferred != ml_task:
        raise AndamioError(
            f"column {target!r} of {path} looks like {inferred} ({why}), but the project was "
            f"rendered for {ml_task}; run again with -d ml_task={inferred}"
        )
    check_target(checked, ml_task or inferred)
    return checked


#: Prints the columns and a target summary of a Parquet file as JSON (argv: path, target,
#: most values counted one by one).
#: Standalone on purpose (``python -I -c``): it runs wherever pyarrow is installed.
PARQUET_PROBE = """
import json, sys
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pyarrow.types as pt

path, target, most = sys.argv[1], sys.argv[2], int(sys.argv[3])
columns = [field.name for field in pq.read_schema(path)]
facts = {"columns": columns, "kind": None, "rows": 0, "missing": 0, "counts": None, "distinct": 0}
if target in columns:
    column = pq.read_table(path, columns=[target]).column(target)
    if pt.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    kind = str(column.type)
    if pt.is_floating(column.type):
        column = pc.if_else(pc.is_nan(column), None, column)
    values = column.drop_null()
    if pt.is_string(column.type) or pt.is_large_string(column.type):
        kind = "string"
    elif pt.is_boolean(column.type):
        kind = "boolean"
    elif pt.is_integer(column.type):
        kind = "integer"
    elif pt.is_floating(column.type):
        whole = len(values) == 0 or pc.all(pc.equal(pc.floor(values), values)).as_py()
        kind = "integer" if whole else "number"
    counts = pc.value_counts(values)
    facts.update(kind=kind, rows=len(values), missing=len(column) - len(values))
    if len(counts) <= most:
        facts["counts"] = [[c["values"].as_py(), c["counts"].as_py()] for c in counts]
    facts["distinct"] = min(len(counts), most + 1)
print(json.dumps(facts))
"""


def _check_file(path: Path) -> Format:
    """Refuse a missing, unreadable or non-regular file, or one that is not CSV/Parquet."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise AndamioError(f"data file {path} does not exist") from None
    except OSError as error:
        raise AndamioError(f"data file {path} cannot be read: {error.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        what = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise AndamioError(f"data file {path} is {what}; pass a CSV or Parquet file")
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise AndamioError(
            f"data file {path} is not CSV or Parquet (suffix {path.suffix or '(none)'!r}); "
            f"andamio reads {', '.join(SUFFIXES)}"
        )
    if not os.access(path, os.R_OK):
        raise AndamioError(f"data file {path} is not readable (permission denied)")
    try:
        with path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
            handle.seek(max(info.st_size - len(_PARQUET_MAGIC), 0))
            tail = handle.read()
    except OSError as error:
        raise AndamioError(f"data file {path} cannot be read: {error.strerror}") from None
    if not head:
        raise AndamioError(f"data file {path} is empty")
    is_parquet = head.startswith(_PARQUET_MAGIC) and tail == _PARQUET_MAGIC and info.st_size >= 12
    if fmt == "parquet" and not is_parquet:
        raise AndamioError(f"data file {path} is not a Parquet file (no PAR1 magic at its start and end)")
    if fmt == "csv" and is_parquet:
        raise AndamioError(f"data file {path} is a Parquet file; name it {path.stem}.parquet")
    if fmt == "csv" and b"\0" in head:
        raise AndamioError(f"data file {path} is binary, not CSV text")
    return fmt


def _read_csv(path: Path, target: str) -> tuple[tuple[str, ...], Target]:
    """Read the header and the target column of a CSV file, checking its shape on the way."""
    counter = _Counter()
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        try:
            header = next((row for row in reader if row), None)
            if header is None:
                raise AndamioError(f"data file {path} has no header row")
            columns = tuple(header)
            if len(columns) == 1:
                _refuse_other_delimiter(path, columns[0])
            _check_target_column(path, target, columns)
            index = columns.index(target)
            for row in reader:
                if not row:  # a blank line (pandas skips it too)
                    continue
                if len(row) > len(columns):
                    raise AndamioError(
                        f"data file {path}, line {reader.line_num}: {len(row)} fields, "
                        f"the header has {len(columns)}"
                    )
                counter.add(row[index] if index < len(row) else "")
        except UnicodeDecodeError:
            raise AndamioError(f"data file {path} is not UTF-8 text (line {reader.line_num + 1})") from None
        except csv.Error as error:
            raise AndamioError(f"data file {path}, line {reader.line_num}: not valid CSV ({error})") from None
    return columns, counter.summary()


def _refuse_other_delimiter(path: Path, header: str) -> None:
    for delimiter, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
        if delimiter in header:
            raise AndamioError(
                f"data file {path} separates columns with {name}; the project reads comma-separated "
                "CSV: save it with commas (or as Parquet)"
            )


def _check_target_column(path: Path, target: str, columns: Iterable[str]) -> None:
    columns = list(columns)
    if columns == [target]:
        raise AndamioError(
            f"data file {path} has only the column {target!r}; the model needs others to learn from"
        )
    if columns.count(target) == 1:
        return
    if target in columns:
        raise AndamioError(f"data file {path} has {columns.count(target)} columns named {target!r}")
    close = difflib.get_close_matches(target, columns, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    shown = ", ".join(columns[:20]) + (", …" if len(columns) > 20 else "")
    raise AndamioError(f"data file {path} has no column {target!r}{hint}; its columns: {shown}")


class _Counter:
    """Count a CSV column's values the way pandas would type them."""

    def __init__(self) -> None:
        self.raw: dict[str, int] = {}
        self.rows = self.missing = 0
        self.overflow = False  # more than MAX_COUNTED distinct values
        self.boolean = self.integer = self.number = True

    def add(self, value: str) -> None:
        if value in NA_VALUES:
            self.missing += 1
            return
        self.rows += 1
        if value in self.raw:
            self.raw[value] += 1
            return
        self._type(value)
        if len(self.raw) < MAX_COUNTED:
            self.raw[value] = 1
        else:
            self.overflow = True

    def _type(self, value: str) -> None:
        if self.boolean and value not in _TRUE and value not in _FALSE:
            self.boolean = False
        if self.number:
            try:
                number = float(value)
            except ValueError:
                self.number = self.integer = False
                return
            self.integer = self.integer and math.isfinite(number) and number.is_integer()

    def summary(self) -> Target:
        kind: Kind = "string"
        if self.boolean and self.raw:
            kind = "boolean"
        elif self.integer and self.raw:
            kind = "integer"
        elif self.number and self.raw:
            kind = "number"
        counts: dict[Label, int] = {}
        for value, n in self.raw.items():
            key = self._typed(value, kind)
            counts[key] = counts.get(key, 0) + n
        if self.overflow:
            return Target(kind, self.rows, self.missing, None, MAX_COUNTED + 1)
        return Target(kind, self.rows, self.missing, counts, len(counts))

    @staticmethod
    def _typed(value: str, kind: Kind) -> Label:
        if kind == "boolean":
            return value in _TRUE
        if kind == "integer":
            return int(float(value))
        if kind == "number":
            return float(value)
        return value


def _distinct(target: Target) -> str:
    return f"more than {MAX_COUNTED}" if target.counts is None else str(target.distinct)


def _show(counts: dict[Label, int]) -> str:
    return ", ".join(repr(v) for v in list(counts)[:5])
