"""Serving configuration: environment variables over ``params.yaml`` over defaults."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ..settings import DriftParams, load_settings


class ServingConfig(BaseModel):
    """What the API serves and how.

    Environment variables: ``MODEL_BUNDLE`` (bundle folder, default ``models/bundle``),
    ``MODEL_URI`` (load the model from MLflow instead, e.g. ``models:/name@champion``;
    schema and reference statistics still come from the bundle), ``MAX_BATCH_SIZE``.
    """

    model_config = ConfigDict(frozen=True)

    bundle_dir: Path = Path("models/bundle")
    model_uri: str | None = None
    tracking_uri: str | None = None
    max_batch_size: int = Field(default=1000, ge=1)
    drift: DriftParams = DriftParams()

    @classmethod
    def from_env(cls, root: Path | None = None) -> ServingConfig:
        """Read the environment and, when present, the ``drift:`` section of params.yaml."""
        base = (root or Path.cwd()).resolve()
        drift = DriftParams()
        tracking_uri = None
        if (base / "params.yaml").is_file():
            settings = load_settings(base)
            drift = settings.params.drift
            tracking_uri = settings.tracking_uri
        env = os.environ
        return cls(
            bundle_dir=Path(env.get("MODEL_BUNDLE", str(base / "models" / "bundle"))),
            model_uri=env.get("MODEL_URI") or None,
            tracking_uri=env.get("MLFLOW_TRACKING_URI", tracking_uri),
            max_batch_size=int(env.get("MAX_BATCH_SIZE", "1000")),
            drift=drift,
        )
