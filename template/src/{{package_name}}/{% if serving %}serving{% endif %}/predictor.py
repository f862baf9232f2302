"""Model runtimes: a compiled numpy path for linear pipelines, scikit-learn otherwise.

scikit-learn spends most of a small ``predict`` call validating its input.  A fitted
``StandardScaler`` + linear model pipeline is one affine map, so it is compiled to a
matrix product once at load time, *checked for equal predictions* on the reference
sample, and used only when it matches; any other model runs through scikit-learn.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from .. import bundle

_LINEAR_CLASSIFIERS = {"LogisticRegression"}
_LINEAR_REGRESSORS = {"Ridge", "LinearRegression", "Lasso", "ElasticNet"}


class Runtime(Protocol):
    """Something that maps a 2-D float array to predictions (and class probabilities)."""

    name: str

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Return predictions and, for classifiers, class probabilities."""
        ...


@dataclass
class SklearnRuntime:
    """Any scikit-learn (or MLflow pyfunc) model, fed a DataFrame with the feature names."""

    model: Any
    features: list[str]
    classification: bool
    name: str = "sklearn"

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Predict through the model's own ``predict`` / ``predict_proba``."""
        frame = pd.DataFrame(x, columns=self.features)
        labels = np.asarray(self.model.predict(frame))
        proba = None
        if self.classification and hasattr(self.model, "predict_proba"):
            proba = np.asarray(self.model.predict_proba(frame), dtype=np.float64)
        return labels, proba


@dataclass
class LinearRuntime:
    """An affine map ``x @ weights + bias`` with the estimator's link function."""

    weights: np.ndarray
    bias: np.ndarray
    classes: np.ndarray | None
    name: str = "numpy-linear"

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Predict with one matrix product."""
        scores = x @ self.weights + self.bias
        if self.classes is None:
            return scores.ravel() if scores.shape[1] == 1 else scores, None
        if scores.shape[1] == 1:  # binary: one decision function, logistic link
            positive = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            proba = np.column_stack((1.0 - positive, positive))
            return self.classes[(scores[:, 0] > 0).astype(np.intp)], proba
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
        proba = shifted / shifted.sum(axis=1, keepdims=True)
        return self.classes[np.argmax(scores, axis=1)], proba


def compile_linear(model: Any) -> LinearRuntime | None:
    """Fold ``StandardScaler`` steps and a linear estimator into one affine map, if possible."""
    steps = [s for _, s in model.steps] if hasattr(model, "steps") else [model]
    *transforms, estimator = steps
    kind = type(estimator).__name__
    if kind not in _LINEAR_CLASSIFIERS | _LINEAR_REGRESSORS:
        return None
    n = int(getattr(estimator, "n_features_in_", 0))
    if n == 0:
        return None
    # x' = x * scale + shift, accumulated over the scaling steps
    scale = np.ones(n)
    shift = np.zeros(n)
    for step in transforms:
        if type(step).__name__ != "StandardScaler":
            return None
        mean = step.mean_ if step.mean_ is not None else np.zeros(n)
        std = step.scale_ if step.scale_ is not None else np.ones(n)
        scale, shift = scale / std, (shift - mean) / std
    coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(estimator.intercept_, dtype=np.float64))
    weights = (coef * scale).T
    bias = intercept + coef @ shift
    classes = np.asarray(estimator.classes_) if kind in _LINEAR_CLASSIFIERS else None
    return LinearRuntime(np.ascontiguousarray(weights), bias, classes)


def _same_predictions(a: Runtime, b: Runtime, x: np.ndarray) -> bool:
    la, pa = a.predict(x)
    lb, pb = b.predict(x)
    if la.shape != lb.shape:
        return False
    if la.dtype.kind in "iub" or lb.dtype.kind in "iub":
        if not np.array_equal(la, lb):
            return False
    elif not np.allclose(la, lb, rtol=1e-9, atol=1e-9):
        return False
    if (pa is None) != (pb is None):
        return False
    if pa is None or pb is None:
        return pa is None and pb is None
    return bool(np.allclose(pa, pb, rtol=1e-9, atol=1e-9))


def choose_runtime(
    model: Any, features: list[str], classification: bool, check_rows: np.ndarray
) -> Runtime:
    """Pick the fastest runtime whose predictions equal the model's on ``check_rows``."""
    reference = SklearnRuntime(model, features, classification)
    compiled = compile_linear(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if compiled is not None and _same_predictions(compiled, reference, check_rows):
            return compiled
    return reference


def load_model(bundle_dir: Path, model_uri: str | None, tracking_uri: str | None) -> Any:
    """Load the scikit-learn model from the bundle or, when given, an MLflow model URI."""
    if model_uri is None:
        return bundle.load_model(bundle_dir)
    import mlflow
    import mlflow.sklearn

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    try:
        return mlflow.sklearn.load_model(model_uri)
    except Exception:  # not an sklearn flavour: fall back to the generic pyfunc
        return mlflow.pyfunc.load_model(model_uri)


def registry_version(
    model_uri: str | None, tracking_uri: str | None, root: Path, run_id: str | None
) -> tuple[str | None, str | None]:
    """Look up the registry version (and run id) of the served model.

    From MLflow for a ``models:/name@alias`` or ``models:/name/version`` URI, else from the
    registration of the bundle's run (``reports/registration.json``), if any.
    """
    if model_uri is not None and model_uri.startswith("models:/"):
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=tracking_uri)
        name, _, alias = model_uri.removeprefix("models:/").partition("@")
        if alias:
            found = client.get_model_version_by_alias(name, alias)
        else:
            name, _, number = name.rpartition("/")
            found = client.get_model_version(name, number)
        return str(found.version), found.run_id
    registration = root / "reports" / "registration.json"
    if registration.is_file():
        record = bundle.read_json(registration)
        if record.get("run_id") == run_id:
            return str(record.get("version")), run_id
    return None, run_id
