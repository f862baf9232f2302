"""The serving bundle: model + input schema + reference statistics + lineage.

Layout of ``models/bundle/`` (a DVC output of the ``train`` stage)::

    model/           MLflow model (flavour sklearn + pyfunc), loadable offline
    schema.json      the model input from the data contract: kinds, ranges, categories
    reference.json   per-feature statistics, histogram bins and a sample (drift)
    metadata.json    lineage: MLflow run id, git commit, DVC data hash, versions

The serving app and the drift check read only this folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .contract import Contract

SCHEMA_FILE = "schema.json"
REFERENCE_FILE = "reference.json"
METADATA_FILE = "metadata.json"
MODEL_DIR = "model"


def build_schema(contract: Contract) -> dict[str, Any]:
    """Describe the model input from the data contract: one entry per feature, in order."""
    features = []
    for col in contract.columns:
        entry: dict[str, Any] = {
            "name": col.name,
            "kind": col.kind,
            "dtype": "object" if col.kind == "categorical" else "float64",
            "nullable": col.nullable,
        }
        if col.kind == "numeric":
            entry["min"], entry["max"] = col.min, col.max
        if col.kind == "categorical":
            entry["categories"] = list(col.categories or ())
        features.append(entry)
    schema: dict[str, Any] = {
        "task": contract.task,
        "target": contract.target.name,
        "features": features,
        "excluded": dict(contract.excluded),
    }
    if contract.target.classes is not None:
        schema["classes"] = list(contract.target.classes)
    return schema


def _histogram(values: np.ndarray, bins: int) -> dict[str, list[float]]:
    # Quantile edges keep every bin populated for skewed features (stable PSI).
    if values.size == 0:
        return {"edges": [0.0, 1.0], "fractions": [1.0]}
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)))
    if edges.size < 2:
        edges = np.array([values.min() - 0.5, values.max() + 0.5])
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    return {
        "edges": [float(e) for e in edges],
        "fractions": [float(c) / max(int(counts.sum()), 1) for c in counts],
    }


def _numeric_stats(values: np.ndarray, bins: int) -> dict[str, Any]:
    present = values[~np.isnan(values)]
    if present.size == 0:
        present = np.zeros(1)
    quantiles = np.quantile(present, [0.05, 0.25, 0.5, 0.75, 0.95])
    return {
        "kind": "numeric",
        "mean": float(present.mean()),
        "std": float(present.std()),
        "min": float(present.min()),
        "max": float(present.max()),
        "quantiles": {
            str(q): float(v) for q, v in zip((0.05, 0.25, 0.5, 0.75, 0.95), quantiles, strict=True)
        },
        "histogram": _histogram(present, bins),
    }


def _category_stats(values: pd.Series, categories: list[str]) -> dict[str, Any]:
    present = values.dropna()
    counts = present.value_counts()
    total = max(int(counts.sum()), 1)
    return {
        "kind": "categorical",
        "categories": categories,
        "fractions": [float(counts.get(c, 0)) / total for c in categories],
    }


def _json_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def sample_rows(rows: int, sample_size: int, seed: int) -> np.ndarray:
    """Return the sorted row numbers of the reference sample of a ``rows``-row frame."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(rows, size=min(sample_size, rows), replace=False))


def build_reference(
    frame: pd.DataFrame,
    predictions: np.ndarray,
    contract: Contract,
    *,
    bins: int,
    sample_size: int,
    seed: int,
    prediction_rows: np.ndarray | None = None,
) -> dict[str, Any]:
    """Compute reference statistics of the training features and predictions (drift, serving).

    ``frame`` is the model input frame (:func:`.contract.coerce`).  Every ``sample`` is taken
    at the same rows (:func:`sample_rows`), so the samples zip into rows; ``None`` is a
    missing value.  ``predictions`` are those of every row of ``frame``, or of the sorted
    ``prediction_rows`` only (a sample that contains the reference sample's rows): the
    prediction statistics are then those of that sample.
    """
    n = len(frame)
    idx = sample_rows(n, sample_size, seed)
    at = idx
    if prediction_rows is not None:
        if not np.isin(idx, prediction_rows).all():
            raise ValueError("prediction_rows must contain every row of the reference sample")
        at = np.searchsorted(prediction_rows, idx)
    stats: dict[str, Any] = {}
    for col in contract.columns:
        series = frame[col.name]
        missing = float(series.isna().mean()) if n else 0.0
        if col.kind == "numeric":
            entry = _numeric_stats(series.to_numpy(dtype=np.float64), bins)
        elif col.kind == "boolean":
            labels = series.map({1.0: "true", 0.0: "false"})
            entry = {**_category_stats(labels, ["false", "true"]), "kind": "boolean"}
        else:
            entry = _category_stats(series, list(col.categories or ()))
        entry["missing"] = missing
        entry["sample"] = [_json_value(v) for v in series.iloc[idx].tolist()]
        stats[col.name] = entry
    preds = np.asarray(predictions)
    prediction: dict[str, Any]
    if contract.task == "classification":
        classes = [str(c) for c in contract.target.classes or ()]
        labels = pd.Series([str(v) for v in preds.tolist()])
        prediction = _category_stats(labels, classes)
        prediction["sample"] = [_json_value(v) for v in preds[at].tolist()]
    else:
        values = preds.astype(np.float64)
        prediction = {
            "kind": "numeric",
            "mean": float(values.mean()),
            "histogram": _histogram(values, bins),
            "sample": [float(v) for v in values[at]],
        }
    return {"rows": n, "features": stats, "prediction": prediction}


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as stable, readable JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object written by :func:`write_json`."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run `make pipeline` first")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def load_model(bundle_dir: Path) -> Any:
    """Load the bundle's scikit-learn model.

    A model in MLflow's skops format (the one training writes) is read by skops itself,
    trusting the types its ``MLmodel`` lists, as MLflow's own loader does: importing MLflow
    would add a second to every start that loads the bundle (the API, batch scoring, the
    drift check).  Any other model (pickled, or with code files) loads through MLflow.
    """
    import yaml

    folder = bundle_dir / MODEL_DIR
    try:
        meta = yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8"))
        flavor = dict(meta["flavors"]["sklearn"])
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        flavor = {}  # MLflow reads it, and says what is wrong
    if flavor.get("serialization_format") == "skops" and not flavor.get("code"):
        import skops.io

        trusted = flavor.get("skops_trusted_types")
        return skops.io.load(folder / flavor["pickled_model"], trusted=trusted)
    import mlflow.sklearn

    return mlflow.sklearn.load_model(str(folder))
