"""Feature pipeline and estimator, built from the data contract.

One scikit-learn ``Pipeline``: ``features`` (a ``ColumnTransformer`` with one branch per
column kind) then ``model``.  Its input is the model input frame of
:func:`.contract.coerce` (numeric and boolean as float with NaN, categorical as text).

* linear models: numeric imputed (median) and scaled; categorical one-hot encoded, rare
  levels grouped as "infrequent" and unseen ones ignored; boolean imputed;
* random forest: numeric and boolean imputed; categorical ordinal codes (unseen -1);
* histogram gradient boosting, LightGBM, XGBoost: missing values handled natively;
  categorical ordinal codes (rare grouped, unseen and missing as missing), declared as
  categorical to scikit-learn's HistGradientBoosting.

LightGBM and XGBoost are optional extras of this project: ``make setup EXTRAS=lightgbm``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from .contract import Contract

# A category seen in less than this share of the training rows is grouped as infrequent.
MIN_FREQUENCY = 0.005
# Histogram gradient boosting bins categories: at most 255 bins, one kept for missing.
MAX_CATEGORIES = 250
# Estimators that need an optional extra, and the package that provides each.
_PACKAGES = {"lightgbm": "lightgbm", "xgboost": "xgboost"}
_LINEAR = {"logistic_regression", "ridge"}
_NATIVE_MISSING = {"hist_gradient_boosting", "lightgbm", "xgboost"}
_SEEDED = {"logistic_regression", "random_forest", "hist_gradient_boosting", "lightgbm", "xgboost"}


def _sklearn(task: str, estimator: str) -> Callable[..., Any]:
    from sklearn import ensemble, linear_model

    classes: dict[tuple[str, str], Callable[..., Any]] = {
        ("classification", "logistic_regression"): linear_model.LogisticRegression,
        ("regression", "ridge"): linear_model.Ridge,
        ("classification", "random_forest"): ensemble.RandomForestClassifier,
        ("regression", "random_forest"): ensemble.RandomForestRegressor,
        ("classification", "hist_gradient_boosting"): ensemble.HistGradientBoostingClassifier,
        ("regression", "hist_gradient_boosting"): ensemble.HistGradientBoostingRegressor,
    }
    return classes[(task, estimator)]


def _lightgbm(task: str) -> Callable[..., Any]:
    import lightgbm

    cls = lightgbm.LGBMClassifier if task == "classification" else lightgbm.LGBMRegressor

    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("verbose", -1)
        kwargs.setdefault("n_jobs", 1)
        return cls(**kwargs)

    return make


def _xgboost(task: str) -> Callable[..., Any]:
    import xgboost

    if task == "regression":
        return xgboost.XGBRegressor
    from .labels import LabelledClassifier

    def make(**kwargs: Any) -> Any:
        # XGBoost wants classes 0..n-1: the wrapper keeps the team's labels outside.
        return LabelledClassifier(xgboost.XGBClassifier(**kwargs))

    return make


_ESTIMATORS: dict[str, set[str]] = {
    "classification": {
        "logistic_regression",
        "random_forest",
        "hist_gradient_boosting",
        "lightgbm",
        "xgboost",
    },
    "regression": {"ridge", "random_forest", "hist_gradient_boosting", "lightgbm", "xgboost"},
}


def estimator_names(task: str) -> list[str]:
    """Return the estimator names usable for ``task``."""
    return sorted(_ESTIMATORS[task])


# Kept for older callers.
available_estimators = estimator_names


def required_package(estimator: str) -> str | None:
    """Return the optional package ``estimator`` needs (``None``: scikit-learn is enough)."""
    return _PACKAGES.get(estimator)


def _factory(task: str, estimator: str) -> Callable[..., Any]:
    if estimator not in _ESTIMATORS[task]:
        raise ValueError(
            f"params.yaml: train.estimator {estimator!r} is not available for {task}; "
            f"choose one of {estimator_names(task)}"
        )
    package = required_package(estimator)
    if package is not None:
        if importlib.util.find_spec(package) is None:
            raise ValueError(
                f"params.yaml: train.estimator {estimator!r} needs the {package} package: "
                f"run `make setup EXTRAS={package}` (it is an optional extra of this project)"
            )
        return _lightgbm(task) if estimator == "lightgbm" else _xgboost(task)
    return _sklearn(task, estimator)


def _ordinal(unknown: float | int, missing: float | int) -> OrdinalEncoder:
    return OrdinalEncoder(
        handle_unknown="use_encoded_value",
        unknown_value=unknown,
        encoded_missing_value=missing,
        min_frequency=MIN_FREQUENCY,
        max_categories=MAX_CATEGORIES,
        dtype=np.float64,
    )


def build_features(estimator: str, contract: Contract) -> ColumnTransformer:
    """Build the ``features`` step: a branch per column kind (numeric, categorical, boolean)."""
    numeric, categorical, boolean = contract.numeric, contract.categorical, contract.boolean
    branches: list[tuple[str, Any, list[str]]] = []
    if estimator in _LINEAR:
        num: Any = Pipeline(
            [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
        )
        cat: Any = OneHotEncoder(
            handle_unknown="infrequent_if_exist",
            min_frequency=MIN_FREQUENCY,
            sparse_output=False,
            dtype=np.float64,
        )
        flag: Any = SimpleImputer(strategy="most_frequent")
    elif estimator in _NATIVE_MISSING:
        num, cat, flag = "passthrough", _ordinal(np.nan, np.nan), "passthrough"
    else:
        num = SimpleImputer(strategy="median")
        cat = _ordinal(-1, -2)
        flag = SimpleImputer(strategy="most_frequent")
    for name, step, columns in (
        ("numeric", num, numeric),
        ("categorical", cat, categorical),
        ("boolean", flag, boolean),
    ):
        if columns:
            branches.append((name, step, columns))
    return ColumnTransformer(branches, verbose_feature_names_out=False, sparse_threshold=0.0)


def build_model(
    task: str,
    estimator: str,
    hyperparameters: dict[str, Any],
    seed: int,
    contract: Contract,
) -> Pipeline:
    """Build the contract's feature pipeline + ``estimator`` as one scikit-learn pipeline."""
    factory = _factory(task, estimator)
    kwargs = dict(hyperparameters)
    if estimator in _SEEDED:
        kwargs.setdefault("random_state", seed)
    if estimator == "hist_gradient_boosting" and contract.categorical:
        start = len(contract.numeric)
        mask = [False] * len(contract.feature_names)
        for i in range(start, start + len(contract.categorical)):
            mask[i] = True
        kwargs.setdefault("categorical_features", mask)
    try:
        model = factory(**kwargs)
    except TypeError as error:
        raise ValueError(f"params.yaml: train.{estimator}: {error}") from None
    return Pipeline([("features", build_features(estimator, contract)), ("model", model)])
