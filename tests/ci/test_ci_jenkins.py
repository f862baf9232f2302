"""Tier 4 (integration): the Jenkinsfile and the Jenkins shared library, linted and evaluated.

No Jenkins runtime can be had offline, so Jenkins is proven in two steps: npm-groovy-lint
(CodeNarc) checks the Groovy, and ci-templates/tests/jenkins/harness.groovy evaluates the
Jenkinsfile and the vars/ steps with recording stand-ins for the Jenkins steps (Groovy 4 from
npm-groovy-lint's bundle, on Java 17).  What it proves: the stages, in order; which of them
run on a change, on main and on the timer; the make targets they call; the credentials they
bind; the approval of promote.  It compares all of that with the GitHub workflow.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from support.ci import (
    EXEC_ANSWERS,
    LIBRARY,
    SCENARIOS,
    assert_parity,
    github_jobs,
    github_jobs_for,
    groovy_classpath,
    make_targets,
    provider_jobs,
    tool,
)

pytestmark = pytest.mark.integration

HARNESS = LIBRARY / "tests" / "jenkins" / "harness.groovy"
STYLES = ["standalone", "shared"]


def harness(requests: list[list[str]], work: Path) -> list[dict]:
    batch = work / "requests.json"
    batch.write_text(json.dumps(requests))
    command = ["java", "-cp", groovy_classpath(), "groovy.ui.GroovyMain", str(HARNESS), "batch", str(batch)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def library_vars(project: Path) -> Path:
    """The vars/ a Jenkinsfile loads: the vendored copy (standalone) or the library (shared)."""
    vendored = project / ".andamio-ci" / "vars"
    return vendored if vendored.is_dir() else LIBRARY / "vars"


def assert_vendored_library(project: Path) -> None:
    """The standalone project's .andamio-ci/vars is ci-templates/vars, file for file."""
    vendored = {p.name: p.read_text() for p in (project / ".andamio-ci" / "vars").iterdir()}
    assert vendored == {p.name: p.read_text() for p in (LIBRARY / "vars").iterdir()}


def groovy_lint(files_glob: str, cwd: Path, expected_files: int, *config: str) -> None:
    command = [tool("npm-groovy-lint"), "--noserver", "--failon", "warning", "--output", "txt"]
    proc = subprocess.run(
        [*command, *config, "--files", files_glob], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    plain = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout)  # colours off
    linted = re.search(r"results in (\d+) linted files", plain)
    assert linted and int(linted.group(1)) == expected_files, proc.stdout[-2000:]
    assert "'Error'   │ 0" in proc.stdout and "'Warning' │ 0" in proc.stdout, proc.stdout[-2000:]


@pytest.fixture(scope="module")
def projects(tmp_path_factory, project_factory):
    rendered = {}
    for style in STYLES:
        for serving in (True, False):
            dest = tmp_path_factory.mktemp(f"jenkins-{style}") / "project"
            rendered[(style, serving)] = project_factory.new(
                dest, {**EXEC_ANSWERS, "ci_style": style, "serving": serving}
            )
    return rendered


def test_npm_groovy_lint_passes_the_jenkinsfiles_and_the_library(projects, tmp_path):
    for style in STYLES:
        (tmp_path / style).mkdir()
        shutil.copy2(projects[(style, True)] / "Jenkinsfile", tmp_path / style / "Jenkinsfile")
    groovy_lint("**/Jenkinsfile", tmp_path, len(STYLES), "--config", "recommended-jenkinsfile")
    groovy_lint("*.groovy", LIBRARY / "vars", len(list((LIBRARY / "vars").glob("*.groovy"))))


@pytest.mark.parametrize("serving", [True, False], ids=["serving", "no-serving"])
@pytest.mark.parametrize("style", STYLES)
def test_jenkinsfile_stages_match_github_on_every_trigger(projects, tmp_path, style, serving):
    project = projects[(style, serving)]
    vars_dir = str(library_vars(project))
    # `make restore drift` fails (a drift): the drift stage then runs `make drift-issue` too
    requests = [["jenkinsfile", str(project / "Jenkinsfile"), vars_dir, s, DRIFT_FAILS] for s in SCENARIOS]
    results = dict(zip(SCENARIOS, harness(requests, tmp_path), strict=True))
    for scenario, result in results.items():
        stages = result["stages"]
        assert stages[0]["name"] == "setup" and stages[0]["commands"] == ["make ci-setup"]
        assert stages[0]["runs"], "the setup stage runs on every trigger"
        running = [s["name"] for s in stages[1:] if s["runs"]]
        assert running == github_jobs_for(project, scenario), f"{scenario}: Jenkins runs {running}"
    # the make targets each stage really calls (library steps executed), against GitHub's jobs
    executed = [
        (s["name"], [t for c in s["commands"] if c.startswith("make ") for t in make_targets(c)])
        for s in results["main"]["stages"][1:]
    ]
    assert executed == github_jobs(project)
    assert_parity(provider_jobs(project))
    stages = {s["name"]: s for s in results["main"]["stages"]}
    assert stages["promote"]["input"] == {
        "message": "Promote the registered model to champion?",
        "submitter": "ml-release",
    }
    promote_credentials = ["string:mlflow-tracking-uri->MLFLOW_TRACKING_URI"]
    if (project / "deploy" / "k8s").is_dir():  # deploy-prod opens the prod PR/MR with the forge token
        promote_credentials.append("string:forge-token->FORGE_TOKEN")
    assert stages["promote"]["credentials"] == promote_credentials
    assert stages["pipeline"]["commands"][-len(FORGE_CODE) - 1 :] == [*FORGE_CODE, "make pr-comment"]
    assert "archive reports/**" in stages["pipeline"]["commands"]
    assert stages["pipeline"]["credentials"] == ["string:forge-token->FORGE_TOKEN"]  # the comment alone
    if "drift" in stages:
        assert stages["drift"]["commands"] == ["make restore drift", *FORGE_CODE, "make drift-issue"]
        assert stages["drift"]["credentials"] == ["string:forge-token->FORGE_TOKEN"]
        assert stages["drift"]["failed"], "a drift fails the stage after opening the issue"
    ref = f"andamio-ci@v{(LIBRARY / 'VERSION').read_text().strip()}"
    if style == "shared":
        assert results["main"]["library"] == {"ref": ref}
    else:  # the library is the repository's own vendored copy, the same files as ci-templates/
        assert results["main"]["library"] == {"ref": ref, "scm": "scm", "libraryPath": ".andamio-ci/"}
        assert_vendored_library(project)


# Self-test of vars/*.groovy: each step with several input combinations, and its refusals.
FORGE_CODE = [  # the forge code a shared-style project's forge make targets find in build/andamio-ci
    "writeFile build/andamio-ci/resources/andamio/forge.py",
    "writeFile build/andamio-ci/resources/andamio/promote_image.py",
    "rm -f build/andamio-ci/.andamio-ref",  # these files are this version's: make must not refetch
]
DRIFT_FAILS = json.dumps(["make restore drift"])
VARS_CASES = [
    ("andamioSetup", {}, {"commands": ["make ci-setup"], "credentials": []}),
    ("andamioSetup", {"dir": "ml"}, {"commands": ["make ci-setup"], "credentials": []}),
    ("andamioMake", {"targets": "check"}, {"commands": ["make check"], "credentials": []}),
    ("andamioMake", {"targets": " restore build "}, {"commands": ["make restore build"], "credentials": []}),
    ("andamioMake", {}, {"error": "andamioMake: targets is required", "commands": []}),
    (
        "andamioMake",
        {"targets": "check; rm -rf /"},
        {"error": "andamioMake: targets must be make target names, got 'check; rm -rf /'", "commands": []},
    ),
    (
        "andamioPipeline",
        {},
        {
            "commands": [
                "export BASE=origin/main",
                "make restore pipeline push metrics-diff",
                "archive reports/**",
                *FORGE_CODE,
                "make pr-comment",
            ],
            "credentials": [],
        },
    ),
    (
        "andamioPipeline",
        {"base": "origin/develop", "archive": False},
        {
            "commands": [
                "export BASE=origin/develop",
                "make restore pipeline push metrics-diff",
                *FORGE_CODE,
                "make pr-comment",
            ],
            "credentials": [],
        },
    ),
    (
        "andamioPipeline",
        {"credentialsId": "database-url", "variable": "DATABASE_URL"},
        {
            "commands": [
                "export BASE=origin/main",
                "make restore pipeline push metrics-diff",
                "archive reports/**",
                *FORGE_CODE,
                "make pr-comment",
            ],
            "credentials": ["string:database-url->DATABASE_URL"],
        },
    ),
    (
        "andamioPipeline",
        {"credentialsId": "database-url", "variable": "DATABASE URL"},
        {
            "error": "andamioPipeline: variable must be an environment variable name with credentialsId,"
            " got 'DATABASE URL'",
            "commands": [],
        },
    ),
    (
        "andamioDeploy",
        {"targets": "deploy-staging"},
        {"commands": ["make deploy-staging"], "credentials": []},
    ),
    (
        "andamioDeploy",
        {"targets": "promote", "credentialsId": "mlflow", "variable": "MLFLOW_TRACKING_URI"},
        {"commands": ["make promote"], "credentials": ["string:mlflow->MLFLOW_TRACKING_URI"]},
    ),
    (
        "andamioDeploy",
        {"targets": "promote", "credentialsId": "mlflow"},
        {"error": "andamioDeploy: variable is required with credentialsId", "commands": []},
    ),
    (  # GitOps: the forge code for change-request and the overlay edit, the forge token bound
        "andamioDeploy",
        {"targets": "deploy-prod", "forgeCredentialsId": "forge"},
        {"commands": [*FORGE_CODE, "make deploy-prod"], "credentials": ["string:forge->FORGE_TOKEN"]},
    ),
    (
        "andamioPipeline",
        {"forgeCredentialsId": "forge"},
        {
            "commands": [
                "export BASE=origin/main",
                "make restore pipeline push metrics-diff",
                "archive reports/**",
                *FORGE_CODE,
                "make pr-comment",
            ],
            "credentials": ["string:forge->FORGE_TOKEN"],
        },
    ),
    ("andamioDrift", {}, {"commands": ["make restore drift"], "credentials": []}),
    (
        "andamioDrift",
        {"forgeCredentialsId": "forge"},
        {"commands": ["make restore drift"], "credentials": []},
    ),
    ("andamioForgeCode", {}, {"commands": FORGE_CODE, "credentials": []}),
    (
        "andamioTemplateUpdate",
        {},
        {"error": "andamioTemplateUpdate: credentialsId is required", "commands": []},
    ),
]


def test_library_steps_behave_for_every_input_combination(tmp_path):
    vars_dir = str(LIBRARY / "vars")
    requests = [["step", vars_dir, step, json.dumps(args)] for step, args, _ in VARS_CASES]
    # the template update runs the project's targets, the forge token bound: no git in Groovy
    requests.append(["step", vars_dir, "andamioTemplateUpdate", '{"credentialsId": "git", "branch": "tu"}'])
    # a drift (`make restore drift` fails): the issue is opened, with the token, and the step fails
    requests.append(["step", vars_dir, "andamioDrift", '{"forgeCredentialsId": "forge"}', DRIFT_FAILS])
    *results, update, drift = harness(requests, tmp_path)
    for (step, args, expected), result in zip(VARS_CASES, results, strict=True):
        assert result == expected, f"{step}({args}) gave {result}"
    assert update["commands"] == [
        *FORGE_CODE,
        "export UPDATE_BRANCH=tu",
        "make template-update change-request",
    ]
    assert update["credentials"] == ["string:git->FORGE_TOKEN"]
    assert drift == {
        "failed": "script returned exit code 2: make restore drift",
        "commands": ["make restore drift", *FORGE_CODE, "make drift-issue"],
        "credentials": ["string:forge->FORGE_TOKEN"],
    }


@pytest.mark.parametrize("style", STYLES)
def test_pipeline_stage_binds_the_database_url_of_a_sql_source(project_factory, tmp_path, style):
    """data_source=sql: the pipeline stage (dvc repro runs ingest when the query changes) gets
    the database URL from the credential named after the variable; other stages do not."""
    answers = {**EXEC_ANSWERS, "ci_style": style, "data_source": "sql", "sql_url_env": "WAREHOUSE_URL"}
    project = project_factory.new(tmp_path / "project", answers)
    (result,) = harness(
        [["jenkinsfile", str(project / "Jenkinsfile"), str(library_vars(project)), "change"]], tmp_path
    )
    credentials = {s["name"]: s["credentials"] for s in result["stages"]}
    assert credentials["pipeline"] == [
        "string:warehouse-url->WAREHOUSE_URL",
        "string:forge-token->FORGE_TOKEN",
    ]
    others = [c for name, found in credentials.items() if name != "pipeline" for c in found]
    assert not [c for c in others if "WAREHOUSE_URL" in c], credentials
    assert "make restore pipeline push metrics-diff" in result["stages"][4]["commands"]
