"""Mixed-type tables that stand in for a team's own data in tests and benchmarks.

``mixed_frame`` makes numeric columns with missing values, categorical string columns with a
rare level (< 1 %), boolean columns with some missing, and a ``label`` that depends on them:
three string classes (a softmax of linear scores, so a model can learn them) or a float.
``shifted`` turns a frame into a drifted batch. Deterministic by seed.

Importing this module needs only the standard library (``column_kinds``, ``data_python``);
the frame functions import numpy and pandas when called. The root venv has neither, so the
tests run this file as a script with a Python that has them (``data_python``)::

    python tests/support/datagen.py --rows 5000 --out data.parquet [--task regression] [--seed 7]
    python tests/support/datagen.py --from data.csv --shift cat_1:shares --out batch.csv
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

ROOT = Path(__file__).resolve().parents[2]  # run as a script by a Python without andamio
TARGET = "label"
CLASSES = ("bronze", "silver", "gold")
#: Levels of every categorical column, most to least common; the last one is rare (< 1 %).
LEVELS = ("north", "south", "east", "west", "central")
_SHARES = (0.42, 0.27, 0.18, 0.127, 0.003)
RARE = LEVELS[-1]


def column_names(*, numeric: int = 6, categorical: int = 3, boolean: int = 1) -> dict[str, list[str]]:
    """Return the feature names of a ``mixed_frame`` by kind (no numpy needed)."""
    return {
        "numeric": [f"num_{i}" for i in range(numeric)],
        "categorical": [f"cat_{i}" for i in range(categorical)],
        "boolean": [f"flag_{i}" for i in range(boolean)],
    }


def column_kinds(
    *, task: str = "classification", numeric: int = 6, categorical: int = 3, boolean: int = 1
) -> dict[str, str]:
    """Return ``{column: kind}`` in frame order, the target last (kind ``categorical`` or ``numeric``).

    Kinds: ``numeric`` (float), ``categorical`` (string), ``boolean``. Stdlib only, so the root
    venv can build a SQL table for a file the data Python wrote.
    """
    names = column_names(numeric=numeric, categorical=categorical, boolean=boolean)
    kinds = {name: kind for kind, cols in names.items() for name in cols}
    kinds[TARGET] = "categorical" if task == "classification" else "numeric"
    return kinds


def mixed_frame(
    rows: int,
    *,
    seed: int = 0,
    task: str = "classification",
    numeric: int = 6,
    categorical: int = 3,
    boolean: int = 1,
    missing: float = 0.05,
) -> pd.DataFrame:
    """Return a mixed-type table with a learnable ``label``.

    * ``num_i`` float64: differently scaled normal, log-normal and count-like columns; a
      ``missing`` share of NaN in each.
    * ``cat_i`` object (str): levels ``LEVELS`` with shares ``_SHARES`` (``central`` is rare,
      0.3 %); ``cat_0`` is never missing, the others have a ``missing`` share of ``None``.
    * ``flag_i`` pandas ``boolean`` (nullable): a ``missing`` share of ``<NA>``.
    * ``label``: classification -> one of ``CLASSES`` drawn from a softmax of three linear
      scores of the complete features; regression -> a float (linear + noise).
    The label is computed before values are masked, as in real data where a value goes
    missing after the fact.
    """
    import numpy as np
    import pandas as pd

    if task not in ("classification", "regression"):
        raise ValueError(f"task must be classification or regression, got {task!r}")
    rng = np.random.default_rng(seed)
    names = column_names(numeric=numeric, categorical=categorical, boolean=boolean)
    columns: dict[str, Any] = {}
    standardized = []
    for i, name in enumerate(names["numeric"]):
        shape = i % 3
        if shape == 0:
            values = rng.normal(loc=10.0 * (i + 1), scale=1.0 + i, size=rows)
        elif shape == 1:
            values = rng.lognormal(mean=1.0, sigma=0.6, size=rows)
        else:
            values = rng.poisson(lam=3 + i, size=rows).astype("float64")
        columns[name] = values
        standardized.append((values - values.mean()) / (values.std() or 1.0))
    codes = []
    for name in names["categorical"]:
        code = rng.choice(len(LEVELS), size=rows, p=_SHARES)
        codes.append(code)
        columns[name] = np.asarray(LEVELS, dtype=object)[code]
    flags = []
    for name in names["boolean"]:
        flag = rng.random(rows) < 0.35
        flags.append(flag)
        columns[name] = flag

    # Linear scores: every kind of feature matters, so a model that drops one kind loses skill.
    # Drawn from their own stream: the same seed gives the same concept at any row count.
    weights = np.random.default_rng([seed, 1])
    n_scores = len(CLASSES) if task == "classification" else 1
    scores = np.zeros((rows, n_scores))
    for values in standardized:
        scores += np.outer(values, weights.normal(scale=1.2, size=n_scores))
    for code in codes:
        effects = weights.normal(scale=1.0, size=(len(LEVELS), n_scores))
        scores += effects[code]
    for flag in flags:
        scores += np.outer(flag.astype("float64"), weights.normal(scale=1.0, size=n_scores))
    if task == "classification":
        # x3: a strong signal, so a few thousand rows pass a quality gate (accuracy ~0.85).
        logits = 3.0 * scores
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        drawn = (probs.cumsum(axis=1) > rng.random((rows, 1))).argmax(axis=1)
        label: Any = np.asarray(CLASSES, dtype=object)[drawn]
    else:
        label = 50.0 + 10.0 * scores[:, 0] + rng.normal(scale=3.0, size=rows)

    frame = pd.DataFrame(columns)
    for name in names["numeric"]:
        frame.loc[rng.random(rows) < missing, name] = np.nan
    for name in names["categorical"][1:]:
        frame[name] = frame[name].where(rng.random(rows) >= missing, None)
    for name in names["boolean"]:
        frame[name] = frame[name].astype("boolean")
        frame.loc[rng.random(rows) < missing, name] = pd.NA
    frame[TARGET] = label
    return frame


def shift_shares(
    frame: pd.DataFrame, column: str, *, level: str | None = None, share: float = 0.5, seed: int = 0
) -> pd.DataFrame:
    """Return a copy where ``share`` of ``column``'s rows are set to ``level``.

    ``level`` defaults to the least common non-rare level, so its share jumps well past any
    PSI threshold (0.127 -> ~0.56 with the default ``share``).
    """
    import numpy as np

    out = frame.copy()
    level = level or LEVELS[-2]
    rng = np.random.default_rng(seed)
    out.loc[rng.random(len(out)) < share, column] = level
    return out


def add_missing(frame: pd.DataFrame, column: str, *, share: float = 0.3, seed: int = 0) -> pd.DataFrame:
    """Return a copy where a further ``share`` of ``column``'s rows are missing."""
    import numpy as np
    import pandas as pd

    out = frame.copy()
    rng = np.random.default_rng(seed)
    mask = rng.random(len(out)) < share
    if out[column].dtype == object:
        out[column] = out[column].where(~mask, None)
    else:
        out.loc[mask, column] = pd.NA if str(out[column].dtype) == "boolean" else np.nan
    return out


def shift_mean(frame: pd.DataFrame, column: str, *, by: float = 1.0) -> pd.DataFrame:
    """Return a copy where numeric ``column`` moves by ``by`` of its standard deviations."""
    out = frame.copy()
    out[column] = out[column] + by * float(out[column].std())
    return out


def shifted(frame: pd.DataFrame, column: str, kind: str = "shares", **options: Any) -> pd.DataFrame:
    """Return a drifted copy of ``frame``: ``kind`` is ``shares``, ``missing`` or ``mean``."""
    shifts = {"shares": shift_shares, "missing": add_missing, "mean": shift_mean}
    if kind not in shifts:
        raise ValueError(f"unknown shift {kind!r}; expected one of {sorted(shifts)}")
    return shifts[kind](frame, column, **options)


def write(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write ``frame`` as CSV or Parquet, by the suffix of ``path`` (no index column)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    else:
        raise ValueError(f"{path}: expected a .csv, .parquet or .pq file")
    return path


def read(path: Path | str) -> pd.DataFrame:
    """Read a file ``write`` wrote, with the same dtypes (CSV flags come back as ``boolean``)."""
    import pandas as pd

    path = Path(path)
    if path.suffix.lower() == ".csv":
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
        for name in frame.columns:
            if name.startswith("flag_"):
                frame[name] = frame[name].map({"True": True, "False": False, True: True, False: False})
                frame[name] = frame[name].astype("boolean")
            elif frame[name].dtype == object:
                frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
        return frame
    return pd.read_parquet(path)


def _pins() -> list[str]:
    """Requirements of the data Python, pinned as the generated project pins them."""
    pyproject = (ROOT / "template" / "pyproject.toml.jinja").read_text()
    pins = []
    for package in ("numpy", "pandas", "pyarrow"):
        match = re.search(rf'"({package}==[^";]+)', pyproject)
        pins.append(match.group(1) if match else package)
    return pins


def data_python(folder: Path) -> Path:
    """Return a Python that can run this file: this one when it has pandas and pyarrow, else a
    venv made once in ``folder`` with the generated project's pins (uv's cache, so seconds).
    """
    try:
        import pandas  # noqa: F401
        import pyarrow  # noqa: F401

        return Path(sys.executable)
    except ImportError:
        pass
    python = folder / "bin" / "python"
    if not python.exists():
        uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
        subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(folder)], check=True)
        subprocess.run([uv, "pip", "install", "--quiet", "--python", str(python), *_pins()], check=True)
    return python


def generate(python: Path, out: Path, rows: int, **options: Any) -> Path:
    """Run this file with ``python`` to write a ``mixed_frame`` (options as keyword arguments)."""
    cmd = [str(python), str(Path(__file__).resolve()), "--rows", str(rows), "--out", str(out)]
    for key, value in options.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Write a mixed frame (or a shifted copy of an existing file) to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--out", type=Path, required=True, help="a .csv, .parquet or .pq file")
    parser.add_argument("--task", choices=("classification", "regression"), default="classification")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--numeric", type=int, default=6)
    parser.add_argument("--categorical", type=int, default=3)
    parser.add_argument("--boolean", type=int, default=1)
    parser.add_argument("--missing", type=float, default=0.05)
    parser.add_argument("--from", dest="source", type=Path, help="shift this file instead of generating")
    parser.add_argument(
        "--shift", action="append", default=[], metavar="COLUMN:KIND", help="KIND: shares, missing, mean"
    )
    parser.add_argument("--kinds", action="store_true", help="print {column: kind} as JSON")
    args = parser.parse_args(argv)
    if args.source:
        frame = read(args.source)
    else:
        frame = mixed_frame(
            args.rows,
            seed=args.seed,
            task=args.task,
            numeric=args.numeric,
            categorical=args.categorical,
            boolean=args.boolean,
            missing=args.missing,
        )
    for spec in args.shift:
        column, _, kind = spec.partition(":")
        frame = shifted(frame, column, kind or "shares", seed=args.seed)
    write(frame, args.out)
    if args.kinds:
        print(json.dumps({name: _kind(frame[name]) for name in frame.columns}))
    return 0


def _kind(series: Any) -> str:
    dtype = str(series.dtype)
    if dtype in ("bool", "boolean"):
        return "boolean"
    return "categorical" if dtype == "object" else "numeric"


if __name__ == "__main__":
    sys.exit(main())
