"""Stage ``train``: fit the model, log it to MLflow, write the serving bundle."""

from __future__ import annotations

import datetime as dt
import shutil
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from .. import bundle
from ..data import features_and_target, read_split
from ..features import build_model
from ..services import lineage, tracking
from ..settings import Settings
from .evaluate import compute_metrics


def fit(settings: Settings, train: pd.DataFrame) -> Pipeline:
    """Fit the configured estimator on ``train`` (no side effects)."""
    params = settings.params.train
    model = build_model(
        settings.task, params.estimator, params.hyperparameters(), params.random_state
    )
    features, target = features_and_target(train)
    model.fit(features, target)
    return model


def _flat_params(settings: Settings) -> dict[str, Any]:
    params = settings.params
    flat: dict[str, Any] = {
        "dataset": params.data.dataset,
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

    train, _ = read_split(settings.prepared_dir)
    model = fit(settings, train)
    features, target = features_and_target(train)
    predictions = np.asarray(model.predict(features))
    train_metrics = compute_metrics(settings.task, model, features, target)

    commit = lineage.git_commit(settings.root)
    data_hash = lineage.dvc_output_hash(settings.root, "prepare", "data/prepared")
    signature = infer_signature(features, predictions)
    example = features.head(3)
    requirements = tracking.pip_requirements()

    with tracking.run(settings, run_name=f"train-{settings.params.train.estimator}") as active:
        mlflow.log_params(_flat_params(settings))
        mlflow.log_metrics({f"train_{k}": v for k, v in train_metrics.items()})
        mlflow.set_tags(
            {
                "git_commit": commit,
                "data_hash": data_hash,
                "dataset": settings.params.data.dataset,
                "stage": "train",
            }
        )
        logged = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            input_example=example,
            pip_requirements=requirements,
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
        pip_requirements=requirements,
    )
    bundle.write_json(
        out / bundle.SCHEMA_FILE, bundle.build_schema(features, target, settings.task)
    )
    bundle.write_json(
        out / bundle.REFERENCE_FILE,
        bundle.build_reference(
            features,
            predictions,
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
    }
    bundle.write_json(out / bundle.METADATA_FILE, metadata)
    print(f"train: run {run_id}, train metrics {train_metrics} -> {out}")
    return metadata
