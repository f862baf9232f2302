"""Tier 3 (execute): generated projects run their own make targets for real.

Each case renders a project, commits it, and runs
``make setup check test pipeline register promote``; then it checks what the
lifecycle promised: metrics, an MLflow run with lineage, a registered version
behind the ``champion`` alias, an idempotent pipeline, a clean ``make format``,
offline pre-commit hooks, the quality gate refusing a weak model, and a DVC
remote that round-trips data.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from support.process import commit_all, sh

pytestmark = pytest.mark.slow

CASES = {
    # the defaults: classification on breast_cancer, Python 3.11
    "defaults": {},
    # one regression configuration with custom names
    "regression": {"ml_task": "regression", "project_name": "Diabetes Progression", "model_name": "diabetes"},
}


def mlflow_query(project: Path, model_name: str) -> dict:
    """Ask the project's own MLflow (in its venv) what it recorded."""
    code = f"""
import json
from mlflow.tracking import MlflowClient
c = MlflowClient("sqlite:///mlflow.db")
v = c.get_model_version_by_alias({model_name!r}, "champion")
r = c.get_run(v.run_id)
print(json.dumps({{"version": str(v.version), "params": r.data.params, "metrics": r.data.metrics,
                  "tags": r.data.tags, "versions": len(c.search_model_versions("name = '{model_name}'"))}}))
"""
    out = sh(project, ".venv/bin/python", "-c", code).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_project_runs_its_whole_lifecycle(render, case):
    # Given a freshly rendered project under git
    project = render(CASES[case], name=f"exec-{case}")
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    sh(project, "git", "init", "-q", "-b", "main")
    commit_all(project, "initial")

    # When the team runs the day-one lifecycle
    sh(project, "make", "setup", "check", "test", "pipeline", "register", "promote")

    # Then the metrics satisfy the gate and the figures exist
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    gate = json.loads((project / "reports" / "gate.json").read_text())
    assert gate["passed"] is True, gate
    expected_metric = "accuracy" if answers["ml_task"] == "classification" else "r2"
    assert expected_metric in metrics, metrics
    assert (project / "reports" / "figures" / "evaluation.png").stat().st_size > 10_000
    bundle = project / "models" / "bundle"
    for name in ("schema.json", "reference.json", "metadata.json", "model/MLmodel"):
        assert (bundle / name).is_file(), f"serving bundle lacks {name}"

    # And MLflow holds the run with params, metrics and lineage, registered and promoted
    recorded = mlflow_query(project, answers["model_name"])
    assert recorded["params"]["estimator"], recorded["params"]
    assert any(k.startswith("test_") for k in recorded["metrics"]), recorded["metrics"]
    head = sh(project, "git", "rev-parse", "HEAD").stdout.strip()
    assert recorded["tags"]["git_commit"] == head, "lineage must name the clean commit the run used"
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    data_hash = next(o["md5"] for o in lock["stages"]["prepare"]["outs"] if o["path"] == "data/prepared")
    assert recorded["tags"]["data_hash"] == data_hash
    assert recorded["version"] == "1"
    promotions = (project / "reports" / "promotions.jsonl").read_text().splitlines()
    assert json.loads(promotions[-1])["version"] == "1"

    # And a second pipeline run does no work
    again = sh(project, "make", "pipeline").stdout
    assert "Running stage" not in again and "up to date" in again, again

    # And `make format` changes nothing once the outputs are committed
    commit_all(project, "pipeline outputs")
    sh(project, "make", "format")
    status = sh(project, "git", "status", "--porcelain").stdout
    assert status == "", f"`make format` or the pipeline left changes:\n{status}"

    # And the offline pre-commit hooks pass on every file
    hooks = sh(project, ".venv/bin/pre-commit", "run", "--all-files", check=False)
    assert hooks.returncode == 0, hooks.stdout + hooks.stderr

    # And the DVC remote round-trips data and models
    sh(project, "make", "push")
    shutil.rmtree(project / ".dvc" / "cache")
    shutil.rmtree(project / "data" / "prepared")
    shutil.rmtree(bundle)
    sh(project, "make", "pull")
    assert (project / "data" / "prepared" / "train.parquet").is_file() and (bundle / "schema.json").is_file()

    # And the quality gate stops a model that misses a threshold
    params_path = project / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    strict = {"min": {expected_metric: 0.9999}, "max": {}}
    params_path.write_text(yaml.safe_dump({**params, "gate": strict}, sort_keys=False))
    failed = sh(project, "make", "evaluate", check=False)
    assert failed.returncode != 0
    assert (
        "quality gate FAILED" in failed.stderr + failed.stdout
        and expected_metric in failed.stderr + failed.stdout
    )
    refused = sh(project, "make", "promote", check=False)
    assert refused.returncode != 0 and "quality gate FAILED" in refused.stderr + refused.stdout
    assert params["gate"] != strict
    assert mlflow_query(project, answers["model_name"])["version"] == "1", "alias moved despite a failed gate"
