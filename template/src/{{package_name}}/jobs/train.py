"""Stage ``train``: fit the model, log it to MLflow, write the serving bundle."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from .. import bundle
from ..contract import Contract, split_target
from ..features import build_model
from ..services import lineage, tracking
from ..settings import Settings
from .evaluate import compute_metrics, read_prepared, score

# Train metrics (and the reference's prediction shares) on at most this many training rows.
TRAIN_METRIC_ROWS = 100_000


def fit(
    settings: Settings,
    train: pd.DataFrame,
    contract: Contract | None = None,
    hyperparameters: dict[str, Any] | None = None,
) -> Pipeline:
    """Fit the configured estimator on ``train`` (no side effects)."""
    contract = contract or settings.contract()
    features, target = split_target(train, contract)
    return fit_features(settings, features, target, contract, hyperparameters)


def fit_features(
    settings: Settings,
    features: pd.DataFrame,
    target: pd.Series,
    contract: Contract,
    hyperparameters: dict[str, Any] | None = None,
) -> Pipeline:
    """Fit the configured estimator on model input already split from the target."""
    params = settings.params.train
    model = build_model(
        settings.task,
        params.estimator,
        params.hyperparameters() if hyperparameters is None else hyperparameters,
        params.random_state,
        contract,
    )
    model.fit(features, target)
    return model


def metric_rows(
    rows: int, must: np.ndarray, seed: int, limit: int = TRAIN_METRIC_ROWS
) -> np.ndarray | None:
    """Pick the training rows the train metrics and reference predictions are computed on.

    ``None`` (every row) up to ``limit`` rows; above, a seeded sample of ``limit`` rows plus
    the rows in ``must`` (the reference sample and the signature's rows, whose predictions
    are needed), sorted.  A prediction pass over a million rows costs more than the rest of
    the stage after the fit; on a sample of 100,000 rows a rate such as accuracy is within
    about 0.003 (two standard errors) of its value on every row.
    """
    if rows <= limit:
        return None
    picked = np.random.default_rng(seed).choice(rows, size=limit, replace=False)
    return np.union1d(picked, must).astype(np.intp)


def data_facts(settings: Settings, contract: Contract, rows: int) -> dict[str, Any]:
    """Collect what the model card and lineage say about the data: source, hash, target."""
    data = settings.params.data
    facts: dict[str, Any] = {
        "source": data.source,
        "raw_hash": lineage.raw_data_hash(settings),
        "rows": rows,
        "target": contract.target.name,
        "classes": None if contract.target.classes is None else list(contract.target.classes),
        "excluded": dict(contract.excluded),
    }
    if data.source == "demo":
        facts["dataset"] = data.dataset
    elif data.source == "file":
        facts["path"] = data.path
    elif data.sql is not None:
        facts["query"] = data.sql.query
        facts["url_env"] = data.sql.url_env
    return facts


def signature_rows(features: pd.DataFrame, rows: int = 1000) -> np.ndarray:
    """Pick the rows to infer the MLflow signature from.

    The first ``rows``, plus, for each column with missing values, a row where it is missing
    (the signature then marks it optional).
    Inferring from every row costs a Python call per value: half a minute on a million rows.
    """
    picked = list(range(min(rows, len(features))))
    for name in features.columns:
        missing = np.flatnonzero(features[name].isna().to_numpy())
        if missing.size:
            picked.append(int(missing[0]))
    return np.array(sorted(set(picked)), dtype=np.intp)


def _flat_params(settings: Settings) -> dict[str, Any]:
    params = settings.params
    flat: dict[str, Any] = {
        "data_source": params.data.source,
        "dataset": params.data.dataset or params.data.path or "sql",
        "target": params.data.target,
        "test_size": params.prepare.test_size,
        "split_seed": params.prepare.random_state,
        "estimator": params.train.estimator,
        "random_state": params.train.random_state,
    }
    flat.update(
        {f"{params.train.estimator}.{k}": v for k, v in params.train.hyperparameters().items()}
    )
    return flat


def run(settings: Settings) -> dict[str, Any]:
    """Train, log params/metrics/lineage/model to MLflow and write ``models/bundle``."""
    import mlflow
    import mlflow.artifacts
    import mlflow.sklearn
    from mlflow.models import infer_signature

    contract = settings.contract()
    train = read_prepared(settings, "train")
    features, target = split_target(train, contract)
    del train
    params = settings.params
    model = fit_features(settings, features, target, contract)
    # the rows whose predictions are kept: the reference sample and the signature's rows
    reference_rows = bundle.sample_rows(
        len(features), params.reference.sample_size, params.train.random_state
    )
    picked = signature_rows(features)
    rows = metric_rows(len(features), np.union1d(reference_rows, picked), params.train.random_state)
    scored_features = features if rows is None else features.iloc[rows]
    scored_target = target if rows is None else target.iloc[rows]
    scored = score(settings.task, model, scored_features)
    predictions = scored[0]
    train_metrics = compute_metrics(settings.task, model, scored_features, scored_target, scored)

    commit = lineage.git_commit(settings.root)
    data_hash = lineage.dvc_output_hash(settings.root, "prepare", "data/prepared")
    at = picked if rows is None else np.searchsorted(rows, picked)  # positions among the scored
    signature = infer_signature(features.iloc[picked], predictions[at])
    example = features.head(3)
    options = tracking.model_options(model)

    with tracking.run(settings, run_name=f"train-{settings.params.train.estimator}") as active:
        mlflow.log_params(_flat_params(settings))
        mlflow.log_metrics({f"train_{k}": v for k, v in train_metrics.items()})
        mlflow.set_tags(
            {
                "git_commit": commit,
                "data_hash": data_hash,
                "data_source": settings.params.data.source,
                "raw_data_hash": lineage.raw_data_hash(settings),
                "stage": "train",
            }
        )
        logged = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            input_example=example,
            **options,
        )
        run_id = active.info.run_id

    out = settings.bundle_dir
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    # The bundle's model is the logged one, copied: serialising (and MLflow's reload check)
    # once, not twice.  Its MLmodel also names the run (run_id) and the logged model (model_id).
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    (out / bundle.MODEL_DIR).mkdir()
    mlflow.artifacts.download_artifacts(
        artifact_uri=logged.model_uri, dst_path=str(out / bundle.MODEL_DIR)
    )
    # written by the download of a models:/ URI (no registered name yet); save_model has none
    (out / bundle.MODEL_DIR / "registered_model_meta").unlink(missing_ok=True)
    bundle.write_json(out / bundle.SCHEMA_FILE, bundle.build_schema(contract))
    bundle.write_json(
        out / bundle.REFERENCE_FILE,
        bundle.build_reference(
            features,
            predictions,
            contract,
            bins=params.reference.bins,
            sample_size=params.reference.sample_size,
            seed=params.train.random_state,
            prediction_rows=rows,
        ),
    )
    metadata = {
        "model_name": settings.model_name,
        "run_id": run_id,
        "model_id": getattr(logged, "model_id", None),
        "model_uri": logged.model_uri,
        "experiment": settings.experiment_name,
        "git_commit": commit,
        "data_hash": data_hash,
        "task": settings.task,
        "estimator": settings.params.train.estimator,
        "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "train_metrics": train_metrics,
        "train_metrics_rows": len(features) if rows is None else len(rows),
        "data": data_facts(settings, contract, len(features)),
    }
    bundle.write_json(out / bundle.METADATA_FILE, metadata)
    print(f"train: run {run_id}, train metrics {train_metrics} -> {out}")
    return metadata
