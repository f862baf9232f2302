"""``python -m <package> drift``: check a batch of data for drift against the serving bundle.

    python -m <package> drift --current batch.csv [--reference train.csv] [--out reports/drift]

The batch (CSV or Parquet) is read as the model reads it: the columns of the bundle's
``schema.json``, converted like the data contract converts training data (numeric and
boolean to float, categorical to text).  Writes ``drift.json`` and a self-contained
``drift.html``; exits 1 when drift crosses the ``drift:`` thresholds of params.yaml (so CI
can trigger retraining) and 2 on bad input.  ``make drift CURRENT=<file>`` runs it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import bundle, contract
from ..data import read_table
from ..settings import load_settings
from .detector import DriftDetector
from .report import evidently_report, write_reports


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the drift check's options on ``parser`` (the project CLI's sub-command)."""
    parser.add_argument("--current", type=Path, required=True, help="CSV/Parquet batch to check")
    parser.add_argument(
        "--reference",
        type=Path,
        help="full reference CSV/Parquet to profile (default: the bundle's reference.json)",
    )
    parser.add_argument(
        "--bundle", type=Path, help="serving bundle folder (default: models/bundle)"
    )
    parser.add_argument(
        "--out", type=Path, help="folder of drift.json and drift.html (default: reports/drift)"
    )
    parser.add_argument(
        "--no-predictions", action="store_true", help="skip prediction drift (no model load)"
    )
    parser.add_argument(
        "--evidently", action="store_true", help="also write an Evidently report if installed"
    )


def schema_contract(schema: Mapping[str, Any]) -> contract.Contract:
    """Rebuild the data contract the bundle's model was trained on from its ``schema.json``."""
    columns = tuple(
        contract.Column(
            name=f["name"],
            kind=f.get("kind", "numeric"),
            nullable=bool(f.get("nullable", True)),
            min=f.get("min"),
            max=f.get("max"),
            categories=tuple(f["categories"]) if f.get("categories") else None,
        )
        for f in schema["features"]
    )
    classification = schema.get("task") == "classification"
    target = contract.Target(
        name=str(schema.get("target", "target")),
        kind="categorical" if classification else "numeric",
        classes=tuple(schema.get("classes") or ()) or None,
    )
    return contract.Contract(columns, target, dict(schema.get("excluded") or {}))


def model_input(path: Path, data_contract: contract.Contract) -> pd.DataFrame:
    """Read the table at ``path`` in model-input form (the contract's ``coerce``)."""
    try:
        frame = contract.coerce(read_table(path), data_contract)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
    if frame.empty:
        raise ValueError(f"{path}: no rows to check")
    return frame


def _load_model(bundle_dir: Path) -> Any:
    if not (bundle_dir / bundle.MODEL_DIR).is_dir():
        raise FileNotFoundError(
            f"{bundle_dir / bundle.MODEL_DIR} not found: run `make pipeline` first "
            "or pass --no-predictions"
        )
    return bundle.load_model(bundle_dir)


def run(args: argparse.Namespace) -> int:
    """Run the check; 0 no drift, 1 drift past the thresholds, 2 bad input."""
    try:
        settings = load_settings()
        bundle_dir = args.bundle or settings.bundle_dir
        out = args.out or settings.reports_dir / "drift"
        params = settings.params.drift
        schema = bundle.read_json(bundle_dir / bundle.SCHEMA_FILE)
        data_contract = schema_contract(schema)
        current = model_input(args.current, data_contract)
        model = None if args.no_predictions else _load_model(bundle_dir)
        reference = None
        if args.reference is not None:
            reference = model_input(args.reference, data_contract)
            detector = DriftDetector.from_frame(
                reference,
                params,
                schema=schema,
                predictions=None if model is None else np.asarray(model.predict(reference)),
                bins=settings.params.reference.bins,
            )
        else:
            detector = DriftDetector.from_bundle(bundle_dir, params)
        predictions = None if model is None else np.asarray(model.predict(current))
        report = detector.check(current, predictions)
    except (OSError, ValueError, KeyError) as error:
        print(f"drift: error: {error}", file=sys.stderr)
        return 2
    paths = write_reports(report, out)
    if args.evidently:
        if reference is None:
            stats = bundle.read_json(bundle_dir / bundle.REFERENCE_FILE)["features"]
            reference = pd.DataFrame({n: stats[n]["sample"] for n in data_contract.feature_names})
        written = evidently_report(reference, current, out / "evidently.html")
        print("drift: evidently report written" if written else "drift: evidently not installed")
    prediction = report.prediction
    print(
        f"drift check {'FAILED' if report.failed else 'passed'}: "
        f"{len(report.drifted_features)}/{len(report.features)} features drifted "
        f"{report.drifted_features}; prediction "
        f"{'drifted' if prediction and prediction.drifted else 'stable'}; "
        f"reports: {paths['json']}, {paths['html']}"
    )
    return 1 if report.failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m <package>.drift`` (the same as ``python -m <package> drift``)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__}", description=__doc__.splitlines()[0]
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
