"""Tier 4 (integration): the self-tests of the ci-templates library, executed.

Each library file is called with several input combinations against
ci-templates/tests/fixture/Makefile, whose targets print that they ran and with which
environment: GitHub's reusable workflows through act (.github/workflows/self-test.yml),
GitLab's components through gitlab-ci-local (tests/gitlab/self-test.yml).  The Jenkins steps
are exercised by tests/ci/test_ci_jenkins.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from support.ci import LIBRARY, act, runner_env, timed, tool
from support.process import commit_all

pytestmark = pytest.mark.integration


def _ran(log: str, job: str) -> list[str]:
    """The `selftest: ran ...` lines a job printed."""
    return re.findall(rf"^\[?{re.escape(job)}[^\n]*?selftest: ran ([^\n]+)$", log, re.MULTILINE)


def test_github_reusable_workflows_self_test(tmp_path):
    repo = tmp_path / "ci-templates"
    shutil.copytree(LIBRARY, repo)
    commit_all(repo)
    started = time.monotonic()
    code, log = act(repo, tmp_path, "-W", ".github/workflows/self-test.yml")
    timed("act: library self-test (11 calls of 6 reusable workflows)", time.monotonic() - started)
    assert code == 0, log[-5000:]
    assert log.count("🏁  Job succeeded") == 11, log[-3000:]
    expectations = {
        "make-defaults/make": ["ci-setup in fixture", "check in fixture"],
        "make-several-targets/make": [
            "restore in fixture",
            "push-image in fixture",
            "REGISTRY_USER=selftest-bot",
        ],
        "make-audit/make": ["audit in fixture", "AUDIT_ARGS=--strict"],
        "pipeline-defaults/pipeline": [
            "pipeline in fixture BASE=origin/main",
            "MLFLOW_TRACKING_URI=sqlite:///mlflow.db",
        ],
        "pipeline-custom-base/pipeline": [
            "metrics-diff in fixture BASE=origin/dev",
            "MLFLOW_TRACKING_URI=http://127.0.0.1:5000",
        ],
        "deploy-staging/deploy": ["deploy-staging in fixture", "DEPLOY_STAGING_CMD=echo deployed"],
        "promote/deploy": [
            "promote in fixture",
            "deploy-prod in fixture",
            "DEPLOY_PROD_CMD=echo released",
            "FORGE_TOKEN=unset",  # the read-only deploy workflow gets no write token
        ],
        "gitops-staging/deploy": ["deploy-staging in fixture", "FORGE_TOKEN=set"],
        "gitops-promote/deploy": ["deploy-prod in fixture", "FORGE_TOKEN=set"],
        "drift/drift": ["drift in fixture", "CURRENT=batch.csv"],
        "template-update/template-update": [
            "change-request in fixture",
            "FORGE_TOKEN=set",
            "UPDATE_BRANCH=update-from-template",
        ],
    }
    for job, needles in expectations.items():
        lines = "\n".join(_ran(log, job))
        for needle in needles:
            assert needle in lines, f"{job}: expected {needle!r} in\n{lines}"
    # the artifacts are named by the input, and the comment switch is honoured
    assert (tmp_path / "artifacts" / "pipeline-reports" / "reports" / "metrics-diff.md").is_file()
    assert (tmp_path / "artifacts" / "reports-dev" / "reports" / "metrics-diff.md").is_file()
    assert not (tmp_path / "gh.log").exists() or "pr comment" not in (tmp_path / "gh.log").read_text()


def _gitlab(repo: Path, *args: str) -> tuple[int, str]:
    tool("rsync")
    command = [tool("gitlab-ci-local"), "--force-shell-executor", "--shell-isolation"]
    command += ["--ignore-predefined-vars", "CI_PIPELINE_SOURCE", *args]
    proc = subprocess.run(command, cwd=repo, env=runner_env(), capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def test_gitlab_components_self_test(tmp_path):
    # Given the library with the fixture project at the root of a scratch repository
    repo = tmp_path / "ci-templates"
    shutil.copytree(LIBRARY / "templates", repo / "templates")
    shutil.copy2(LIBRARY / "tests" / "fixture" / "Makefile", repo / "Makefile")
    shutil.copy2(LIBRARY / "tests" / "gitlab" / "self-test.yml", repo / ".gitlab-ci.yml")
    commit_all(repo)

    # When a push to main runs, with the manual promotion started by hand
    started = time.monotonic()
    code, log = _gitlab(repo, "--manual", "promote")
    timed("gitlab-ci-local: library self-test, push", time.monotonic() - started)
    assert code == 0, log[-5000:]
    for job in ("check", "audit", "build", "pipeline", "pipeline-dev", "deploy-staging", "promote"):
        assert re.search(rf"PASS\s+{re.escape(job)}\s", log), f"{job} did not pass:\n{log[-3000:]}"
    assert "nightly" not in log and "template-update" not in log, "scheduled jobs ran on a push"
    assert "selftest: ran pipeline in pipeline BASE=origin/main" in log
    assert "selftest: ran metrics-diff in pipeline-dev BASE=origin/dev" in log
    assert "selftest: ran build in build" in log and "selftest: ran promote in promote" in log
    assert "selftest: ran push-image in build" in log and "selftest: ran deploy-prod in promote" in log
    # the merge-request comment is the project's make target (a no-op outside a merge request)
    assert "selftest: ran pr-comment in pipeline" in log and "selftest: ran pr-comment in pipeline-dev" in log

    # And when the schedule runs, only the scheduled jobs run
    code, log = _gitlab(repo, "--variable", "CI_PIPELINE_SOURCE=schedule")
    timed("gitlab-ci-local: library self-test, schedule", time.monotonic() - started)
    assert code == 0, log[-5000:]
    passed = set(re.findall(r"PASS\s+([\w-]+)", log))
    assert passed == {"audit", "nightly", "drift", "template-update"}, passed
    assert "selftest: ran drift in nightly" in log
    # a drift fails its job, whose after_script opens the issue; no drift, no issue
    assert re.search(r"WARN\s+drift-alarm\b", log), log[-3000:]
    assert "selftest: ran drift-issue in drift-alarm" in log and "drift-issue in drift " not in log
    assert "selftest: ran change-request in template-update" in log
