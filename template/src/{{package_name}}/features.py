"""Feature pipeline and estimator construction."""

from __future__ import annotations

from typing import Any

from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

_ESTIMATORS: dict[str, dict[str, Any]] = {
    "classification": {
        "logistic_regression": LogisticRegression,
        "random_forest": RandomForestClassifier,
    },
    "regression": {
        "ridge": Ridge,
        "random_forest": RandomForestRegressor,
    },
}

# Estimators that accept a ``random_state`` argument.
_SEEDED = {"logistic_regression", "random_forest"}


def available_estimators(task: str) -> list[str]:
    """Return the estimator names usable for ``task``."""
    return sorted(_ESTIMATORS[task])


def build_model(task: str, estimator: str, hyperparameters: dict[str, Any], seed: int) -> Pipeline:
    """Build scaling + estimator as one scikit-learn pipeline."""
    try:
        cls = _ESTIMATORS[task][estimator]
    except KeyError:
        raise ValueError(
            f"params.yaml: train.estimator {estimator!r} is not available for {task}; "
            f"choose one of {available_estimators(task)}"
        ) from None
    kwargs = dict(hyperparameters)
    if estimator in _SEEDED:
        kwargs.setdefault("random_state", seed)
    try:
        model = cls(**kwargs)
    except TypeError as error:
        raise ValueError(f"params.yaml: train.{estimator}: {error}") from None
    return Pipeline([("scale", StandardScaler()), ("model", model)])
