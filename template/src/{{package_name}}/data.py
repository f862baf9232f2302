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
from pathlib import Path

import pandas as pd
from sklearn import datasets
from sklearn.model_selection import train_test_split

from .settings import DataParams, Settings

_LOADERS = {
    "breast_cancer": datasets.load_breast_cancer,
    "diabetes": datasets.load_diabetes,
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
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
    bunch = loader(as_frame=True)
    frame: pd.DataFrame = bunch.frame.copy()
    frame.columns = [column_name(str(c)) for c in frame.columns]
    return frame.rename(columns={"target": target})


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file (by suffix) with the fast pyarrow readers."""
    if not path.is_file():
        raise DataSourceError(f"{path} not found; `make pull` fetches DVC-tracked data")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix == ".csv":
            return pd.read_csv(path, engine="pyarrow")
    except (OSError, ValueError) as error:
        raise DataSourceError(f"{path}: cannot be read as {suffix[1:]} ({error})") from None
    raise DataSourceError(f"{path}: expected a .csv, .parquet or .pq file")


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
