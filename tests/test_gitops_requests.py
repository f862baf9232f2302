"""Tier 2 (render): the GitOps targets CI runs -- `make deploy-staging`, `make deploy-prod` and
`make change-request` -- commit the overlay change on a branch, push it with real git to a
real bare repository, and open the pull/merge request through the forge's API.

The forge's API is out of reach here, so tests/stand_ins.py plays its PR/MR endpoints as the
forges document them; the request each job sends is checked field by field.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import render_project
from stand_ins import ForgeAPI, serve

pytestmark = pytest.mark.render

OVERLAY = "deploy/k8s/overlays/{}/kustomization.yaml"
TOKEN = "forge-token-for-tests"  # pragma: allowlist secret


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


def make(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # A CI runner's environment: the forge settings only, no developer git identity
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "FORGE", "GITHUB", "CI_"))}
    return subprocess.run(
        ["make", *args], cwd=project, capture_output=True, text=True, check=False, env={**base, **(env or {})}
    )


@pytest.fixture(scope="module")
def rendered(template_src: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_project(template_src, tmp_path_factory.mktemp("gitops") / "project")


@pytest.fixture
def project(rendered: Path, tmp_path: Path) -> Path:
    """A fresh clone of a project whose origin is a bare repository (the forge's git side)."""
    seed = shutil.copytree(rendered, tmp_path / "seed")
    git(seed, "init", "-q", "-b", "main")
    git(seed, "add", "-A")
    git(seed, "-c", "user.name=dev", "-c", "user.email=dev@example.invalid", "commit", "-q", "-m", "initial")
    git(tmp_path, "clone", "-q", "--bare", str(seed), "origin.git")
    git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), "project")
    project = tmp_path / "project"
    # what `make pipeline` leaves for the deploy job: the registered model version and lineage
    (project / "reports").mkdir(exist_ok=True)
    (project / "reports" / "registration.json").write_text(
        json.dumps(
            {"name": "model", "version": "3", "run_id": "abc123", "git_commit": "f00d", "data_hash": "d1"}
        )
    )
    return project


def gitlab_env(api: ForgeAPI, project: Path) -> dict[str, str]:
    return {
        "GITLAB_CI": "true",
        "CI_API_V4_URL": f"{api.url}/api/v4",
        "CI_PROJECT_ID": "42",
        "CI_DEFAULT_BRANCH": "main",
        "CI_JOB_URL": "https://gitlab.example.invalid/acme/churn/-/jobs/7",
        "FORGE_PUSH_URL": str(project.parent / "origin.git"),
        "FORGE_TOKEN": TOKEN,
    }


def github_env(api: ForgeAPI, project: Path) -> dict[str, str]:
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_API_URL": api.url,
        "GITHUB_REPOSITORY": "acme/churn",
        "DEFAULT_BRANCH": "main",
        "FORGE_PUSH_URL": str(project.parent / "origin.git"),
        "FORGE_TOKEN": TOKEN,
    }


def image_tag(project: Path) -> str:
    proc = make(project, "--eval", "print-tag: ; @echo $(IMAGE_TAG)", "print-tag")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_deploy_staging_pushes_the_overlay_change_and_opens_a_merge_request(project):
    tag = image_tag(project)
    with serve(ForgeAPI("gitlab", TOKEN)) as api:
        # When the deploy-staging job runs on GitLab after the pipeline and the image build
        proc = make(project, "deploy-staging", env=gitlab_env(api, project))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr, "the token leaked into the job log"

    # Then the bare remote holds the promotion branch: one commit, the staging overlay only
    origin = project.parent / "origin.git"
    branch = f"promote/staging-{tag}"
    assert git(origin, "rev-list", "--count", f"main..{branch}") == "1"
    assert git(origin, "diff", "--name-only", "main", branch).splitlines() == [OVERLAY.format("staging")]
    diff = git(origin, "diff", "--unified=0", "main", branch)
    assert f"+    newTag: {tag} # promote-image: image tag" in diff
    assert "+      - MODEL_VERSION=3 # promote-image: model version" in diff

    # And exactly one merge request was asked for, into main, with the promotion as its body
    (call,) = api.calls
    assert (call.method, call.path) == ("POST", "/api/v4/projects/42/merge_requests")
    assert call.headers["private-token"] == TOKEN
    assert call.body["source_branch"] == branch and call.body["target_branch"] == "main"
    assert call.body["title"] == f"Promote staging to image {tag} (model version 3)"
    description = call.body["description"]
    assert f"| image tag | `latest` | `{tag}` |" in description
    assert "| model version | `unset` | `3` |" in description
    assert "run_id: `abc123`" in description and "git_commit: `f00d`" in description
    assert "Opened by https://gitlab.example.invalid/acme/churn/-/jobs/7" in description
    assert "opened the merge request" in proc.stdout


def test_a_second_run_refreshes_the_open_pull_request_on_github(project):
    tag = image_tag(project)
    with serve(ForgeAPI("github", TOKEN)) as api:
        first = make(project, "deploy-staging", env=github_env(api, project))
        assert first.returncode == 0, first.stdout + first.stderr
        # a re-run of the job: a fresh checkout of main, the same promotion
        git(project, "switch", "-q", "main")
        git(project, "branch", "-q", "-D", f"promote/staging-{tag}")
        again = make(project, "deploy-staging", env=github_env(api, project))
    assert again.returncode == 0, again.stdout + again.stderr
    assert [(c.method, c.path) for c in api.calls] == [
        ("POST", "/repos/acme/churn/pulls"),
        ("POST", "/repos/acme/churn/pulls"),
        ("GET", "/repos/acme/churn/pulls"),
        ("PATCH", "/repos/acme/churn/pulls/1"),
    ]
    assert api.calls[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert api.calls[0].body["head"] == f"promote/staging-{tag}" and api.calls[0].body["base"] == "main"
    assert api.calls[2].query == {"head": [f"acme:promote/staging-{tag}"], "state": ["open"]}
    assert "updated the pull request" in again.stdout
    assert len(api.open_requests) == 1


def test_deploy_prod_proposes_what_staging_declares(project):
    tag = image_tag(project)
    with serve(ForgeAPI("gitlab", TOKEN)) as api:
        # Before staging was ever promoted, prod has nothing to take: a clear refusal
        early = make(project, "deploy-prod", env=gitlab_env(api, project))
        assert early.returncode != 0 and "staging runs no promoted image yet" in early.stderr, early.stderr
        assert git(project, "branch", "--show-current") == "main" and not api.calls

        # When staging's merge request is merged, and the approved promote job runs deploy-prod
        assert make(project, "deploy-staging", env=gitlab_env(api, project)).returncode == 0
        git(project, "switch", "-q", "main")
        git(project, "merge", "-q", "--ff-only", f"promote/staging-{tag}")
        proc = make(project, "deploy-prod", env=gitlab_env(api, project))
    assert proc.returncode == 0, proc.stdout + proc.stderr

    # Then prod gets staging's image and model version, on its own branch and merge request
    origin = project.parent / "origin.git"
    branch = f"promote/prod-{tag}"
    assert git(origin, "diff", "--name-only", f"{branch}~1", branch).splitlines() == [OVERLAY.format("prod")]
    prod = api.calls[-1].body
    assert prod["source_branch"] == branch
    assert prod["title"] == f"Promote prod to image {tag} (model version 3)"


def test_nothing_to_propose_when_staging_already_runs_the_image(project):
    tag = image_tag(project)
    with serve(ForgeAPI("gitlab", TOKEN)) as api:
        assert make(project, "deploy-staging", env=gitlab_env(api, project)).returncode == 0
        git(project, "switch", "-q", "main")
        git(project, "merge", "-q", "--ff-only", f"promote/staging-{tag}")
        calls = len(api.calls)
        # The merge changed only the overlay: the image tag stays, so nothing new is proposed
        assert image_tag(project) == tag
        proc = make(project, "deploy-staging", env=gitlab_env(api, project))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "nothing to do" in proc.stdout and "nothing to propose" in proc.stdout, proc.stdout
    assert len(api.calls) == calls, "no request may be opened when nothing changed"


def test_the_image_tag_follows_the_image_inputs_only(project):
    before = image_tag(project)
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\nA docs-only change.\n")
    git(project, "-c", "user.name=dev", "-c", "user.email=dev@example.invalid", "commit", "-qam", "docs")
    assert image_tag(project) == before, "a change outside the image must keep its tag"
    module = next((project / "src").rglob("settings.py"))
    module.write_text(module.read_text() + "\n# a code change\n")
    git(project, "-c", "user.name=dev", "-c", "user.email=dev@example.invalid", "commit", "-qam", "code")
    assert image_tag(project) not in ("", before)


@pytest.mark.parametrize(
    ("drop", "extra", "message"),
    [
        (("FORGE_TOKEN",), {}, "FORGE_TOKEN is not set"),
        (("GITLAB_CI", "CI_API_V4_URL"), {}, "FORGE must be one of github, gitlab"),
        ((), {"FORGE": "bitbucket"}, "FORGE must be one of github, gitlab (got bitbucket)"),
        ((), {"FORGE_TOKEN": "wrong"}, "HTTP 401"),
    ],
)
def test_change_request_fails_clearly_and_pushes_nothing_without_credentials(project, drop, extra, message):
    with serve(ForgeAPI("gitlab", TOKEN)) as api:
        env = {k: v for k, v in gitlab_env(api, project).items() if k not in drop} | extra
        proc = make(project, "deploy-staging", env=env)
    assert proc.returncode != 0 and message in proc.stderr, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    if message != "HTTP 401":  # settings are checked before anything is pushed
        assert "promote/" not in git(project.parent / "origin.git", "branch", "--list")


def test_change_request_on_the_default_branch_proposes_nothing(project):
    with serve(ForgeAPI("github", TOKEN)) as api:
        proc = make(project, "change-request", env=github_env(api, project))
    assert proc.returncode == 0 and "on main: nothing to propose" in proc.stdout, proc.stdout + proc.stderr
    assert not api.calls


def test_a_reviewers_commit_on_the_branch_is_never_overwritten(project):
    tag = image_tag(project)
    branch = f"promote/staging-{tag}"
    origin = project.parent / "origin.git"
    with serve(ForgeAPI("gitlab", TOKEN)) as api:
        assert make(project, "deploy-staging", env=gitlab_env(api, project)).returncode == 0
        # A reviewer pushes a commit of their own to the proposed branch
        reviewer = project.parent / "reviewer"
        git(project.parent, "clone", "-q", "--branch", branch, str(origin), str(reviewer))
        (reviewer / "NOTES.md").write_text("checked on staging-like data\n")
        git(reviewer, "add", "NOTES.md")
        identity = ("-c", "user.name=Rev", "-c", "user.email=rev@example.invalid")
        git(reviewer, *identity, "commit", "-qm", "review")
        git(reviewer, "push", "-q", "origin", branch)
        reviewed = git(origin, "rev-parse", branch)
        # When the job runs again (a fresh checkout of main, the same promotion)
        git(project, "switch", "-q", "main")
        git(project, "branch", "-q", "-D", branch)
        proc = make(project, "deploy-staging", env=gitlab_env(api, project))
    # Then it refuses, names the reviewer's commit, and the branch keeps it
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "holds commits by someone else" in proc.stderr and "rev@example.invalid review" in proc.stderr
    assert git(origin, "rev-parse", branch) == reviewed
    assert len(api.calls) == 1, "no second request after the refusal"
