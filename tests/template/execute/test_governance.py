"""Tier 3 (slow): governance and supply chain in a generated project that ran its pipeline.

The model card names the run's lineage exactly as MLflow and DVC recorded it; the secrets
scan passes on the committed pipeline outputs; the dependency audit (real pip-audit, asking a
local stand-in of the OSV service, as an air-gapped site points it at its advisory mirror)
passes a clean environment, fails on a known vulnerability, and says plainly when it could
not ask anyone -- it never passes without checking.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from support.stand_ins import OSVAPI, serve
from support.process import commit_all, sh

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(project_factory, tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = project_factory.new(tmp_path_factory.mktemp("governance") / "project")
    commit_all(project)
    sh(project, "make", "setup", "pipeline")
    return project


def test_pipeline_writes_a_model_card_with_the_recorded_lineage(project):
    card = (project / "docs" / "model_card.md").read_text()
    meta = json.loads((project / "models" / "bundle" / "metadata.json").read_text())
    registration = json.loads((project / "reports" / "registration.json").read_text())
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    data_hash = next(o["md5"] for o in lock["stages"]["prepare"]["outs"] if o["path"] == "data/prepared")
    head = sh(project, "git", "rev-parse", "HEAD").stdout.strip()
    # Lineage: the clean commit, the DVC hash of the training data, the MLflow run
    assert f"| git commit | `{head}` |" in card
    assert f"| DVC data hash | `{data_hash}` |" in card
    assert f"| MLflow run id | `{meta['run_id']}` |" in card
    assert card.startswith(f"# Model card: {registration['name']} version {registration['version']}")
    # The hand-written parts and the measured parts are both there
    context = yaml.safe_load((project / "docs" / "model_card.yml").read_text())
    assert context["intended_use"] in card
    assert all(item in card for item in context["limitations"])
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    for name, value in metrics.items():
        assert f"| {name} |" in card and f"{value:.4f}" in card, f"metric {name} missing from the card"
    assert "Quality gate: **passed**" in card
    assert "estimator:" in card, "the train parameters are missing"


def test_pipeline_stays_a_no_op_with_the_model_card(project):
    again = sh(project, "make", "pipeline").stdout
    assert "Running stage" not in again, again


def test_secrets_scan_passes_on_committed_pipeline_outputs(project):
    commit_all(project, "pipeline outputs")
    tracked = sh(project, "git", "ls-files").stdout.split()
    assert "dvc.lock" in tracked and "docs/model_card.md" in tracked
    proc = sh(project, "make", "secrets", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _installed(project: Path, name: str) -> str:
    for line in (project / "build" / "requirements-audit.txt").read_text().splitlines():
        if line.lower().startswith(f"{name}=="):
            return line.split("==", 1)[1]
    raise AssertionError(f"{name} is not in the audited requirements")


def test_dependency_audit_passes_clean_and_fails_on_an_advisory(project):
    # Given an advisory service that knows nothing against the pinned versions
    with serve(OSVAPI()) as osv:
        args = f"AUDIT_ARGS=-s osv --osv-url {osv.url}/v1/query"
        clean = sh(project, "make", "audit", args, check=False)
        asked = {call.body["package"]["name"].lower() for call in osv.calls}
        # Then every pinned package was asked about, and the audit passes
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert {"mlflow", "scikit-learn", "dvc"} <= asked, sorted(asked)
        assert "No known vulnerabilities found" in clean.stdout + clean.stderr

        # When an advisory names the installed scikit-learn, the audit fails and names it
        osv.advisories[("scikit-learn", _installed(project, "scikit-learn"))] = ["GHSA-test-0001"]
        found = sh(project, "make", "audit", args, check=False)
    output = found.stdout + found.stderr
    assert found.returncode != 0 and "audit: NOT DONE" not in output, output
    assert "Found 1 known vulnerability in 1 package" in output, output
    assert "GHSA-test-0001" in output and "scikit-learn" in output, output


def test_dependency_audit_says_not_done_when_no_service_answers(project):
    # An advisory URL where nothing listens: nothing could be checked, and the target says so
    nowhere = "AUDIT_ARGS=-s osv --osv-url http://127.0.0.1:9/v1/query"
    proc = sh(project, "make", "audit", nowhere, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "audit: NOT DONE" in output, output
    requirements = (project / "build" / "requirements-audit.txt").read_text()
    assert "mlflow==" in requirements and "scikit-learn==" in requirements, "audited the wrong environment"
