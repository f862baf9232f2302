"""Tier 2 (render): `make promote-image` changes exactly an overlay's image tag and model
version, in one commit on a new branch -- the merge request CI opens is the deployment.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from support.process import commit_all, git, make
from support.project import Render

pytestmark = pytest.mark.render

OVERLAY = "deploy/k8s/overlays/{}/kustomization.yaml"


@pytest.fixture
def project(render: Render) -> Path:
    # A fresh copy per test (the defaults are rendered once per session), its own git
    project = render()
    commit_all(project)
    return project


def _script(project: Path) -> ModuleType:
    # the library's code as the project carries it (vendored: ci_style standalone, the default)
    path = project / ".andamio-ci" / "resources" / "andamio" / "promote_image.py"
    spec = importlib.util.spec_from_file_location("promote_image", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_promote_image_changes_exactly_the_tag_and_model_version_on_a_branch(project):
    # Given a committed project on main, when prod is promoted to a new image and model
    proc = make(project, "promote-image", "ENV=prod", "TAG=1f3c2ab", "MODEL_VERSION=7", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    # Then a new branch holds one commit that touches only the prod overlay
    assert git(project, "branch", "--show-current").strip() == "promote/prod-1f3c2ab"
    assert git(project, "rev-list", "--count", "main..HEAD").strip() == "1"
    assert git(project, "diff", "--name-only", "main", "HEAD").splitlines() == [OVERLAY.format("prod")]
    # And exactly two lines changed: the image tag and the model version
    diff = git(project, "diff", "--unified=0", "main", "HEAD", "--", OVERLAY.format("prod"))
    removed = [line for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    added = [line for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert removed == [
        "-    newTag: latest # promote-image: image tag",
        "-      - MODEL_VERSION=unset # promote-image: model version",
    ], diff
    assert added == [
        "+    newTag: 1f3c2ab # promote-image: image tag",
        "+      - MODEL_VERSION=7 # promote-image: model version",
    ], diff
    # And the overlay still parses, with the new values where kustomize reads them
    overlay = yaml.safe_load((project / OVERLAY.format("prod")).read_text())
    assert overlay["images"][0]["newTag"] == "1f3c2ab"
    assert "MODEL_VERSION=7" in overlay["configMapGenerator"][0]["literals"]
    assert git(project, "status", "--porcelain") == "", "the promotion left uncommitted changes"
    assert "Promote prod to image 1f3c2ab (model version 7)" in git(project, "log", "-1", "--format=%s")


def test_promote_image_keeps_the_model_version_when_not_given(project):
    proc = make(project, "promote-image", "ENV=staging", "TAG=v2", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert git(project, "branch", "--show-current").strip() == "promote/staging-v2"
    diff = git(project, "diff", "--unified=0", "main", "HEAD")
    assert diff.count("\n-  ") == 1 and "newTag: v2" in diff and "MODEL_VERSION" not in diff, diff


def test_promoting_the_running_image_changes_nothing(project):
    proc = make(project, "promote-image", "ENV=staging", "TAG=latest", "MODEL_VERSION=unset", check=False)
    assert proc.returncode == 0 and "nothing to do" in proc.stdout, proc.stdout + proc.stderr
    assert git(project, "branch", "--show-current").strip() == "main"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ENV=staging", "TAG=bad tag!"], "is not a valid image tag"),
        (["ENV=staging", "TAG=v3", "MODEL_VERSION=7; rm -rf /"], "is not a valid model version"),
        # an unknown overlay is an error, never a fallback to another one
        (["ENV=qa", "TAG=v3"], "no overlay 'qa' (known: prod, staging)"),
        # no overlay named: nothing is promoted (there is no default environment)
        (["TAG=v3"], "usage: make promote-image ENV=<prod|staging> TAG="),
        ([], "usage: make promote-image ENV=<prod|staging> TAG="),
        # the old name is refused, not silently ignored (it used to promote staging)
        (["OVERLAY=prod", "TAG=v3"], "OVERLAY= is now ENV="),
    ],
)
def test_promote_image_refuses_bad_input(project, args, message):
    proc = make(project, "promote-image", *args, check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stdout + proc.stderr
    assert (
        git(project, "status", "--porcelain") == ""
        and git(project, "branch", "--show-current").strip() == "main"
    )


def test_an_env_variable_of_the_shell_is_not_taken_for_the_overlay(project):
    # Given a shell that exports ENV (sh reads its startup file from it), when no ENV= is given
    proc = make(project, "promote-image", "TAG=v5", check=False, env={"ENV": "prod"})
    # Then nothing is promoted: the overlay is named on the command line or not at all
    assert proc.returncode == 2 and "usage: make promote-image ENV=" in proc.stderr, proc.stderr
    assert git(project, "branch", "--show-current").strip() == "main"


def test_promote_image_refuses_an_overlay_with_uncommitted_changes(project):
    path = project / OVERLAY.format("staging")
    path.write_text(path.read_text() + "# local experiment\n")
    proc = make(project, "promote-image", "ENV=staging", "TAG=v4", check=False)
    assert proc.returncode != 0 and "uncommitted changes" in proc.stderr, proc.stderr
    assert git(project, "branch", "--show-current").strip() == "main"


def test_a_removed_marker_is_an_error_not_a_silent_no_op(project):
    module = _script(project)
    text = (project / OVERLAY.format("staging")).read_text().replace(" # promote-image: image tag", "")
    with pytest.raises(module.PromotionError, match="exactly one line marked for tag"):
        module.current(text)
