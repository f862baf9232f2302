"""Tier 4 (integration): gitlab-ci-local runs the generated GitLab CI jobs for real.

gitlab-ci-local (npm, pinned 4.72.0) reads .gitlab-ci.yml as GitLab does (includes, inputs,
rules, needs, extends) and runs each job in its own copy of the repository with the shell
executor.  The shared style is resolved from a local include: the project's
``include: project:`` entries point at the library's git host, which is out of reach
offline, so the test copies ci-templates/templates into the project and includes it locally.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from support.ci import (
    EXEC_ANSWERS,
    assert_parity,
    break_unit_tests,
    github_jobs_for,
    provider_jobs,
    runner_env,
    timed,
    tool,
    use_local_library,
    uv_cache_dir,
)
from support.process import commit_all, git, make
from support.project import Projects

pytestmark = [pytest.mark.slow, pytest.mark.integration]

# Predefined variables the tests set to play a merge request, a push or a schedule.
PREDEFINED = "CI_PIPELINE_SOURCE,CI_COMMIT_BRANCH,CI_COMMIT_REF_NAME"


def gitlab_ci_local(project: Path, *args: str, source: str = "push") -> tuple[int, str]:
    tool("rsync")  # --shell-isolation copies the repository with it
    command = [tool("gitlab-ci-local"), "--force-shell-executor", "--shell-isolation"]
    command += ["--ignore-predefined-vars", PREDEFINED]
    command += ["--variable", f"UV_CACHE_DIR={uv_cache_dir()}", "--variable", f"CI_PIPELINE_SOURCE={source}"]
    proc = subprocess.run(
        [*command, *args], cwd=project, env=runner_env(), capture_output=True, text=True, timeout=1200
    )
    return proc.returncode, proc.stdout + proc.stderr


def listed_jobs(project: Path, source: str, branch: str) -> list[str]:
    """Jobs GitLab would create for a pipeline of ``source`` on ``branch`` (rules evaluated)."""
    command = [tool("gitlab-ci-local"), "--list-json", "--ignore-predefined-vars", PREDEFINED]
    command += ["--variable", f"CI_PIPELINE_SOURCE={source}"]
    command += ["--variable", f"CI_COMMIT_BRANCH={branch}", "--variable", f"CI_COMMIT_REF_NAME={branch}"]
    proc = subprocess.run(command, cwd=project, env=runner_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [job["name"] for job in json.loads(proc.stdout) if job["when"] != "never"]


class Rendered(dict):
    """Projects rendered on first use, one per ci_style (each xdist worker renders its own)."""

    def __init__(self, factory: pytest.TempPathFactory, projects: Projects) -> None:
        super().__init__()
        self.factory, self.projects = factory, projects

    def __missing__(self, style: str) -> Path:
        dest = self.factory.mktemp(f"glci-{style}") / "project"
        project = self.projects.new(dest, {**EXEC_ANSWERS, "ci_style": style})
        commit_all(project)
        if style == "shared":
            use_local_library(project)
        self[style] = project
        return project


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, project_factory):
    return Rendered(tmp_path_factory, project_factory)


@pytest.mark.parametrize("style", ["standalone", "shared"])
def test_gitlab_ci_local_runs_check_test_and_pipeline_to_green(rendered, style):
    project = rendered[style]
    started = time.monotonic()
    code, log = gitlab_ci_local(project, "check", "test", "pipeline")
    timed(f"gitlab-ci-local ({style}): check + test + pipeline", time.monotonic() - started)
    assert code == 0, log[-6000:]
    for job in ("check", "test", "pipeline"):
        assert re.search(rf"PASS\s+{job}\b", log), f"{job} did not pass:\n{log[-3000:]}"
    for needle in ("$ make ci-setup", "Running stage 'train'", "quality gate passed", "## Metrics against"):
        assert needle in log, f"missing {needle!r} in the gitlab-ci-local log"
    artifacts = project / ".gitlab-ci-local" / "artifacts" / "pipeline"
    assert (artifacts / "reports" / "metrics-diff.md").is_file(), "the metrics diff is not an artifact"


# How each scenario of support.ci.SCENARIOS looks to GitLab: pipeline source and branch.
GITLAB_SCENARIOS = {
    "change": ("merge_request_event", "feature"),
    "main": ("push", "main"),
    "schedule": ("schedule", "main"),
}


@pytest.mark.parametrize("style", ["standalone", "shared"])
def test_rules_create_the_same_jobs_as_github(rendered, style):
    project = rendered[style]
    created = {s: listed_jobs(project, *GITLAB_SCENARIOS[s]) for s in GITLAB_SCENARIOS}
    assert created == {s: github_jobs_for(project, s) for s in GITLAB_SCENARIOS}
    assert created["change"] == ["check", "test", "audit", "pipeline"]
    assert created["main"] == ["check", "test", "audit", "pipeline", "deploy-staging", "promote"]
    assert created["schedule"] == ["audit", "template-update"]
    # and the job list matches GitHub and Jenkins, target for target
    assert_parity(provider_jobs(project))


def test_promote_waits_for_a_manual_start(rendered):
    project = rendered["standalone"]
    command = [tool("gitlab-ci-local"), "--list-json", "--ignore-predefined-vars", PREDEFINED]
    command += ["--variable", "CI_COMMIT_BRANCH=main"]
    jobs = json.loads(subprocess.run(command, cwd=project, capture_output=True, text=True, check=True).stdout)
    promote = next(j for j in jobs if j["name"] == "promote")
    assert promote["when"] == "manual" and promote["allow_failure"] is False


def test_gitlab_ci_local_fails_when_a_unit_test_fails(rendered, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(
        rendered["standalone"], broken, symlinks=True, ignore=shutil.ignore_patterns(".gitlab-ci-local")
    )
    break_unit_tests(broken)
    started = time.monotonic()
    code, log = gitlab_ci_local(broken, "test")
    timed("gitlab-ci-local: test job of a broken project", time.monotonic() - started)
    assert code != 0, "a failing unit test must fail the gitlab-ci-local run"
    assert "test_fails" in log and re.search(r"FAIL\s+test\b", log), log[-3000:]


@pytest.mark.parametrize("style", ["standalone", "shared"])
def test_deploy_staging_job_opens_the_merge_request(project_factory, tmp_path, style):
    """The GitOps job for real: gitlab-ci-local runs deploy-staging of a Kubernetes project.

    The job pushes the promotion branch with git to the project's (bare) remote and opens the
    merge request through the API, here the stand-in of tests/support/stand_ins.py; CI never deploys.
    """
    from support.stand_ins import ForgeAPI, serve

    answers = {"ci_providers": ["gitlab"], "ci_style": style, "serving": True, "kubernetes": True}
    project = project_factory.new(tmp_path / "project", answers)
    commit_all(project)
    if style == "shared":
        use_local_library(project)
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(project), str(origin))
    # the Makefile's IMAGE_TAG: the last commit that changed the image
    tag = make(project, "--eval", "print-tag: ; @echo $(IMAGE_TAG)", "print-tag").stdout.strip()

    with serve(ForgeAPI("gitlab", "glpat-test")) as api:
        command = [tool("gitlab-ci-local"), "--force-shell-executor", "--shell-isolation"]
        command += ["--ignore-predefined-vars", f"{PREDEFINED},CI_API_V4_URL,CI_PROJECT_ID"]
        for name, value in {
            "UV_CACHE_DIR": uv_cache_dir(),
            "CI_PIPELINE_SOURCE": "push",
            "CI_API_V4_URL": f"{api.url}/api/v4",
            "CI_PROJECT_ID": "42",
            "ANDAMIO_BOT_TOKEN": "glpat-test",  # the masked project variable
            "FORGE_PUSH_URL": str(origin),
        }.items():
            command += ["--variable", f"{name}={value}"]
        started = time.monotonic()
        proc = subprocess.run(
            [*command, "deploy-staging"],
            cwd=project,
            env=runner_env(),
            capture_output=True,
            text=True,
            timeout=1200,
        )
        timed(f"gitlab-ci-local ({style}): deploy-staging", time.monotonic() - started)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0 and re.search(r"PASS\s+deploy-staging\b", log), log[-6000:]
    assert "glpat-test" not in log, "the token reached the job log"

    # Then the remote holds the promotion branch, and one merge request asks to merge it
    branch = f"promote/staging-{tag}"
    changed = git(origin, "diff", "--name-only", "main", branch).split()
    assert changed == ["deploy/k8s/overlays/staging/kustomization.yaml"], changed
    (call,) = api.calls
    assert (call.method, call.path, call.headers["private-token"]) == (
        "POST",
        "/api/v4/projects/42/merge_requests",
        "glpat-test",
    )
    assert call.body["source_branch"] == branch and call.body["target_branch"] == "main"
    assert f"| image tag | `latest` | `{tag}` |" in call.body["description"]
