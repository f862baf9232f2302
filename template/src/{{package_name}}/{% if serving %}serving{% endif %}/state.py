"""What the app serves: the bundle's files, the metrics and the model, loaded in the background.

``/health`` answers as soon as the process is up; the model loads in a thread, and until it
has (or when it failed, with the reason) ``/ready`` says 503 and predictions are refused.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import bundle
from ..services.registry import load_model, registry_version
from ..settings import REGISTRATION_FILE, project_root
from .config import ServingConfig
from .inputs import InputSchema, ModelInput, reference_rows
from .metrics import Metrics
from .predictor import Prediction, Runtime, choose_runtime


class ScoringError(Exception):
    """A request that cannot be scored; the route turns it into an answer with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        """Keep the HTTP status with the message."""
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Loaded:
    """What the loader thread hands to the request handlers."""

    runtime: Runtime | None = None
    error: str | None = None
    version: str | None = None
    run_id: str | None = None


@dataclass
class Service:
    """The bundle's schema, metadata and reference, the metrics, and the loaded model."""

    config: ServingConfig
    schema: InputSchema
    metadata: dict[str, Any]
    reference: dict[str, Any]
    metrics: Metrics
    loaded: Loaded = field(default_factory=Loaded)

    @classmethod
    def from_bundle(cls, config: ServingConfig) -> Service:
        """Read schema.json, metadata.json and reference.json; create the metrics."""
        folder = config.bundle_dir
        raw_schema = bundle.read_json(folder / bundle.SCHEMA_FILE)
        metadata = bundle.read_json(folder / bundle.METADATA_FILE)
        reference = bundle.read_json(folder / bundle.REFERENCE_FILE)
        metrics = Metrics(schema=raw_schema, reference=reference, params=config.drift)
        trained = metadata.get("trained_at")
        if trained:
            metrics.trained.set(dt.datetime.fromisoformat(trained).timestamp())
        return cls(config, InputSchema.from_dict(raw_schema), metadata, reference, metrics)

    def start_loading(self) -> None:
        """Load the model in a daemon thread (the process answers /health meanwhile)."""
        threading.Thread(target=self.load, name="model-loader", daemon=True).start()

    def load(self) -> None:
        """Load the model, choose its runtime, look up its registry version."""
        config, metadata = self.config, self.metadata
        try:
            model = load_model(config.bundle_dir, config.model_uri, config.tracking_uri)
            rows = reference_rows(self.schema, self.reference)
            runtime = choose_runtime(model, self.schema, rows)
            registration = project_root(config.bundle_dir) / REGISTRATION_FILE
            try:
                version, run_id = registry_version(
                    config.model_uri, config.tracking_uri, registration, metadata.get("run_id")
                )
            except Exception:  # the registry is optional: serving goes on without it
                version, run_id = None, None
            self.metrics.model_info.info(
                {
                    "model_name": str(metadata.get("model_name", "")),
                    "version": version or "",
                    "run_id": str(run_id or ""),
                    "git_commit": str(metadata.get("git_commit", "")),
                    "data_hash": str(metadata.get("data_hash", "")),
                    "estimator": str(metadata.get("estimator", "")),
                    "runtime": runtime.name,
                }
            )
            self.loaded = Loaded(runtime=runtime, version=version, run_id=run_id)
            self.metrics.loaded.set(1)
        except Exception as error:  # reported by /ready; the process stays up for /health
            self.loaded = Loaded(error=f"{type(error).__name__}: {error}")

    def score(self, batch: ModelInput) -> Prediction:
        """Predict ``batch``; record the predictions and feed the drift window."""
        runtime = self.loaded.runtime
        if runtime is None:
            raise ScoringError(
                503, self.loaded.error or "model is loading; retry when /ready says ready"
            )
        try:
            with np.errstate(all="ignore"):
                labels, proba = runtime.predict(batch)
        except (ValueError, TypeError, KeyError, IndexError, ArithmeticError) as exc:
            raise ScoringError(422, f"input rejected by the model: {exc}") from None
        numeric = labels.dtype.kind in "fc"
        if (numeric and not np.isfinite(labels).all()) or (
            proba is not None and not np.isfinite(proba).all()
        ):
            raise ScoringError(422, "input values are outside the model's numeric range")
        self.metrics.observe_predictions(batch.columns(), labels)
        return labels, proba
