"""Stage ``register``: attach the evaluation to the run and register the model version."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .. import bundle
from ..gate import GateFailedError, GateResult
from ..services import tracking
from ..settings import Settings
from . import model_card


def _existing_version(client: Any, name: str, run_id: str) -> Any | None:
    """Return the version already registered from ``run_id`` (re-runs stay idempotent)."""
    for version in client.search_model_versions(f"name = '{name}'"):
        if version.run_id == run_id:
            return version
    return None


def run(settings: Settings) -> dict[str, Any]:
    """Register the bundle's model in MLflow; write ``reports/registration.json``."""
    import mlflow

    meta = bundle.read_json(settings.bundle_dir / bundle.METADATA_FILE)
    test_metrics = bundle.read_json(settings.metrics_path)
    gate = bundle.read_json(settings.gate_path)
    if not gate.get("passed"):
        raise GateFailedError(
            GateResult(()), "register: reports/gate.json says the gate failed"
        ) from None

    client = tracking.connect(settings)
    run_id = meta["run_id"]
    for key, value in test_metrics.items():
        client.log_metric(run_id, f"test_{key}", float(value))
    client.set_tag(run_id, "quality_gate", "passed")
    figures = settings.reports_dir / "figures"
    if figures.is_dir():
        client.log_artifacts(run_id, str(figures), "evaluation")

    name = settings.model_name
    version = _existing_version(client, name, run_id)
    if version is None:
        version = mlflow.register_model(
            meta["model_uri"],
            name,
            tags={
                "git_commit": meta["git_commit"],
                "data_hash": meta["data_hash"],
                "raw_data_hash": (meta.get("data") or {}).get("raw_hash", "unknown"),
                "quality_gate": "passed",
            },
        )
    record = {
        "name": name,
        "version": str(version.version),
        "run_id": run_id,
        "model_uri": meta["model_uri"],
        "git_commit": meta["git_commit"],
        "data_hash": meta["data_hash"],
        "registered_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    bundle.write_json(settings.registration_path, record)
    model_card.write(settings, record)
    print(f"register: {name} version {version.version} (run {run_id})")
    return record
