"""Prometheus metrics of the API, and live drift over a sliding window of requests.

Every name starts with ``model_api_``; ``monitoring/`` (alerts, recording rules,
dashboards) relies on these names and labels.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

import numpy as np
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..drift import DriftDetector
from ..settings import DriftParams

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)
PREDICT_ROUTES = ("/predict", "/predict/batch")

# `*_created` series double the payload and no rule or dashboard reads them.
disable_created_metrics()


class DriftWindow:
    """The last ``size`` input rows and predictions, in a ring buffer."""

    def __init__(self, n_features: int, size: int) -> None:
        """Allocate the buffer once."""
        self.size = size
        self.rows = np.empty((size, n_features), dtype=np.float64)
        self.predictions = np.empty(size, dtype=np.float64)
        self.position = 0
        self.filled = 0
        self.version = 0

    def add(self, rows: np.ndarray, predictions: np.ndarray) -> None:
        """Append a batch, overwriting the oldest rows."""
        if len(rows) >= self.size:
            rows, predictions = rows[-self.size :], predictions[-self.size :]
        n = len(rows)
        first = min(n, self.size - self.position)
        end = self.position + first
        self.rows[self.position : end] = rows[:first]
        self.predictions[self.position : end] = predictions[:first]
        if first < n:
            self.rows[: n - first] = rows[first:]
            self.predictions[: n - first] = predictions[first:]
        self.position = (self.position + n) % self.size
        self.filled = min(self.size, self.filled + n)
        self.version += 1

    def current(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the rows and predictions held (order does not matter for drift)."""
        return self.rows[: self.filled], self.predictions[: self.filled]


class DriftCollector(Collector):
    """Computes drift of the window against the reference when Prometheus scrapes."""

    def __init__(self, detector: DriftDetector, window: DriftWindow, params: DriftParams) -> None:
        """Keep the detector, the window and the thresholds."""
        self.detector = detector
        self.window = window
        self.params = params
        self._cache: tuple[int, list[Metric]] | None = None

    def _stats(self) -> list[Metric]:
        psi = GaugeMetricFamily(
            "model_api_feature_drift_psi",
            "Population stability index of each feature over the recent-request window",
            labels=["feature"],
        )
        ks = GaugeMetricFamily(
            "model_api_feature_drift_ks",
            "Kolmogorov-Smirnov statistic of each feature over the recent-request window",
            labels=["feature"],
        )
        pred = GaugeMetricFamily(
            "model_api_prediction_drift_psi",
            "Population stability index of the predictions over the recent-request window",
        )
        rows, predictions = self.window.current()
        names = self.detector.feature_names
        columns = {name: rows[:, i] for i, name in enumerate(names)}
        for col in self.detector.check_columns(columns):
            psi.add_metric([col.name], col.psi)
            ks.add_metric([col.name], col.ks or 0.0)
        prediction = self.detector.check_prediction(predictions)
        metrics: list[Metric] = [psi, ks]
        if prediction is not None:
            pred.add_metric([], prediction.psi)
            metrics.append(pred)
        return metrics

    def collect(self) -> Iterator[Metric]:
        """Yield window size, thresholds and (past ``min_rows``) the drift statistics."""
        rows = GaugeMetricFamily(
            "model_api_drift_window_rows", "Requests rows held in the drift window"
        )
        rows.add_metric([], float(self.window.filled))
        yield rows
        for name, value, text in (
            ("model_api_drift_psi_threshold", self.params.psi, "PSI drift threshold"),
            ("model_api_drift_ks_threshold", self.params.ks, "KS drift threshold"),
            (
                "model_api_prediction_drift_psi_threshold",
                self.params.prediction_psi,
                "Prediction PSI drift threshold",
            ),
        ):
            gauge = GaugeMetricFamily(name, f"{text} (params.yaml drift section)")
            gauge.add_metric([], value)
            yield gauge
        if self.window.filled < self.params.min_rows:
            return
        if self._cache is None or self._cache[0] != self.window.version:
            self._cache = (self.window.version, self._stats())
        yield from self._cache[1]


class Metrics:
    """The API's metrics in their own registry (one per app: tests can build several)."""

    def __init__(
        self,
        *,
        classes: Sequence[Any] | None,
        prediction_buckets: Sequence[float],
        detector: DriftDetector,
        params: DriftParams,
    ) -> None:
        """Create every metric and pre-create the series alerts expect to exist."""
        self.registry = CollectorRegistry()
        r = self.registry
        # Every metric goes to this app's own collector registry, not the process-global one.
        counter, histogram = partial(Counter, registry=r), partial(Histogram, registry=r)
        gauge, info = partial(Gauge, registry=r), partial(Info, registry=r)
        self.requests = counter(
            "model_api_requests",
            "HTTP requests by route, method and status code",
            ["route", "method", "status"],
        )
        self.latency = histogram(
            "model_api_request_duration_seconds",
            "Request latency by route, method and status code",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
        )
        self.batch_size = histogram(
            "model_api_batch_rows", "Rows per prediction request", buckets=BATCH_BUCKETS
        )
        self.predictions = histogram(
            "model_api_prediction_value",
            "Distribution of the predicted values (classes or targets)",
            buckets=sorted(set(prediction_buckets)),
        )
        self.classes = counter(
            "model_api_predicted_class",
            "Predicted rows per class (classification)",
            ["class_label"],
        )
        self.model_info = info("model_api_model", "The served model and its lineage")
        self.loaded = gauge("model_api_model_loaded", "1 once the model is loaded")
        self.trained = gauge(
            "model_api_model_trained_timestamp_seconds",
            "When the served model was trained (Unix time)",
        )
        self.window = DriftWindow(len(detector.feature_names), params.window)
        r.register(DriftCollector(detector, self.window, params))
        for route in PREDICT_ROUTES:
            self.requests.labels(route, "POST", "200")
        for cls in classes or ():
            self.classes.labels(str(cls))

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one request and its latency."""
        code = str(status)
        self.requests.labels(route, method, code).inc()
        self.latency.labels(route, method, code).observe(seconds)

    def observe_predictions(
        self, rows: np.ndarray, predictions: np.ndarray, classification: bool
    ) -> None:
        """Record a batch of predictions and feed the drift window."""
        self.batch_size.observe(len(rows))
        values = np.asarray(predictions, dtype=np.float64)
        if classification:
            labels, counts = np.unique(predictions, return_counts=True)
            for label, count in zip(labels.tolist(), counts.tolist(), strict=True):
                self.classes.labels(str(label)).inc(count)
        for value in values.tolist():
            self.predictions.observe(value)
        self.window.add(rows, values)
