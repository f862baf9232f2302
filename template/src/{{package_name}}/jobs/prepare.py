"""Stage ``prepare``: validate the raw data against the contract, then split it.

A violation writes ``reports/validation.json`` and fails the stage, so no later stage
runs: the previous model, serving bundle and registry stay as they were.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import bundle
from ..contract import Contract, ValidationReport, validate
from ..data import SPLIT_FILES, load_raw, split
from ..settings import Settings


class ValidationFailedError(ValueError):
    """The raw data breaks the data contract (the message lists each failed check)."""


def check(settings: Settings) -> tuple[Contract, pd.DataFrame, ValidationReport]:
    """Validate the raw data; write ``reports/validation.json``; raise on a violation."""
    contract = settings.contract()
    frame = load_raw(settings)
    report = validate(frame, contract)
    bundle.write_json(settings.validation_path, report.to_dict())
    if not report.passed:
        raise ValidationFailedError(
            f"{report.summary()}\n(details: {settings.validation_path.relative_to(settings.root)};"
            " fix the data, or widen data/contract.yaml if the change is legitimate)"
        )
    print(report.summary())
    return contract, frame, report


def run(settings: Settings) -> dict[str, Path]:
    """Write ``data/prepared/{train,test}.parquet`` (contract columns and the target)."""
    contract, raw, _ = check(settings)
    params = settings.params
    columns = [*contract.feature_names, contract.target.name]
    # the split copies the rows anyway: select the columns only when there are others
    frame = raw if list(raw.columns) == columns else raw[columns]
    train, test = split(
        frame,
        target=contract.target.name,
        test_size=params.prepare.test_size,
        random_state=params.prepare.random_state,
        stratify=contract.task == "classification",
    )
    out = settings.prepared_dir
    out.mkdir(parents=True, exist_ok=True)
    paths = {"train": out / SPLIT_FILES[0], "test": out / SPLIT_FILES[1]}
    train.to_parquet(paths["train"], index=False)
    test.to_parquet(paths["test"], index=False)
    print(f"prepare: {len(train)} train rows, {len(test)} test rows -> {out}")
    return paths
