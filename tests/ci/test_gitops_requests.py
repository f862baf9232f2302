"""Tier 2 (render): the forge targets CI runs -- `make deploy-staging`, `make deploy-prod`,
`make change-request`, `make pr-comment` and `make drift-issue` -- against the library's
forge code (ci-templates/resources/andamio/, vendored as .andamio-ci/ or fetched at its tag):
overlay changes are committed on a branch and pushed with real git to a real bare
repository, PRs/MRs, comments and issues go through the forge's API.

The forge's API is out of reach here, so tests/support/stand_ins.py plays its endpoints as the
forges document them; the request each job sends is checked field by field.  The update
path from a project that still has scripts/change_request.py is checked at the end.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import ROOT, process
from support.history import NEW, OLD, build_history, render_at
from support.process import commit_all, git
from support.project import Projects, Render
from support.stand_ins import ForgeAPI, serve

pytestmark = pytest.mark.render

OVERLAY = "deploy/k8s/overlays/{}/kustomization.yaml"
TOKEN = "forge-token-for-tests"  # pragma: allowlist secret


def make(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``make ARGS`` in a CI runner's environment: the forge settings only, no developer git identity."""
    return process.make(project, *args, check=False, env=env, unset=("GIT_", "FORGE", "GITHUB", "CI_"))


@pytest.fixture
def project(render: Render, tmp_path: Path) -> Path:
    """A fresh clone of a project whose origin is a bare repository (the forge's git side)."""
    seed = render(name="seed")
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
    assert git(origin, "rev-list", "--count", f"main..{branch}").strip() == "1"
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
        assert git(project, "branch", "--show-current").strip() == "main" and not api.calls

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


# --- PR/MR comments: `make pr-comment` posts the metrics diff, a re-run edits it ---------------

DIFF = (
    "## Metrics against `origin/main`\n\n"
    "| Path | Metric | HEAD | workspace | Change |\n|---|---|---|---|---|\n"
)


def pull_request_env(api: ForgeAPI, project: Path, number: int) -> dict[str, str]:
    event = project.parent / "event.json"
    event.write_text(
        json.dumps({"action": "synchronize", "number": number, "pull_request": {"number": number}})
    )
    return {
        **github_env(api, project),
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_SERVER_URL": "https://github.example.invalid",
        "GITHUB_RUN_ID": "99",
    }


def write_diff(project: Path, text: str) -> None:
    (project / "reports").mkdir(exist_ok=True)
    (project / "reports" / "metrics-diff.md").write_text(text)


def test_pr_comment_posts_the_metrics_diff_once_and_edits_it_on_reruns_on_github(project):
    with serve(ForgeAPI("github", TOKEN)) as api:
        api.open_requests["feature"] = {"number": 5, "html_url": f"{api.url}/pull/5"}
        write_diff(project, DIFF + "| metrics.json | accuracy | 0.91 | 0.93 | 0.02 |\n")
        first = make(project, "pr-comment", env=pull_request_env(api, project, 5))
        assert first.returncode == 0, first.stdout + first.stderr
        # a new push to the pull request: the same comment is refreshed, not a second one added
        write_diff(project, DIFF + "| metrics.json | accuracy | 0.91 | 0.95 | 0.04 |\n")
        again = make(project, "pr-comment", env=pull_request_env(api, project, 5))
    assert again.returncode == 0, again.stdout + again.stderr
    assert TOKEN not in first.stdout + first.stderr + again.stdout + again.stderr
    assert [(c.method, c.path) for c in api.calls] == [
        ("GET", "/repos/acme/churn/issues/5/comments"),
        ("POST", "/repos/acme/churn/issues/5/comments"),
        ("GET", "/repos/acme/churn/issues/5/comments"),
        ("PATCH", f"/repos/acme/churn/issues/comments/{api.comments['5'][0]['id']}"),
    ]
    assert api.calls[0].headers["authorization"] == f"Bearer {TOKEN}"
    (comment,) = api.comments["5"]
    assert comment["body"].startswith("<!-- andamio:metrics-diff -->\n## Metrics against `origin/main`")
    assert "| 0.95 | 0.04 |" in comment["body"] and "0.93" not in comment["body"]
    assert "Posted by https://github.example.invalid/acme/churn/actions/runs/99" in comment["body"]
    assert "posted reports/metrics-diff.md on pull request 5" in first.stdout
    assert "updated reports/metrics-diff.md on pull request 5" in again.stdout


@pytest.mark.parametrize("runner", ["gitlab-ci", "jenkins"])
def test_pr_comment_posts_a_merge_request_note_on_gitlab_from_gitlab_ci_and_jenkins(project, runner):
    with serve(ForgeAPI("gitlab", TOKEN)) as api:
        if runner == "gitlab-ci":
            env = {**gitlab_env(api, project), "CI_MERGE_REQUEST_IID": "3"}
        else:  # Jenkins detects no forge: the job says which, and its multibranch PR build names the MR
            env = {
                "FORGE": "gitlab",
                "FORGE_API_URL": f"{api.url}/api/v4",
                "FORGE_PROJECT": "acme/churn",
                "FORGE_TOKEN": TOKEN,
                "CHANGE_ID": "3",
                "BUILD_URL": "https://jenkins.example.invalid/job/churn/PR-3/1/",
            }
        write_diff(project, DIFF)
        first = make(project, "pr-comment", env=env)
        assert first.returncode == 0, first.stdout + first.stderr
        again = make(project, "pr-comment", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    project_path = "42" if runner == "gitlab-ci" else "acme/churn"  # an id, or a path (sent encoded)
    notes = f"/api/v4/projects/{project_path}/merge_requests/3/notes"
    (note,) = api.comments["3"]
    assert [(c.method, c.path) for c in api.calls] == [
        ("GET", notes),
        ("POST", notes),
        ("GET", notes),
        ("PUT", f"{notes}/{note['id']}"),
    ]
    assert api.calls[0].query["sort"] == ["asc"], "the newest marked note is the one edited"
    assert api.calls[1].headers["private-token"] == TOKEN
    link = (
        "gitlab.example.invalid/acme/churn/-/jobs/7" if runner == "gitlab-ci" else "jenkins.example.invalid"
    )
    assert note["body"].startswith("<!-- andamio:metrics-diff -->\n") and link in note["body"]


@pytest.mark.parametrize(
    ("drop", "extra", "message"),
    [
        (
            ("GITHUB_EVENT_NAME",),
            {"GITHUB_EVENT_NAME": "push"},
            "not a pull/merge request build: nothing to post",
        ),
        (("FORGE_TOKEN",), {}, "FORGE_TOKEN is not set: not posted"),
    ],
    ids=["push-build", "no-token"],
)
def test_pr_comment_is_a_one_line_no_op_off_a_pull_request_or_without_a_token(project, drop, extra, message):
    with serve(ForgeAPI("github", TOKEN)) as api:
        env = {k: v for k, v in pull_request_env(api, project, 5).items() if k not in drop} | extra
        write_diff(project, DIFF)
        proc = make(project, "pr-comment", env=env)
    assert proc.returncode == 0 and message in proc.stdout, proc.stdout + proc.stderr
    assert not api.calls


def test_pr_comment_fails_clearly_without_the_report(project):
    with serve(ForgeAPI("github", TOKEN)) as api:
        proc = make(project, "pr-comment", env=pull_request_env(api, project, 5))
    assert proc.returncode != 0 and "no reports/metrics-diff.md to post" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not api.calls


# --- Drift issues: `make drift-issue` opens "Drift detected", later alarms comment on it --------


def test_drift_issue_opens_one_issue_and_comments_on_it_while_it_is_open_on_github(project):
    with serve(ForgeAPI("github", TOKEN)) as api:
        env = {
            **github_env(api, project),
            "GITHUB_SERVER_URL": "https://github.example.invalid",
            "GITHUB_RUN_ID": "7",
        }
        first = make(project, "drift-issue", env=env)
        assert first.returncode == 0, first.stdout + first.stderr
        again = make(project, "drift-issue", env={**env, "GITHUB_RUN_ID": "8"})
    assert again.returncode == 0, again.stdout + again.stderr
    assert [(c.method, c.path) for c in api.calls] == [
        ("GET", "/repos/acme/churn/issues"),
        ("POST", "/repos/acme/churn/issues"),
        ("GET", "/repos/acme/churn/issues"),
        ("POST", "/repos/acme/churn/issues/1/comments"),
    ]
    assert api.calls[0].query["labels"] == ["drift"] and api.calls[0].query["state"] == ["open"]
    (issue,) = api.issues
    assert issue["title"] == "Drift detected" and issue["labels"] == [{"name": "drift"}]
    assert "Job: https://github.example.invalid/acme/churn/actions/runs/7" in issue["body"]
    assert "drift:" in issue["body"], "the body names the thresholds that failed"
    assert "runs/8" in api.issue_notes["1"][0]["body"]
    assert "opened the issue 'Drift detected'" in first.stdout and "commented on" in again.stdout


def test_drift_issue_on_gitlab_links_the_job_given_by_forge_run_url(project):
    with serve(ForgeAPI("gitlab", TOKEN)) as api:
        env = {**gitlab_env(api, project), "FORGE_RUN_URL": "https://ci.example.invalid/run/12"}
        proc = make(project, "drift-issue", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    search, create = api.calls
    assert (search.method, search.path) == ("GET", "/api/v4/projects/42/issues")
    assert search.query["state"] == ["opened"] and search.query["labels"] == ["drift"]
    assert (create.method, create.path) == ("POST", "/api/v4/projects/42/issues")
    assert create.body["title"] == "Drift detected" and create.body["labels"] == "drift"
    assert "Job: https://ci.example.invalid/run/12" in create.body["description"]


def test_drift_issue_without_a_token_says_so_and_calls_nothing(project):
    with serve(ForgeAPI("gitlab", TOKEN)) as api:
        env = {k: v for k, v in gitlab_env(api, project).items() if k != "FORGE_TOKEN"}
        proc = make(project, "drift-issue", env=env)
    assert proc.returncode == 0 and "FORGE_TOKEN is not set" in proc.stdout, proc.stdout + proc.stderr
    assert not api.calls


# --- Shared style: the forge code is fetched from the library at its pinned tag ----------------


SHARED = {"ci_providers": ["github", "gitlab"], "ci_style": "shared"}


@pytest.fixture(scope="module")
def library(project_factory: Projects, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ci-templates library as its own repository (as published), tagged with the pinned version."""
    # the tag the project pins (ci_library_version), as its Makefile fetches it
    makefile = project_factory.new(tmp_path_factory.mktemp("gitops-shared") / "project", SHARED) / "Makefile"
    (ref,) = re.findall(r"^ANDAMIO_CI_REF := (v\S+)$", makefile.read_text(), re.M)
    work = shutil.copytree(ROOT / "ci-templates", tmp_path_factory.mktemp("library") / "work",
                           ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    git(work, "init", "-q", "-b", "main")
    git(work, "add", "-A")
    git(work, "-c", "user.name=lib", "-c", "user.email=lib@example.invalid", "commit", "-q", "-m", "library")
    git(work, "tag", ref)
    return work


def test_shared_style_fetches_the_forge_code_at_the_pinned_tag_once(render, library):
    project = render(SHARED)
    assert not (project / ".andamio-ci").exists(), "shared projects carry no copy of the library"
    write_diff(project, DIFF)
    with serve(ForgeAPI("gitlab", TOKEN)) as api:
        env = {**gitlab_env(api, project), "CI_MERGE_REQUEST_IID": "4", "ANDAMIO_CI_REPO": str(library)}
        first = make(project, "pr-comment", env=env)
        assert first.returncode == 0, first.stdout + first.stderr
        again = make(project, "pr-comment", env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        # a template update moved the pin: the copy fetched for the old one is replaced
        (project / "build/andamio-ci/.andamio-ref").write_text("v0.0.1\n")
        moved = make(project, "pr-comment", env=env)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert f"andamio-ci: fetching {library} at v" in first.stdout
    assert "fetching" not in again.stdout, "the fetched library is reused"
    assert "fetching" in moved.stdout, "a copy of another version is fetched again"
    fetched = project / "build/andamio-ci/resources/andamio/forge.py"
    assert fetched.read_bytes() == (ROOT / "ci-templates/resources/andamio/forge.py").read_bytes()
    assert len(api.comments["4"]) == 1


def test_shared_style_says_where_to_find_the_library_when_it_cannot_tell(render):
    project = render(SHARED)  # no origin, no CI variables
    proc = make(project, "change-request")
    assert proc.returncode == 2 and "set ANDAMIO_CI_REPO=<git URL of" in proc.stderr, (
        proc.stdout + proc.stderr
    )


# --- Update path: projects rendered when the forge code was scripts/*.py ------------------------

OLD_SCRIPTS = {
    "template/scripts/change_request.py": "scripts/change_request.py",
    "template/scripts/{% if kubernetes %}promote_image.py{% endif %}": "scripts/promote_image.py",
}


@pytest.fixture(scope="module")
def history_with_scripts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/support/history.py's two versions, the older one still rendering scripts/*.py.

    The old scripts are today's library files (their content does not matter, only that the
    template rendered them); the newer version's retired.yml lists their hashes as pristine.
    """
    repo = build_history(tmp_path_factory.mktemp("history-scripts") / "andamio-template")
    identity = ("-c", "user.name=t", "-c", "user.email=t@example.org")
    sources = {"forge.py": "change_request.py", "promote_image.py": "promote_image.py"}
    pristine = {}
    for tag in (OLD, NEW):
        git(repo, "checkout", "-q", tag)
        if tag == OLD:
            for (src, dest), name in zip(OLD_SCRIPTS.items(), sources, strict=True):
                content = (ROOT / "ci-templates/resources/andamio" / name).read_bytes()
                (repo / src).parent.mkdir(parents=True, exist_ok=True)
                (repo / src).write_bytes(content)
                pristine[dest] = hashlib.sha256(content).hexdigest()
        else:
            # only the scripts' rows: this history's old version rendered no other retired file
            table = [row for row in yaml.safe_load((repo / "hooks/migrations/retired.yml").read_text())
                     if row["path"] in pristine]  # fmt: skip
            for row in table:
                row["version"] = NEW.lstrip("v")
                row["pristine"] = [pristine[row["path"]]]
            (repo / "hooks/migrations/retired.yml").write_text(yaml.safe_dump(table))
        git(repo, "add", "-A")
        git(repo, *identity, "commit", "-q", "-m", f"{tag} with the forge scripts' layout")
        git(repo, "tag", "-f", tag)
    return repo


def test_update_from_a_project_with_the_old_scripts_keeps_only_the_teams_edits(
    history_with_scripts, tmp_path
):
    # Given a project rendered when the forge code was scripts/*.py, whose team changed one script
    project = render_at(history_with_scripts, tmp_path / "old", OLD, data={"kubernetes": True})
    edited = project / "scripts" / "promote_image.py"
    assert (project / "scripts" / "change_request.py").is_file() and edited.is_file()
    edited.write_text(edited.read_text() + "\n# team: our registry needs a tag prefix\n")
    commit_all(project, "team edit")
    # When it is updated with plain copier (andamio update runs the same migrations)
    copier_bin = Path(sys.executable).parent / "copier"
    proc = subprocess.run(
        [str(copier_bin), "update", "--trust", "--defaults", "--skip-answered"],
        cwd=project, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # Then the unchanged script is gone, the edited one is kept with a note where the code went
    assert not (project / "scripts" / "change_request.py").exists()
    assert edited.read_text().endswith("# team: our registry needs a tag prefix\n")
    assert "scripts/promote_image.py: KEPT, you had changed it" in proc.stderr
    assert "scripts/change_request.py: removed (unchanged" in proc.stderr
    # And the project calls the library's code, vendored with the update
    assert (project / ".andamio-ci/resources/andamio/forge.py").is_file()
    assert "scripts/promote_image.py" not in (project / "Makefile").read_text()


def test_the_retired_table_names_every_moved_script_with_sha256_hashes():
    rows = yaml.safe_load((ROOT / "hooks/migrations/retired.yml").read_text())
    # the forge scripts, and the GitHub setup action the library's composite action replaced
    assert {row["path"] for row in rows} == set(OLD_SCRIPTS.values()) | {".github/actions/setup/action.yml"}
    for row in rows:
        assert row["pristine"] and all(len(h) == 64 and int(h, 16) >= 0 for h in row["pristine"]), row
        assert not (ROOT / "template" / row["path"]).exists(), f"{row['path']} is retired but still rendered"
