"""A classifier wrapper that keeps the team's class labels around estimators that want 0..n-1."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.preprocessing import LabelEncoder


class LabelledClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Fit ``estimator`` on encoded labels; predict the original labels (strings stay strings)."""

    def __init__(self, estimator: Any) -> None:
        """Wrap ``estimator`` (cloned at fit)."""
        self.estimator = estimator

    def fit(self, x: Any, y: Any, **fit_params: Any) -> LabelledClassifier:
        """Encode ``y`` and fit a clone of the estimator."""
        self.encoder_ = LabelEncoder().fit(y)
        self.classes_ = self.encoder_.classes_
        self.estimator_ = clone(self.estimator).fit(x, self.encoder_.transform(y), **fit_params)
        return self

    def predict(self, x: Any) -> np.ndarray:
        """Predicted labels."""
        codes = np.asarray(self.estimator_.predict(x)).astype(np.intp).ravel()
        return np.asarray(self.classes_[codes])

    def predict_proba(self, x: Any) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order."""
        return np.asarray(self.estimator_.predict_proba(x))
