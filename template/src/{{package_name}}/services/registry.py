"""Models by URI: the bundle's model or a registry's (``models:/name@alias``), and its version.

The serving app and batch scoring load their model here: one way to turn ``MODEL_URI`` (or
the bundle folder) into a fitted model and a registry version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import bundle


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
    model_uri: str | None, tracking_uri: str | None, registration: Path, run_id: str | None
) -> tuple[str | None, str | None]:
    """Look up the registry version (and run id) of the model.

    From MLflow for a ``models:/name@alias`` or ``models:/name/version`` URI, else from the
    ``registration`` of the bundle's run (``reports/registration.json``), if any.
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
    if registration.is_file():
        record = bundle.read_json(registration)
        if record.get("run_id") == run_id:
            return str(record.get("version")), run_id
    return None, run_id
