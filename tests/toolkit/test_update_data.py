"""A project rendered before the data contract existed updates to it and keeps working.

The "before" template is the one of the last commit before issue 11 (data sources, the data
contract, contract-driven features): read from this repository's own history with
``git archive``, tagged ``v0.1.0`` in a temporary template repository next to the current
working tree tagged ``v0.2.0`` (tags are built here: they do not travel with the code).
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml
from support import ROOT
from support.history import NEW, OLD, render_at
from support.process import andamio, commit_all, git, make
from support.project import clear_template, copy_template

from andamio.config import TEMPLATE_PATHS

pytestmark = pytest.mark.slow

# The last commit whose template had no data contract (the landed v0.1.0 of the product).
BEFORE_DATA_CONTRACT = "8be1847"


def _checkout(ref: str, dest: Path) -> None:
    clear_template(dest)
    archive = dest / "old.tar"
    tree = subprocess.run(["git", "ls-tree", "--name-only", ref], cwd=ROOT, capture_output=True, text=True)
    paths = [name for name in TEMPLATE_PATHS if name in tree.stdout.split()]  # older layouts have fewer
    proc = subprocess.run(
        ["git", "archive", "--format=tar", "-o", str(archive), ref, *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, (
        f"this test reads the template of commit {ref} from the repository's history "
        f"(a full clone is needed): {proc.stderr}"
    )
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    archive.unlink()


@pytest.fixture(scope="module")
def before_and_after(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("contract-history") / "andamio"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    _checkout(BEFORE_DATA_CONTRACT, repo)
    commit_all(repo, f"template {OLD}")
    git(repo, "tag", OLD)
    copy_template(repo)
    commit_all(repo, f"template {NEW}")
    git(repo, "tag", NEW)
    return repo


def test_a_demo_project_from_before_the_data_contract_updates_and_runs(
    before_and_after: Path, tmp_path: Path
):
    # Given a demo project rendered before the data contract, whose pipeline ran
    project = render_at(before_and_after, tmp_path / "demo", data={"ci_providers": [], "ansible": False})
    assert not (project / "data" / "contract.yaml").exists()
    assert (project / "src" / "breast_cancer_classifier" / "drift.py").is_file()
    make(project, "setup", "pipeline", "COMPILE_BYTECODE=")
    commit_all(project, "pipeline outputs")
    params_before = (project / "params.yaml").read_bytes()

    # When the team updates it to the template with the data contract
    proc = andamio(project, "update", "--trust", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (result,) = json.loads(proc.stdout)["results"]
    assert (result["from_version"], result["to_version"]) == (OLD, NEW), result
    assert git(project, "status", "--porcelain") == ""

    # Then the team's params.yaml is untouched, the demo contract arrived, the old module went
    assert (project / "params.yaml").read_bytes() == params_before
    contract = yaml.safe_load((project / "data" / "contract.yaml").read_text())
    assert contract["target"]["name"] == "target" and len(contract["columns"]) == 30
    assert not (project / "src" / "breast_cancer_classifier" / "drift.py").exists()

    # And the project's tests and pipeline run on the old params.yaml: validated, retrained
    make(project, "test", "pipeline", "COMPILE_BYTECODE=")
    validation = json.loads((project / "reports" / "validation.json").read_text())
    assert validation == {"passed": True, "rows": 569, "failures": []}
    gate = json.loads((project / "reports" / "gate.json").read_text())
    assert gate["passed"] is True, gate
    schema = json.loads((project / "models" / "bundle" / "schema.json").read_text())
    assert {f["kind"] for f in schema["features"]} == {"numeric"} and schema["classes"] == [0, 1]
