"""Raw data in, and the train/test split.

``params.yaml`` ``data.source`` says where the training table comes from:

* ``demo``: a dataset that ships inside scikit-learn (``data.dataset``): runs offline;
* ``file``: a CSV or Parquet file under ``data/raw/`` (``data.path``), tracked by DVC;
* ``sql``: a query (``data.sql.query``) against the database whose SQLAlchemy URL is in the
  environment variable ``data.sql.url_env``; the ``ingest`` stage snapshots the result to
  ``data/raw/snapshot.parquet`` (tracked by DVC), and every later stage reads the snapshot.

The data contract (``data/contract.yaml``, see :mod:`.contract`) then says which columns
are model input and what they must look like.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from .settings import DataParams, Settings

# scikit-learn's loader of each demo dataset; scikit-learn is imported where it is used (about
# a second), so commands that read no demo data and split nothing start without it
_LOADERS = {
    "breast_cancer": "load_breast_cancer",
    "diabetes": "load_diabetes",
    "iris": "load_iris",
    "wine": "load_wine",
}
SPLIT_FILES = ("train.parquet", "test.parquet")


class DataSourceError(ValueError):
    """The raw data cannot be read (the message says why and what to do)."""


def column_name(name: str) -> str:
    """Normalise a column name to ``snake_case``."""
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()


def load_demo(dataset: str, target: str = "target") -> pd.DataFrame:
    """Load a scikit-learn bundled dataset as features + ``target``, snake_case names."""
    try:
        loader = _LOADERS[dataset]
    except KeyError:
        raise DataSourceError(
            f"unknown dataset {dataset!r}; expected one of {sorted(_LOADERS)}"
        ) from None
    from sklearn import datasets

    bunch = getattr(datasets, loader)(as_frame=True)
    frame: pd.DataFrame = bunch.frame.copy()
    frame.columns = [column_name(str(c)) for c in frame.columns]
    return frame.rename(columns={"target": target})


def table_format(path: Path) -> str:
    """Return ``csv`` or ``parquet`` for a table file (by suffix) or a folder of Parquet files."""
    if path.is_dir():
        return "parquet"  # a folder of Parquet parts (Spark writes one)
    if not path.is_file():
        raise DataSourceError(f"{path} not found; `make pull` fetches DVC-tracked data")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".csv":
        return "csv"
    raise DataSourceError(f"{path}: expected a .csv, .parquet or .pq file")


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file (by suffix) with the fast pyarrow readers."""
    kind = table_format(path)
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, engine="pyarrow")
    except (OSError, ValueError) as error:
        raise DataSourceError(f"{path}: cannot be read as {kind} ({error})") from None


def table_columns(path: Path) -> list[str]:
    """Return the column names of a table without reading its rows (Parquet: the footer)."""
    import pyarrow.csv as pa_csv
    import pyarrow.dataset as ds

    kind = table_format(path)
    try:
        if kind == "parquet":
            return list(ds.dataset(path, format="parquet").schema.names)
        with pa_csv.open_csv(path) as reader:
            return list(reader.schema.names)
    except (OSError, ValueError) as error:
        raise DataSourceError(f"{path}: cannot be read as {kind} ({error})") from None


def _csv_error(path: Path, error: Exception, names: list[str]) -> DataSourceError:
    """Name the column of a pyarrow CSV error (it gives its position)."""
    message = str(error).splitlines()[0]
    found = re.search(r"CSV column #(\d+)", message)
    if found and int(found.group(1)) < len(names):
        message = f"column {names[int(found.group(1))]!r}: {message}"
    return DataSourceError(f"{path}: {message}")


def iter_table(
    path: Path,
    columns: list[str],
    *,
    batch_rows: int,
    numbers: tuple[str, ...] = (),
    texts: tuple[str, ...] = (),
) -> Iterator[pd.DataFrame]:
    """Stream ``columns`` of a CSV or Parquet table as frames of at most ``batch_rows`` rows.

    Memory stays bounded by one batch (Parquet: one row group) whatever the table's size.
    CSV has no types: ``numbers`` are read as float64 and ``texts`` as text (missing when
    empty), the others inferred.  A value that does not parse raises :class:`DataSourceError`
    naming its column.
    """
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    kind = table_format(path)
    if kind == "parquet":
        try:
            if path.is_file():  # one file: row group by row group, nothing read ahead
                parquet = pq.ParquetFile(path, pre_buffer=False)
                batches = parquet.iter_batches(batch_size=batch_rows, columns=columns)
            else:  # a folder of parts, one at a time
                batches = ds.dataset(path, format="parquet").to_batches(
                    columns=columns, batch_size=batch_rows, batch_readahead=1, fragment_readahead=1
                )
            for batch in batches:
                if batch.num_rows:
                    yield batch.to_pandas()
        except (OSError, pa.ArrowException) as error:
            raise DataSourceError(f"{path}: cannot be read as parquet ({error})") from None
        return
    names = table_columns(path)
    types = {name: pa.float64() for name in numbers}
    types.update({name: pa.string() for name in texts})
    # Blocks of about batch_rows rows (~16 bytes a CSV value), within 1 MiB .. 256 MiB.
    block = min(max(batch_rows * max(len(names), 1) * 16, 1 << 20), 256 << 20)
    try:
        reader = pa_csv.open_csv(
            path,
            read_options=pa_csv.ReadOptions(block_size=block),
            convert_options=pa_csv.ConvertOptions(
                column_types=types,
                include_columns=columns,
                strings_can_be_null=True,
            ),
        )
        with reader:
            for batch in reader:
                for start in range(0, batch.num_rows, batch_rows):
                    yield batch.slice(start, batch_rows).to_pandas()
    except (OSError, pa.ArrowException) as error:
        raise _csv_error(path, error, names) from None


def _masked(url: str) -> str:
    """Return a database URL with its password replaced (messages never show it)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def read_sql(data: DataParams) -> pd.DataFrame:
    """Run the training query against the database named by ``data.sql.url_env``."""
    sql = data.sql
    if sql is None:
        raise DataSourceError("params.yaml: data.sql (url_env, query) is required for source sql")
    url = os.environ.get(sql.url_env, "")
    if not url:
        raise DataSourceError(
            f"environment variable {sql.url_env} is not set: export the SQLAlchemy URL of the "
            f"database in {sql.url_env} (CI: a secret variable); it is never written to a file"
        )
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        engine = create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ValueError, ImportError) as error:
        raise DataSourceError(
            f"the URL in {sql.url_env} is not a usable SQLAlchemy URL ({type(error).__name__})"
        ) from None
    try:
        with engine.connect() as connection:
            frame = pd.read_sql_query(text(sql.query), connection)
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        # Drivers may echo the URL: never let the password reach a log.
        reason = reason.replace(url, _masked(url))
        password = re.search(r"://[^:/@]+:([^@]*)@", url)
        if password and password.group(1):
            reason = reason.replace(password.group(1), "***")
        raise DataSourceError(
            f"the query against the database in {sql.url_env} failed: {reason}"
        ) from None
    finally:
        engine.dispose()
    if frame.empty:
        raise DataSourceError(
            f"the query against the database in {sql.url_env} returned no rows: {sql.query!r}"
        )
    return frame


def load_raw(settings: Settings) -> pd.DataFrame:
    """Load the raw training table of the configured source (sql: the DVC-tracked snapshot)."""
    data = settings.params.data
    if data.source == "demo":
        return load_demo(data.dataset or "", data.target)
    if data.source == "file":
        if not data.path:
            raise DataSourceError("params.yaml: data.path is required for source file")
        return read_table(settings.root / data.path)
    snapshot = settings.snapshot_path
    if not snapshot.is_file():
        raise DataSourceError(f"{snapshot} not found: run `make ingest` (or `make pull`)")
    return read_table(snapshot)


def split(
    frame: pd.DataFrame, *, target: str, test_size: float, random_state: int, stratify: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split into train and test sets (stratified on the target for classification)."""
    from sklearn.model_selection import train_test_split

    try:
        train, test = train_test_split(
            frame,
            test_size=test_size,
            random_state=random_state,
            stratify=frame[target] if stratify else None,
        )
    except ValueError as error:
        raise DataSourceError(
            f"cannot split {len(frame)} rows with test_size {test_size}: {error}"
        ) from None
    return train.reset_index(drop=True), test.reset_index(drop=True)


def read_split(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the prepared ``train.parquet`` and ``test.parquet`` from ``folder``."""
    missing = [n for n in SPLIT_FILES if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: missing {', '.join(missing)}; run `make pipeline`")
    return pd.read_parquet(folder / SPLIT_FILES[0]), pd.read_parquet(folder / SPLIT_FILES[1])
