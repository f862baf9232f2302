"""Raw data loading and the train/test split.

The embedded default reads a dataset that ships inside scikit-learn, so the
pipeline runs offline.  Replace :func:`load_raw` to read your own data; keep
its contract: one DataFrame of numeric features plus a ``target`` column.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from sklearn import datasets
from sklearn.model_selection import train_test_split

TARGET = "target"
_LOADERS = {
    "breast_cancer": datasets.load_breast_cancer,
    "diabetes": datasets.load_diabetes,
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
}


def column_name(name: str) -> str:
    """Normalise a column name to ``snake_case`` (a valid API field name)."""
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()


def load_raw(dataset: str) -> pd.DataFrame:
    """Load ``dataset`` as features + ``target``, with snake_case column names."""
    try:
        loader = _LOADERS[dataset]
    except KeyError:
        raise ValueError(
            f"unknown dataset {dataset!r}; expected one of {sorted(_LOADERS)}"
        ) from None
    bunch = loader(as_frame=True)
    frame: pd.DataFrame = bunch.frame.copy()
    frame.columns = [column_name(str(c)) for c in frame.columns]
    return frame


def split(
    frame: pd.DataFrame, *, test_size: float, random_state: int, stratify: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split into train and test sets (stratified on the target for classification)."""
    train, test = train_test_split(
        frame,
        test_size=test_size,
        random_state=random_state,
        stratify=frame[TARGET] if stratify else None,
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def read_split(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the prepared ``train.csv`` and ``test.csv`` from ``folder``."""
    missing = [n for n in ("train.csv", "test.csv") if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: missing {', '.join(missing)}; run `make pipeline`")
    return pd.read_csv(folder / "train.csv"), pd.read_csv(folder / "test.csv")


def features_and_target(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Separate the feature columns from the target column."""
    return frame.drop(columns=[TARGET]), frame[TARGET]
