"""Model runtimes: compiled numpy paths for the project's pipelines, scikit-learn otherwise.

scikit-learn spends most of a small ``predict`` call validating and re-encoding its input.
At load time the fitted pipeline is compiled, when it can be, into

* an :class:`~.encoding.Encoder` (the feature steps as per-column lookups and affine maps),
* and a head: one matrix product for a linear model (``numpy-linear``), or the flattened
  trees of a HistGradientBoosting model (``numpy-trees``, see :mod:`.trees`).

The compiled runtime is used only when its predictions *equal the pipeline's* on the
reference sample (aligned training rows), on those rows with every category unseen and
with every value missing, row by row and as one batch; any other model, or one that does
not match, runs through scikit-learn.  ``/ready`` and ``/version`` name the runtime.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from .encoding import UNSEEN, Encoder, Transform, compile_encoder, fitted_categories
from .inputs import InputSchema, ModelInput
from .trees import Forest

_LINEAR_CLASSIFIERS = {"LogisticRegression"}
_LINEAR_REGRESSORS = {"Ridge", "LinearRegression", "Lasso", "ElasticNet"}
_TREES = {"HistGradientBoostingClassifier", "HistGradientBoostingRegressor"}
# Rows scored one at a time in the load-time check (the small-batch tree walk).
_SINGLE_ROWS = 8

Prediction = tuple[np.ndarray, np.ndarray | None]


class Runtime(Protocol):
    """Maps model input to predictions (labels or values) and class probabilities."""

    name: str
    classes: np.ndarray | None

    def predict(self, batch: ModelInput) -> Prediction:
        """Return predictions and, for classifiers, class probabilities (``classes`` order)."""
        ...


@dataclass
class SklearnRuntime:
    """The model itself (scikit-learn or MLflow pyfunc), fed the model input frame."""

    model: Any
    classification: bool
    name: str = "sklearn"

    def __post_init__(self) -> None:
        """Keep the class labels when the model exposes probabilities."""
        self.proba = self.classification and hasattr(self.model, "predict_proba")
        classes = getattr(self.model, "classes_", None) if self.proba else None
        self.classes = None if classes is None else np.asarray(classes)
        if self.classes is None:
            self.proba = False

    def predict(self, batch: ModelInput) -> Prediction:
        """Predict through the model's own ``predict`` / ``predict_proba``."""
        frame = batch.frame()
        labels = np.asarray(self.model.predict(frame))
        proba = (
            np.asarray(self.model.predict_proba(frame), dtype=np.float64) if self.proba else None
        )
        return labels, proba


@dataclass
class CompiledRuntime:
    """Encoder + head: the pipeline without scikit-learn's per-call overhead."""

    encoder: Encoder
    head: Callable[[np.ndarray], Prediction]
    classes: np.ndarray | None
    name: str
    transform: Transform  # the fitted feature steps the encoder stands for

    def predict(self, batch: ModelInput) -> Prediction:
        """Encode the batch and apply the head."""
        return self.head(self.encoder.encode(batch))


def _linear_head(estimator: Any) -> tuple[Callable[[np.ndarray], Prediction], Any] | None:
    kind = type(estimator).__name__
    if kind not in _LINEAR_CLASSIFIERS | _LINEAR_REGRESSORS:
        return None
    weights = np.ascontiguousarray(np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64)).T)
    bias = np.atleast_1d(np.asarray(estimator.intercept_, dtype=np.float64))
    if kind in _LINEAR_REGRESSORS:

        def regress(z: np.ndarray) -> Prediction:
            scores = z @ weights + bias
            return (scores.ravel() if scores.shape[1] == 1 else scores), None

        return regress, None
    classes = np.asarray(estimator.classes_)

    def classify(z: np.ndarray) -> Prediction:
        scores = z @ weights + bias
        if scores.shape[1] == 1:  # binary: one decision function, logistic link
            positive = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            return classes[(scores[:, 0] > 0).astype(np.intp)], np.column_stack(
                (1.0 - positive, positive)
            )
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
        return classes[np.argmax(scores, axis=1)], shifted / shifted.sum(axis=1, keepdims=True)

    return classify, classes


def _tree_head(estimator: Any) -> tuple[Callable[[np.ndarray], Prediction], Any] | None:
    if type(estimator).__name__ not in _TREES:
        return None
    forest = Forest(estimator)
    loss = estimator._loss
    if not hasattr(estimator, "classes_"):

        def regress(z: np.ndarray) -> Prediction:
            return loss.link.inverse(forest.raw(z).ravel()), None

        return regress, None
    classes = np.asarray(estimator.classes_)

    def classify(z: np.ndarray) -> Prediction:
        raw = forest.raw(z)
        if raw.shape[1] == 1:  # as HistGradientBoostingClassifier.predict: "> 0", not argmax
            labels = classes[(raw.ravel() > 0).astype(np.intp)]
        else:
            labels = classes[np.argmax(raw, axis=1)]
        return labels, np.asarray(loss.predict_proba(raw), dtype=np.float64)

    return classify, classes


def _feature_steps(model: Any, extra: Any = None) -> Transform:
    steps = [s for _, s in model.steps[:-1] if s not in (None, "passthrough")]
    if extra is not None:
        steps.append(extra)

    def transform(frame: pd.DataFrame) -> Any:
        x: Any = frame
        for step in steps:
            x = step.transform(x)
        return x

    return transform


def compile_runtime(model: Any, schema: InputSchema) -> CompiledRuntime | None:
    """Compile ``model`` (a fitted feature pipeline + estimator) if its parts allow it."""
    if not hasattr(model, "steps") or len(model.steps) < 2:
        return None
    estimator = model.steps[-1][1]
    name = "numpy-linear"
    built = _linear_head(estimator)
    extra = None
    if built is None:
        built = _tree_head(estimator)
        # HistGradientBoosting re-encodes categorical columns itself, before the trees
        extra = getattr(estimator, "_preprocessor", None)
        name = "numpy-trees"
    if built is None:
        return None
    head, classes = built
    transform = _feature_steps(model, extra)
    known: dict[str, set[str]] = {}
    for _, step in model.steps[:-1]:
        fitted_categories(step, known)
    encoder = compile_encoder(transform, schema, known)
    if encoder is None:
        return None
    return CompiledRuntime(encoder, head, classes, name, transform)


def check_batches(schema: InputSchema, rows: ModelInput) -> list[ModelInput]:
    """Return the inputs a compiled runtime must score like the model.

    The rows together and one by one, then with every category unseen and with every value
    missing.
    """
    first = min(rows.rows, _SINGLE_ROWS)
    singles = [
        ModelInput(
            schema, rows.floats[i : i + 1], {k: v[i : i + 1] for k, v in rows.strings.items()}
        )
        for i in range(first)
    ]
    unseen = ModelInput(
        schema,
        rows.floats[:first],
        {k: np.full(first, UNSEEN, dtype=object) for k in rows.strings},
    )
    missing = ModelInput(
        schema,
        np.full((first, len(schema.floats)), np.nan),
        {k: np.full(first, None, dtype=object) for k in rows.strings},
    )
    return [rows, *singles, unseen, missing]


def _same(a: Prediction, b: Prediction) -> bool:
    (la, pa), (lb, pb) = a, b
    if la.shape != lb.shape:
        return False
    if la.dtype.kind in "fc" and lb.dtype.kind in "fc":
        if not np.allclose(la, lb, rtol=1e-9, atol=1e-9, equal_nan=True):
            return False
    elif la.tolist() != lb.tolist():
        return False
    if pa is None or pb is None:
        return pa is None and pb is None
    return pa.shape == pb.shape and bool(np.allclose(pa, pb, rtol=1e-9, atol=1e-12))


def choose_runtime(model: Any, schema: InputSchema, rows: ModelInput) -> Runtime:
    """Return the fastest runtime whose predictions equal the model's on the check inputs."""
    reference = SklearnRuntime(model, schema.classification)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compiled = compile_runtime(model, schema)
        except (AttributeError, TypeError, ValueError, IndexError, KeyError):
            compiled = None  # an estimator or release whose internals differ: no fast path
        if compiled is None or not compiled.encoder.matches(compiled.transform, rows):
            return reference
        if (
            reference.proba
            and compiled.classes is not None
            and compiled.classes.tolist() != reference.classes.tolist()  # type: ignore[union-attr]
        ):
            return reference
        for batch in check_batches(schema, rows):
            try:
                expected = reference.predict(batch)
            except Exception:  # the model refuses these inputs: so must the runtime
                return reference
            try:
                got = compiled.predict(batch)
            except Exception:
                return reference
            if not reference.proba:
                got = (got[0], None)
            if not _same(got, expected):
                return reference
    return compiled
