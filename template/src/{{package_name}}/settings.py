"""Typed, frozen settings: ``params.yaml`` + environment, validated once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from . import config

if TYPE_CHECKING:
    from .contract import Contract

Task = Literal["classification", "regression"]


class Env:
    """The environment variables the package reads: named here, and only here."""

    TRACKING_URI = "MLFLOW_TRACKING_URI"  # the MLflow server (default: config.TRACKING_URI)
    MODEL_URI = "MODEL_URI"  # serve or score an MLflow model (models:/name@alias) instead
    MODEL_BUNDLE = "MODEL_BUNDLE"  # the API's bundle folder (default: models/bundle)
    MAX_BATCH_SIZE = "MAX_BATCH_SIZE"  # rows the API takes in one request
    SCORE_ENGINE = "SCORE_ENGINE"  # batch scoring: local or spark
    SPARK_MASTER = "SPARK_MASTER"  # batch scoring on Spark: its spark.master
    OPTUNA_STORAGE = "OPTUNA_STORAGE"  # the tuning study's storage, over params.yaml


# The artifacts, relative to the project root (dvc.yaml and the Makefile name the same ones).
BUNDLE_DIR = Path("models") / "bundle"
REPORTS_DIR = Path("reports")
METRICS_FILE = REPORTS_DIR / "metrics.json"
GATE_FILE = REPORTS_DIR / "gate.json"
REGISTRATION_FILE = REPORTS_DIR / "registration.json"
TUNING_FILE = REPORTS_DIR / "tuning.json"


def tracking_uri_from_env() -> str:
    """Return the MLflow tracking URI: ``MLFLOW_TRACKING_URI``, else the rendered default."""
    return os.environ.get(Env.TRACKING_URI, config.TRACKING_URI)


def project_root(bundle_dir: Path) -> Path:
    """Return the root of the project whose bundle folder (``models/bundle``) this is."""
    return bundle_dir.resolve().parents[len(BUNDLE_DIR.parts) - 1]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SqlParams(_Frozen):
    """The training query; the database URL is read from ``url_env``, never from a file."""

    url_env: str = Field(default="DATABASE_URL", pattern=r"^[A-Z_][A-Z0-9_]*$")
    query: str = Field(min_length=1)


class DataParams(_Frozen):
    """Where the raw data comes from (see data.py) and which column is the label."""

    source: Literal["demo", "file", "sql"] = "demo"
    dataset: str | None = None
    path: str | None = None
    target: str = "target"
    sql: SqlParams | None = None


class PrepareParams(_Frozen):
    """Train/test split."""

    test_size: float = Field(gt=0.0, lt=1.0)
    random_state: int


class TrainParams(_Frozen):
    """Estimator choice and its hyper-parameters (one mapping per estimator)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    estimator: str
    random_state: int = 42

    def hyperparameters(self) -> dict[str, Any]:
        """Return the hyper-parameters of the chosen estimator."""
        extra = self.model_extra or {}
        if self.estimator not in extra:
            raise ValueError(
                f"params.yaml: train.estimator is {self.estimator!r} but there is no "
                f"'train.{self.estimator}' section with its hyper-parameters"
            )
        values = extra[self.estimator] or {}
        if not isinstance(values, dict):
            raise ValueError(f"params.yaml: train.{self.estimator} must be a mapping")
        return dict(values)


class TuneParams(_Frozen):
    """Optuna study of ``make tune`` (search space per estimator in ``space``)."""

    trials: int = Field(default=20, ge=1)
    timeout: float | None = Field(default=None, gt=0)
    storage: str = "sqlite:///reports/optuna.db"
    study: str | None = None
    metric: str | None = None
    cv: int = Field(default=3, ge=2)
    space: dict[str, dict[str, Any]] = Field(default_factory=dict)


class ReferenceParams(_Frozen):
    """Reference statistics for drift monitoring."""

    bins: int = Field(default=10, ge=2, le=100)
    sample_size: int = Field(default=500, ge=10)


class DriftParams(_Frozen):
    """Drift thresholds (effect sizes) and the serving app's sliding window."""

    psi: float = Field(default=0.2, gt=0.0)
    ks: float = Field(default=0.15, gt=0.0, le=1.0)
    prediction_psi: float = Field(default=0.2, gt=0.0)
    max_drifted_share: float = Field(default=0.0, ge=0.0, le=1.0)
    p_value: float = Field(default=0.01, gt=0.0, le=1.0)
    window: int = Field(default=1000, ge=10)
    min_rows: int = Field(default=200, ge=10)
    missing_share: float = Field(default=0.1, gt=0.0, le=1.0)


class GateParams(_Frozen):
    """Quality gate: test metrics must be >= every ``min`` and <= every ``max``."""

    min: dict[str, float] = Field(default_factory=dict)
    max: dict[str, float] = Field(default_factory=dict)

    @field_validator("min", "max", mode="before")
    @classmethod
    def _none_is_empty(cls, value: object) -> object:
        return {} if value is None else value


class Params(_Frozen):
    """The whole ``params.yaml``."""

    data: DataParams
    prepare: PrepareParams
    train: TrainParams
    tune: TuneParams = TuneParams()
    reference: ReferenceParams = ReferenceParams()
    gate: GateParams = GateParams()
    drift: DriftParams = DriftParams()
    # read by the orchestrator's DAG files (orchestration/), not by the jobs
    orchestration: dict[str, Any] = Field(default_factory=dict)


class Settings(_Frozen):
    """Everything a job needs: paths, parameters and service endpoints."""

    root: Path
    params: Params
    task: Task = config.ML_TASK  # type: ignore[assignment]
    model_name: str = config.MODEL_NAME
    experiment_name: str = config.PROJECT_SLUG
    tracking_uri: str = config.TRACKING_URI

    @property
    def contract_path(self) -> Path:
        """The data contract the team owns (``make schema`` infers it once)."""
        return self.root / "data" / "contract.yaml"

    @property
    def snapshot_path(self) -> Path:
        """Parquet snapshot of the SQL query (``ingest`` stage, a DVC output)."""
        return self.root / "data" / "raw" / "snapshot.parquet"

    @property
    def validation_path(self) -> Path:
        """Result of validating the raw data against the contract."""
        return self.reports_dir / "validation.json"

    def contract(self) -> Contract:
        """Read the data contract (raises with what to do when it is missing)."""
        from .contract import load

        return load(self.contract_path)

    @property
    def prepared_dir(self) -> Path:
        """Folder of the prepared train/test split (a DVC output)."""
        return self.root / "data" / "prepared"

    @property
    def bundle_dir(self) -> Path:
        """Folder of the serving bundle (a DVC output)."""
        return self.root / BUNDLE_DIR

    @property
    def reports_dir(self) -> Path:
        """Folder of metrics, gate results and plots."""
        return self.root / REPORTS_DIR

    @property
    def metrics_path(self) -> Path:
        """Test metrics of the trained model (``evaluate`` stage)."""
        return self.root / METRICS_FILE

    @property
    def gate_path(self) -> Path:
        """Result of the quality gate (``evaluate`` stage)."""
        return self.root / GATE_FILE

    @property
    def registration_path(self) -> Path:
        """The registry version of the bundle's model (``register`` stage)."""
        return self.root / REGISTRATION_FILE


def load_settings(root: Path | None = None) -> Settings:
    """Read ``params.yaml`` under ``root`` (default: the working directory)."""
    base = (root or Path.cwd()).resolve()
    path = base / "params.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run from the project root")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return Settings(
        root=base, params=Params.model_validate(raw), tracking_uri=tracking_uri_from_env()
    )
