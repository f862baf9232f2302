"""MLflow tracking and registry, started and configured in one place."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..settings import Settings

# Offline by construction: no usage reporting from the tools we drive.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

# Requirements are passed explicitly; MLflow's pip-version probe only adds noise in uv venvs.
logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)

CHAMPION = "champion"


def connect(settings: Settings) -> Any:
    """Point MLflow at the configured tracking URI and return ``MlflowClient``."""
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(settings.tracking_uri)
    return MlflowClient(tracking_uri=settings.tracking_uri)


@contextmanager
def run(settings: Settings, run_name: str) -> Iterator[Any]:
    """Start an MLflow run in the project's experiment; end it on exit."""
    import mlflow

    connect(settings)
    mlflow.set_experiment(settings.experiment_name)
    with mlflow.start_run(run_name=run_name) as active:
        yield active


# Packages a model may need beyond scikit-learn (the optional model families).
_MODEL_PACKAGES = ("lightgbm", "xgboost")


def pip_requirements(extra: tuple[str, ...] = ()) -> list[str]:
    """Explicit model requirements (MLflow would spend seconds inferring them)."""
    from importlib.metadata import version

    names = ("scikit-learn", "pandas", "numpy", "mlflow", "skops", *extra)
    return [f"{name}=={version(name)}" for name in names]


def trusted_types(model: Any) -> list[str]:
    """List the types MLflow's skops format must trust to reload ``model`` (trained here).

    skops refuses to load any type not on an allow-list; the list is that of the model the
    pipeline just fitted (numpy dtypes in imputers, the estimators of optional families).
    """
    import skops.io

    return list(skops.io.get_untrusted_types(data=skops.io.dumps(model)))


def model_options(model: Any) -> dict[str, Any]:
    """Keyword arguments of every ``mlflow.sklearn.save_model`` / ``log_model`` of a model."""
    trusted = trusted_types(model)
    extra = tuple(p for p in _MODEL_PACKAGES if any(t.startswith(f"{p}.") for t in trusted))
    return {"pip_requirements": pip_requirements(extra), "skops_trusted_types": trusted}
