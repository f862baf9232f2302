"""Stage ``prepare``: load the raw dataset and write the train/test split."""

from __future__ import annotations

from pathlib import Path

from ..data import load_raw, split
from ..settings import Settings


def run(settings: Settings) -> dict[str, Path]:
    """Write ``data/prepared/{train,test}.csv``."""
    params = settings.params
    frame = load_raw(params.data.dataset)
    train, test = split(
        frame,
        test_size=params.prepare.test_size,
        random_state=params.prepare.random_state,
        stratify=settings.task == "classification",
    )
    out = settings.prepared_dir
    out.mkdir(parents=True, exist_ok=True)
    paths = {"train": out / "train.csv", "test": out / "test.csv"}
    train.to_csv(paths["train"], index=False)
    test.to_csv(paths["test"], index=False)
    print(f"prepare: {len(train)} train rows, {len(test)} test rows -> {out}")
    return paths
