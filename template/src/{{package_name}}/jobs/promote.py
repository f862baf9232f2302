"""``promote``: move the ``champion`` alias to the registered version, gate permitting."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from typing import Any

from .. import bundle
from ..gate import GateFailedError, evaluate_gate
from ..services import tracking
from ..settings import Settings


def run(settings: Settings, version: str | None = None) -> dict[str, Any]:
    """Re-check the gate on the version's test metrics, then set the alias and log it."""
    registration = bundle.read_json(settings.registration_path)
    name = registration["name"]
    target = version or registration["version"]

    client = tracking.connect(settings)
    model_version = client.get_model_version(name, target)
    run_metrics = client.get_run(model_version.run_id).data.metrics
    test_metrics = {
        k.removeprefix("test_"): v for k, v in run_metrics.items() if k.startswith("test_")
    }
    result = evaluate_gate(test_metrics, settings.params.gate)
    if not result.passed:
        raise GateFailedError(result, f"promote {name} v{target}")

    try:
        previous = client.get_model_version_by_alias(name, tracking.CHAMPION).version
    except Exception:  # MLflow raises a generic error when the alias is unset
        previous = None
    client.set_registered_model_alias(name, tracking.CHAMPION, target)
    entry = {
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "by": getpass.getuser(),
        "model": name,
        "version": str(target),
        "previous": None if previous is None else str(previous),
        "alias": tracking.CHAMPION,
        "run_id": model_version.run_id,
        "gate": result.to_dict(),
    }
    log = settings.reports_dir / "promotions.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
    print(f"promote: {name} v{target} is now @{tracking.CHAMPION} (was {previous or 'unset'})")
    return entry
