"""Tier 2 (render): detect-secrets finds nothing in a generated project, and does find a
secret once one is committed.  (zizmor and hadolint run in the CI and serving tests.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.matrix import MIRRORS
from support.process import git

pytestmark = pytest.mark.render

HOOK = str(Path(sys.executable).parent / "detect-secrets-hook")


@pytest.fixture(scope="module", params=["defaults", "everything"])
def project(request, project_factory, tmp_path_factory: pytest.TempPathFactory) -> Path:
    answers = {} if request.param == "defaults" else MIRRORS
    project = project_factory.new(tmp_path_factory.mktemp("secrets") / "project", answers)
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    return project


def _scan(project: Path) -> subprocess.CompletedProcess[str]:
    files = subprocess.run(
        ["git", "ls-files"], cwd=project, capture_output=True, text=True, check=True
    ).stdout.split()
    return subprocess.run(
        [HOOK, "--baseline", ".secrets.baseline", *files], cwd=project, capture_output=True, text=True
    )


def test_generated_project_has_zero_findings(project):
    before = (project / ".secrets.baseline").read_text()
    assert json.loads(before)["results"] == {}, "the baseline must not hide findings"
    proc = _scan(project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (project / ".secrets.baseline").read_text() == before, "the hook rewrote the baseline"


def test_a_committed_secret_is_found(project):
    # Built from pieces so this test file itself holds no secret-looking literal.
    token = "gh" + "p_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    leak = project / "src" / "leak.py"
    leak.write_text(f'API_TOKEN = "{token}"\n')
    subprocess.run(["git", "add", str(leak)], cwd=project, check=True)
    try:
        proc = _scan(project)
        assert proc.returncode != 0 and "leak.py" in proc.stdout, proc.stdout + proc.stderr
    finally:
        subprocess.run(["git", "rm", "-q", "--cached", str(leak)], cwd=project, check=True)
        leak.unlink()


def test_pre_commit_and_make_run_the_scan(project):
    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())
    hooks = {h["id"]: h for repo in config["repos"] for h in repo["hooks"]}
    assert hooks["detect-secrets"]["entry"] == "make secrets"
    assert all(repo["repo"] in {"local", "meta"} for repo in config["repos"]), "remote hooks fail offline"
    makefile = (project / "Makefile").read_text()
    assert "detect-secrets-hook --baseline .secrets.baseline" in makefile
    assert '"detect-secrets==' in (project / "pyproject.toml").read_text()
