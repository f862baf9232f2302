"""Tier 3 (slow): `make template-update`, the command of the scheduled template-update job.

A project rendered from a tagged template repository is behind once the template gets a new
tag: the target brings the change into the working tree (the CI job then commits it on a
branch and opens a PR/MR), and says so when there is nothing to bring.
"""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path

import pytest
import yaml
from ci_helpers import ROOT, git_commit_all, run

pytestmark = pytest.mark.slow


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def test_template_update_brings_a_new_template_version(tmp_path):
    import copier

    # Given a template repository at v1.0.0 and a project rendered from it
    template = tmp_path / "template"
    git(tmp_path, "clone", "--quiet", "--no-hardlinks", str(ROOT), str(template))
    git(template, "tag", "v1.0.0")
    project = tmp_path / "project"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_copy(
            str(template), str(project), data={"serving": False}, defaults=True, unsafe=True, quiet=True
        )
    git_commit_all(project)
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"] == "v1.0.0"

    # When the template moves on to v1.1.0 and the scheduled job runs the target
    readme = template / "template" / "README.md.jinja"
    readme.write_text(readme.read_text() + "\nA line added by template v1.1.0.\n")
    git(template, "commit", "--quiet", "-am", "template: a new line")
    git(template, "tag", "v1.1.0")
    update = run(["make", "template-update"], cwd=project)
    assert update.returncode == 0, update.stdout[-3000:] + update.stderr[-3000:]

    # Then the project holds the change, uncommitted, for the job to propose
    assert "A line added by template v1.1.0." in (project / "README.md").read_text()
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"] == "v1.1.0"
    changed = git(project, "status", "--porcelain")
    assert "README.md" in changed and ".copier-answers.yml" in changed, changed

    # And once committed, a second run finds nothing to bring
    git_commit_all(project, "Update from the andamio template")
    again = run(["make", "template-update"], cwd=project)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert git(project, "status", "--porcelain") == "", "an up-to-date project must stay clean"
