"""The serving bundle: model + input schema + reference statistics + lineage.

Layout of ``models/bundle/`` (a DVC output of the ``train`` stage)::

    model/           MLflow model (flavour sklearn + pyfunc), loadable offline
    schema.json      feature names, dtypes and training ranges, target, classes
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

SCHEMA_FILE = "schema.json"
REFERENCE_FILE = "reference.json"
METADATA_FILE = "metadata.json"
MODEL_DIR = "model"


def build_schema(features: pd.DataFrame, target: pd.Series, task: str) -> dict[str, Any]:
    """Describe the model input: one entry per feature, in training order."""
    schema: dict[str, Any] = {
        "task": task,
        "target": str(target.name),
        "features": [
            {
                "name": str(col),
                "dtype": str(features[col].dtype),
                "min": float(features[col].min()),
                "max": float(features[col].max()),
            }
            for col in features.columns
        ],
    }
    if task == "classification":
        schema["classes"] = sorted(int(c) for c in pd.unique(target))
    return schema


def _histogram(values: np.ndarray, bins: int) -> dict[str, list[float]]:
    # Quantile edges keep every bin populated for skewed features (stable PSI).
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)))
    if edges.size < 2:
        edges = np.array([values.min() - 0.5, values.max() + 0.5])
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    return {
        "edges": [float(e) for e in edges],
        "fractions": [float(c) / max(int(counts.sum()), 1) for c in counts],
    }


def build_reference(
    features: pd.DataFrame,
    predictions: np.ndarray,
    *,
    bins: int,
    sample_size: int,
    seed: int,
) -> dict[str, Any]:
    """Compute reference statistics of the training features and predictions."""
    rng = np.random.default_rng(seed)
    n = len(features)
    idx = np.sort(rng.choice(n, size=min(sample_size, n), replace=False))
    stats: dict[str, Any] = {}
    for col in features.columns:
        values = features[col].to_numpy(dtype=float)
        stats[str(col)] = {
            "mean": float(values.mean()),
            "std": float(values.std()),
            "min": float(values.min()),
            "max": float(values.max()),
            "quantiles": {
                str(q): float(v)
                for q, v in zip(
                    (0.05, 0.25, 0.5, 0.75, 0.95),
                    np.quantile(values, [0.05, 0.25, 0.5, 0.75, 0.95]),
                    strict=True,
                )
            },
            "histogram": _histogram(values, bins),
            "sample": [float(v) for v in values[idx]],
        }
    preds = np.asarray(predictions, dtype=float)
    return {
        "rows": n,
        "features": stats,
        "prediction": {
            "mean": float(preds.mean()),
            "histogram": _histogram(preds, bins),
            "sample": [float(v) for v in preds[idx]],
        },
    }


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
    """Load the bundle's scikit-learn model (imports MLflow lazily)."""
    import mlflow.sklearn

    return mlflow.sklearn.load_model(str(bundle_dir / MODEL_DIR))
