"""Serving configuration: environment variables over ``params.yaml`` over defaults."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ..settings import BUNDLE_DIR, DriftParams, Env, load_settings, tracking_uri_from_env


class ServingConfig(BaseModel):
    """What the API serves and how.

    Environment variables (named in :class:`..settings.Env`): ``MODEL_BUNDLE`` (bundle
    folder, default ``models/bundle``), ``MODEL_URI`` (load the model from MLflow instead,
    e.g. ``models:/name@champion``; schema and reference statistics still come from the
    bundle), ``MLFLOW_TRACKING_URI``, ``MAX_BATCH_SIZE``.
    """

    model_config = ConfigDict(frozen=True)

    bundle_dir: Path = BUNDLE_DIR
    model_uri: str | None = None
    tracking_uri: str | None = None
    max_batch_size: int = Field(default=1000, ge=1)
    drift: DriftParams = DriftParams()

    @classmethod
    def from_env(cls, root: Path | None = None) -> ServingConfig:
        """Read the environment and, when present, the ``drift:`` section of params.yaml."""
        base = (root or Path.cwd()).resolve()
        drift, tracking_uri, bundle_dir = DriftParams(), tracking_uri_from_env(), base / BUNDLE_DIR
        if (base / "params.yaml").is_file():
            settings = load_settings(base)
            drift, tracking_uri, bundle_dir = (
                settings.params.drift,
                settings.tracking_uri,
                settings.bundle_dir,
            )
        env = os.environ
        return cls(
            bundle_dir=Path(env.get(Env.MODEL_BUNDLE, str(bundle_dir))),
            model_uri=env.get(Env.MODEL_URI) or None,
            tracking_uri=tracking_uri,
            max_batch_size=int(env.get(Env.MAX_BATCH_SIZE, "1000")),
            drift=drift,
        )
