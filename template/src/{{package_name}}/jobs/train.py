"""Stage ``train``: fit the model, log it to MLflow, write the serving bundle."""

from __future__ import annotations

import datetime as dt
import shutil
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from .. import bundle
from ..contract import Contract, split_target
from ..data import read_split
from ..features import build_model
from ..services import lineage, tracking
from ..settings import Settings
from .evaluate import compute_metrics, score


def fit(
    settings: Settings,
    train: pd.DataFrame,
    contract: Contract | None = None,
    hyperparameters: dict[str, Any] | None = None,
) -> Pipeline:
    """Fit the configured estimator on ``train`` (no side effects)."""
    params = settings.params.train
    contract = contract or settings.contract()
    model = build_model(
        settings.task,
        params.estimator,
        params.hyperparameters() if hyperparameters is None else hyperparameters,
        params.random_state,
        contract,
    )
    features, target = split_target(train, contract)
    model.fit(features, target)
    return model


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
    import mlflow.sklearn
    from mlflow.models import infer_signature

    contract = settings.contract()
    train, _ = read_split(settings.prepared_dir)
    model = fit(settings, train, contract)
    features, target = split_target(train, contract)
    scored = score(settings.task, model, features)
    predictions = scored[0]
    train_metrics = compute_metrics(settings.task, model, features, target, scored)

    commit = lineage.git_commit(settings.root)
    data_hash = lineage.dvc_output_hash(settings.root, "prepare", "data/prepared")
    rows = signature_rows(features)
    signature = infer_signature(features.iloc[rows], predictions[rows])
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
    mlflow.sklearn.save_model(
        model,
        str(out / bundle.MODEL_DIR),
        signature=signature,
        input_example=example,
        **options,
    )
    bundle.write_json(out / bundle.SCHEMA_FILE, bundle.build_schema(contract))
    bundle.write_json(
        out / bundle.REFERENCE_FILE,
        bundle.build_reference(
            features,
            predictions,
            contract,
            bins=settings.params.reference.bins,
            sample_size=settings.params.reference.sample_size,
            seed=settings.params.train.random_state,
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
        "data": data_facts(settings, contract, len(train)),
    }
    bundle.write_json(out / bundle.METADATA_FILE, metadata)
    print(f"train: run {run_id}, train metrics {train_metrics} -> {out}")
    return metadata
