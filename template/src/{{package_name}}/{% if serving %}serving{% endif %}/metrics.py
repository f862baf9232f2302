"""Prometheus metrics of the API, and live drift over a sliding window of requests.

Every name starts with ``model_api_``; ``monitoring/`` (alerts, recording rules,
dashboards) relies on these names and labels.  The drift gauges follow the data contract:
PSI of every feature (``kind`` label: numeric, categorical, boolean), KS of the numeric
ones, the share of missing values against the reference's, and a counter of categorical
values the training data never held.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque
from collections.abc import Iterator, Mapping
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
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from ..drift.detector import DriftDetector
from ..drift.profiles import CategoricalProfile
from ..settings import DriftParams

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)
PREDICT_ROUTES = ("/predict", "/predict/batch")

# `*_created` series double the payload and no rule or dashboard reads them.
disable_created_metrics()


class DriftWindow:
    """The last ``size`` rows of every feature and of the predictions.

    Batches are kept as the arrays they arrive in (no copy on the request path: callers hand
    over fresh arrays and do not change them afterwards) and joined when Prometheus scrapes.
    """

    def __init__(self, size: int) -> None:
        """Hold at most the batches that make up the last ``size`` rows."""
        self.size = size
        self.filled = 0
        self.version = 0
        self._batches: deque[tuple[Mapping[str, np.ndarray], np.ndarray]] = deque()
        self._rows = 0
        self._lock = threading.Lock()

    def add(self, columns: Mapping[str, np.ndarray], predictions: np.ndarray) -> None:
        """Append a batch, dropping the oldest batches no longer needed."""
        n = len(predictions)
        if n == 0:
            return
        if n > self.size:
            columns = {name: values[-self.size :] for name, values in columns.items()}
            predictions, n = predictions[-self.size :], self.size
        with self._lock:
            self._batches.append((columns, predictions))
            self._rows += n
            while self._rows - len(self._batches[0][1]) >= self.size:
                self._rows -= len(self._batches.popleft()[1])
            self.filled = min(self._rows, self.size)
            self.version += 1

    def current(self, names: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Return the last ``size`` rows of each named column, and of the predictions."""
        with self._lock:
            batches = list(self._batches)
        if not batches:
            return {name: np.empty(0) for name in names}, np.empty(0)
        keep = -self.size

        def join(parts: list[np.ndarray]) -> np.ndarray:
            return (parts[0] if len(parts) == 1 else np.concatenate(parts))[keep:]

        columns = {name: join([b[0][name] for b in batches]) for name in names}
        return columns, join([b[1] for b in batches])


class BatchHistogram(Collector):
    """A histogram fed a whole batch at once: one numpy pass, not one call per value."""

    def __init__(self, name: str, documentation: str, buckets: list[float]) -> None:
        """Count values into ``buckets`` (upper bounds; +Inf is added)."""
        self.name, self.documentation = name, documentation
        self.bounds = sorted({float(b) for b in buckets} - {float("inf")})
        self._edges = np.asarray(self.bounds, dtype=np.float64)
        self._counts = np.zeros(len(self.bounds) + 1, dtype=np.int64)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, values: np.ndarray) -> None:
        """Count every value (``le`` buckets: a value equal to a bound falls in its bucket)."""
        values = np.asarray(values, dtype=np.float64)
        if values.size == 1:
            value = float(values[0])
            with self._lock:
                self._counts[bisect.bisect_left(self.bounds, value)] += 1
                self._sum += value
            return
        counts = np.bincount(
            np.searchsorted(self._edges, values, side="left"), minlength=self._counts.size
        )
        total = float(values.sum())
        with self._lock:
            self._counts += counts
            self._sum += total

    def collect(self) -> Iterator[Metric]:
        """Yield the cumulative buckets, count and sum."""
        with self._lock:
            cumulative, total = np.cumsum(self._counts).tolist(), self._sum
        bounds = [*map(floatToGoString, self.bounds), "+Inf"]
        family = HistogramMetricFamily(
            self.name,
            self.documentation,
            buckets=list(zip(bounds, cumulative, strict=True)),
            sum_value=total,
        )
        if self.bounds and self.bounds[0] < 0:
            # prometheus_client drops _count and _sum when a bucket bound is negative (a
            # regression target can be): the count of observations is still well defined.
            family.samples.append(Sample(f"{self.name}_count", {}, float(cumulative[-1])))
        yield family


def _gauge(name: str, text: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, labels=labels)


class DriftCollector(Collector):
    """Computes drift of the window against the reference when Prometheus scrapes."""

    def __init__(self, detector: DriftDetector, window: DriftWindow, params: DriftParams) -> None:
        """Keep the detector, the window and the thresholds."""
        self.detector = detector
        self.window = window
        self.params = params
        self._cache: tuple[int, list[Metric]] | None = None

    def _stats(self) -> list[Metric]:
        window = "over the recent-request window"
        psi = _gauge(
            "model_api_feature_drift_psi",
            f"Population stability index of each feature {window} (categories incl. unseen)",
            ["feature", "kind"],
        )
        ks = _gauge(
            "model_api_feature_drift_ks",
            f"Kolmogorov-Smirnov statistic of each numeric feature {window}",
            ["feature"],
        )
        missing = _gauge(
            "model_api_feature_missing_share",
            f"Share of missing values of each feature {window}",
            ["feature"],
        )
        unseen = _gauge(
            "model_api_feature_unseen_share",
            f"Share of a categorical feature's values {window} that training never saw",
            ["feature"],
        )
        columns, predictions = self.window.current(self.detector.feature_names)
        for col in self.detector.check_columns(columns):
            psi.add_metric([col.name, col.kind], col.psi)
            missing.add_metric([col.name], col.missing_current)
            if col.ks is not None:
                ks.add_metric([col.name], col.ks)
            if col.kind == "categorical" and col.unseen is not None:
                unseen.add_metric([col.name], col.unseen)
        metrics: list[Metric] = [psi, ks, missing, unseen]
        prediction = self.detector.check_prediction(predictions)
        if prediction is not None:
            pred = _gauge(
                "model_api_prediction_drift_psi",
                f"Population stability index of the predictions {window}",
            )
            pred.add_metric([], prediction.psi)
            metrics.append(pred)
        return metrics

    def _constants(self) -> Iterator[Metric]:
        p = self.params
        for name, value, text in (
            ("model_api_drift_psi_threshold", p.psi, "PSI drift threshold"),
            ("model_api_drift_ks_threshold", p.ks, "KS drift threshold"),
            (
                "model_api_prediction_drift_psi_threshold",
                p.prediction_psi,
                "Prediction PSI drift threshold",
            ),
            (
                "model_api_drift_missing_share_threshold",
                p.missing_share,
                "Absolute change of a feature's missing-value share that counts as drift",
            ),
        ):
            gauge = _gauge(name, f"{text} (params.yaml drift section)")
            gauge.add_metric([], value)
            yield gauge
        reference = _gauge(
            "model_api_feature_reference_missing_share",
            "Share of missing values of each feature in the training data",
            ["feature"],
        )
        for name, profile in self.detector.profiles.items():
            reference.add_metric([name], profile.missing)
        yield reference

    def collect(self) -> Iterator[Metric]:
        """Yield window size, thresholds, reference shares and (past ``min_rows``) the drift."""
        rows = _gauge("model_api_drift_window_rows", "Request rows held in the drift window")
        rows.add_metric([], float(self.window.filled))
        yield rows
        yield from self._constants()
        if self.window.filled < self.params.min_rows:
            return
        version = self.window.version
        if self._cache is None or self._cache[0] != version:
            self._cache = (version, self._stats())
        yield from self._cache[1]


class Metrics:
    """The API's metrics in their own registry (one per app: tests can build several)."""

    def __init__(
        self, *, schema: Mapping[str, Any], reference: Mapping[str, Any], params: DriftParams
    ) -> None:
        """Create every metric from the bundle's schema and reference; pre-create alert series."""
        self.registry = CollectorRegistry()
        r = self.registry
        # Every metric goes to this app's own collector registry, not the process-global one.
        counter, histogram = partial(Counter, registry=r), partial(Histogram, registry=r)
        gauge, info = partial(Gauge, registry=r), partial(Info, registry=r)
        self.classification = schema.get("task") == "classification"
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
        classes = [str(c) for c in schema.get("classes") or ()]
        # classification: the class's position in schema.json (labels may be strings)
        self._class_index = {c: float(i) for i, c in enumerate(classes)}
        if self.classification:
            buckets = [i + 0.5 for i in range(len(classes))]
        else:
            buckets = sorted(set(reference["prediction"]["histogram"]["edges"]))
        self.predictions = BatchHistogram(
            "model_api_prediction_value",
            "Distribution of the predicted values (regression) or class positions (classification)",
            buckets,
        )
        r.register(self.predictions)
        self.classes = counter(
            "model_api_predicted_class",
            "Predicted rows per class (classification)",
            ["class_label"],
        )
        unseen = counter(
            "model_api_unseen_category",
            "Values of a categorical feature the training data never held (accepted and scored)",
            ["feature"],
        )
        self.model_info = info("model_api_model", "The served model and its lineage")
        self.loaded = gauge("model_api_model_loaded", "1 once the model is loaded")
        self.trained = gauge(
            "model_api_model_trained_timestamp_seconds",
            "When the served model was trained (Unix time)",
        )
        self.detector = DriftDetector.from_reference(schema, reference, params)
        self.window = DriftWindow(params.window)
        r.register(DriftCollector(self.detector, self.window, params))
        for route in PREDICT_ROUTES:
            self.requests.labels(route, "POST", "200")
        self._class_counters = {c: self.classes.labels(c) for c in classes}
        # the categorical profiles and their counters, bound once (the request path is hot)
        self._unseen = [
            (name, profile, unseen.labels(name))
            for name, profile in self.detector.profiles.items()
            if isinstance(profile, CategoricalProfile) and profile.kind == "categorical"
        ]

    def _class_counter(self, label: str) -> Any:
        child = self._class_counters.get(label)
        if child is None:
            child = self._class_counters[label] = self.classes.labels(label)
        return child

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one request and its latency."""
        code = str(status)
        self.requests.labels(route, method, code).inc()
        self.latency.labels(route, method, code).observe(seconds)

    def observe_predictions(
        self, columns: Mapping[str, np.ndarray], predictions: np.ndarray
    ) -> None:
        """Record a scored batch: rows, predictions, unseen categories; feed the drift window.

        ``columns`` maps every feature to its values in model-input form (float64 with NaN
        for numeric and boolean features, an object array of ``str``/``None`` for categorical
        ones); ``predictions`` are labels (classes, or float64 for regression).  The window
        keeps the arrays: do not change them after the call.
        """
        self.batch_size.observe(len(predictions))
        if not self.classification:
            self.predictions.observe(predictions)
        elif len(predictions) <= 16:  # a loop beats np.unique on small requests
            for label in np.asarray(predictions).tolist():
                self._class_counter(str(label)).inc()
            index = self._class_index
            self.predictions.observe(
                np.array([index.get(str(v), np.inf) for v in np.asarray(predictions).tolist()])
            )
        else:
            labels, counts = np.unique(np.asarray(predictions).astype(str), return_counts=True)
            for label, count in zip(labels.tolist(), counts.tolist(), strict=True):
                self._class_counter(label).inc(count)
            positions = np.array(
                [self._class_index.get(label, np.inf) for label in labels.tolist()]
            )
            self.predictions.observe(np.repeat(positions, counts))
        for name, profile, child in self._unseen:
            count = profile.unseen_count(columns[name])
            if count:
                child.inc(count)
        self.window.add(columns, predictions)
