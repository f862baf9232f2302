"""Tier 2 (render): the generated CI files and the ci-templates library, linted and compared.

actionlint, check-jsonschema (GitHub and GitLab schemas) and zizmor run on every generated
workflow and on the library; the hardening rules are checked file by file; and the parity
test proves the three providers run the same jobs, in the same order, calling the same make
targets (Jenkins has no runtime offline: its parity is read from the Jenkinsfile here and
executed by the Groovy harness in tests/ci/test_ci_jenkins.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from support.ci import (
    ALL_JOBS,
    LIBRARY,
    ROOT,
    SERVING_ONLY,
    assert_parity,
    gitlab_config,
    gitlab_setup_commands,
    provider_jobs,
    tool,
)
from support.process import commit_all, sh

pytestmark = pytest.mark.render

ALL_PROVIDERS = ["github", "gitlab", "jenkins"]
STYLES = ["standalone", "shared"]
# A third-party action is pinned by a full commit SHA and says which release that is.
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


@pytest.fixture(scope="module")
def projects(tmp_path_factory, project_factory):
    """One rendering per (ci_style, serving): all three providers, under git (actionlint needs it)."""

    rendered = {}
    for style in STYLES:
        for serving in (True, False):
            dest = tmp_path_factory.mktemp(f"ci-{style}-{'serving' if serving else 'noserving'}")
            data = {"ci_providers": ALL_PROVIDERS, "ci_style": style, "serving": serving}
            project = project_factory.new(dest / "project", data)
            commit_all(project)
            rendered[(style, serving)] = project
    return rendered


def _workflows(project: Path) -> list[Path]:
    return sorted((project / ".github").rglob("*.yml"))


@pytest.mark.parametrize("style", STYLES)
def test_github_files_pass_actionlint_and_the_schema(projects, style):
    project = projects[(style, True)]
    lint = sh(project, tool("actionlint"), "-color=false", check=False)
    assert lint.returncode == 0, f"actionlint:\n{lint.stdout}{lint.stderr}"
    workflows = [str(p) for p in (project / ".github" / "workflows").glob("*.yml")]
    actions = [str(p) for p in (project / ".github").rglob("action.yml")]
    assert workflows and actions, "no workflows or no setup action to check"
    for builtin, files in (("vendor.github-workflows", workflows), ("vendor.github-actions", actions)):
        schema = sh(project, tool("check-jsonschema"), "--builtin-schema", builtin, *files, check=False)
        assert schema.returncode == 0, f"{builtin}: {schema.stdout}{schema.stderr}"


@pytest.mark.parametrize("style", STYLES)
def test_zizmor_reports_no_finding(projects, style):
    project = projects[(style, True)]
    audit = sh(project, tool("zizmor"), "--offline", "--no-progress", ".github", check=False)
    assert audit.returncode == 0 and "No findings" in audit.stdout, audit.stdout + audit.stderr


@pytest.mark.parametrize("style", STYLES)
def test_gitlab_file_matches_the_schema(projects, style):
    project = projects[(style, True)]
    schema = sh(
        project,
        tool("check-jsonschema"),
        "--builtin-schema",
        "vendor.gitlab-ci",
        ".gitlab-ci.yml",
        check=False,
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr


def test_library_workflows_pass_actionlint_zizmor_and_the_schema(tmp_path):
    import shutil

    repo = tmp_path / "ci-templates"
    shutil.copytree(LIBRARY, repo)
    commit_all(repo)
    lint = sh(repo, tool("actionlint"), "-color=false", check=False)
    assert lint.returncode == 0, f"actionlint:\n{lint.stdout}{lint.stderr}"
    workflows = [str(p) for p in (repo / ".github" / "workflows").glob("*.yml")]
    schema = sh(
        repo, tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *workflows, check=False
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr
    actions = [str(p) for p in (repo / ".github" / "actions").rglob("action.yml")]
    assert actions, "the library's setup action is missing"
    schema = sh(
        repo, tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", *actions, check=False
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr
    audit = sh(repo, tool("zizmor"), "--offline", "--no-progress", ".github", check=False)
    assert audit.returncode == 0 and "No findings" in audit.stdout, audit.stdout + audit.stderr


@pytest.mark.parametrize("serving", [True, False], ids=["serving", "no-serving"])
@pytest.mark.parametrize("style", STYLES)
def test_providers_run_the_same_jobs_in_the_same_order(projects, style, serving):
    jobs = provider_jobs(projects[(style, serving)])
    assert sorted(jobs) == ALL_PROVIDERS
    expected = [j for j in ALL_JOBS if serving or j not in SERVING_ONLY]
    assert [name for name, _ in jobs["github"]] == expected
    assert_parity(jobs)
    targets = dict(jobs["github"])
    assert targets["pipeline"] == ["restore", "pipeline", "push", "metrics-diff", "pr-comment"]
    assert targets["audit"] == ["audit"] and targets["deploy-staging"] == ["deploy-staging"]
    assert targets["promote"] == ["promote", "deploy-prod"]
    assert targets["template-update"] == ["template-update", "change-request"]
    if serving:  # serving answers kubernetes too, by default: the image is pushed for the overlays
        assert targets["build"] == ["restore", "build", "push-image"]
        assert targets["drift"] == ["restore", "drift", "drift-issue"]


def test_parity_fails_when_one_provider_gains_a_job(projects, tmp_path):
    import shutil

    # Given a project whose GitHub workflow has a job the others lack
    project = tmp_path / "drifted"
    shutil.copytree(projects[("standalone", True)], project)
    path = project / ".github" / "workflows" / "ci.yml"
    workflow = yaml.safe_load(path.read_text())
    workflow["jobs"]["lint-docs"] = {"runs-on": "ubuntu-latest", "steps": [{"run": "make docs"}]}
    path.write_text(yaml.safe_dump(workflow, sort_keys=False))
    # Then the parity check refuses it
    with pytest.raises(AssertionError, match="jobs differ"):
        assert_parity(provider_jobs(project))


def test_parity_fails_when_a_job_calls_other_targets(projects, tmp_path):
    import shutil

    project = tmp_path / "drifted"
    shutil.copytree(projects[("standalone", True)], project)
    path = project / ".gitlab-ci.yml"
    path.write_text(path.read_text().replace("      targets: test\n", "      targets: test lint\n"))
    with pytest.raises(AssertionError, match="make targets differ"):
        assert_parity(provider_jobs(project))


def test_every_provider_has_one_setup_unit_calling_make_ci_setup(projects):
    for style in STYLES:
        project = projects[(style, True)]
        assert gitlab_setup_commands(project) == ["make ci-setup"], style
        jobs = {k: v for k, v in gitlab_config(project).items() if isinstance(v, dict) and "script" in v}
        assert all(str(job.get("extends", "")).endswith("setup") for job in jobs.values()), (
            f"{style}: every GitLab job must extend the setup unit"
        )
        jenkinsfile = (project / "Jenkinsfile").read_text()
        first_stage = re.search(r"stage\('([\w-]+)'\)", jenkinsfile)
        assert first_stage and first_stage.group(1) == "setup"
        # GitHub: the one composite action, vendored in both styles, used by every library job
        action_path = project / ".github" / "actions" / "andamio-setup" / "action.yml"
        assert action_path.read_text() == (LIBRARY / action_path.relative_to(project)).read_text()
        action = yaml.safe_load(action_path.read_text())
        assert action["runs"]["using"] == "composite"
        assert [s["run"] for s in action["runs"]["steps"] if "run" in s] == ["make ci-setup"]
        workflow = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())
        for name, job in workflow["jobs"].items():
            assert "uses" in job and "steps" not in job, f"job {name} must call a library workflow"
    for path in sorted((LIBRARY / ".github" / "workflows").glob("*.yml")):
        for name, job in yaml.safe_load(path.read_text())["jobs"].items():
            uses = [s.get("uses", "") for s in job.get("steps", [])]
            assert "steps" not in job or uses[1] == "./.github/actions/andamio-setup", (
                f"{path.name}: job {name} must check out, then run the setup action"
            )
            assert not any("ci-setup" in s.get("run", "") for s in job.get("steps", [])), path.name


def _called(uses: str) -> str:
    """``./.github/workflows/andamio-make.yml`` and ``org/lib/.github/workflows/make.yml@v1 # …`` -> make."""
    match = re.fullmatch(
        r"(?:\./|[\w.-]+/[\w.-]+/)\.github/workflows/(?:andamio-)?([\w-]+)\.yml(@v[\d.]+)?", uses
    )
    assert match, f"not a library workflow: {uses}"
    return match.group(1)


@pytest.mark.parametrize("serving", [True, False], ids=["serving", "no-serving"])
def test_github_styles_differ_by_the_workflow_reference_alone(projects, serving):
    """Both ci.yml call the same library workflows with the same inputs; standalone vendors them."""
    standalone, shared = (projects[(style, serving)] for style in STYLES)
    calls = {}
    for style, project in zip(STYLES, (standalone, shared), strict=True):
        jobs = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())["jobs"]
        calls[style] = {name: {**job, "uses": _called(job["uses"])} for name, job in jobs.items()}
    assert calls["standalone"] == calls["shared"]
    # the vendored copies are the library's files, byte for byte, and nothing else is vendored
    vendored = sorted((standalone / ".github" / "workflows").glob("andamio-*.yml"))
    library = {p.name for p in (LIBRARY / ".github" / "workflows").glob("*.yml")} - {"self-test.yml"}
    assert {p.name.removeprefix("andamio-") for p in vendored} == library
    for path in vendored:
        assert path.read_text() == (LIBRARY / ".github" / "workflows" / path.name[8:]).read_text()
    assert not list((shared / ".github" / "workflows").glob("andamio-*.yml"))


@pytest.mark.parametrize("serving", [True, False], ids=["serving", "no-serving"])
def test_standalone_vendors_the_library_whole_and_verbatim(projects, serving):
    """.andamio-ci/ holds the GitLab components, Jenkins steps and forge code, byte for byte."""
    standalone, shared = (projects[(style, serving)] for style in STYLES)
    vendored = standalone / ".andamio-ci"
    for part in ("templates", "vars", "resources"):
        library = {p.relative_to(LIBRARY / part) for p in (LIBRARY / part).rglob("*") if p.is_file()}
        library = {p for p in library if "__pycache__" not in p.parts}
        copied = {p.relative_to(vendored / part) for p in (vendored / part).rglob("*") if p.is_file()}
        assert copied == library, f"{part}: vendored {sorted(copied)} != library {sorted(library)}"
        for rel in library:
            assert (vendored / part / rel).read_bytes() == (LIBRARY / part / rel).read_bytes(), rel
    assert not (shared / ".andamio-ci").exists(), "a shared-style project vendors the library"
    # the template links each file (not a folder: an sdist drops folder links), all resolve
    links = [p for p in (ROOT / "template").rglob("*") if p.is_symlink()]
    assert links and all(p.is_file() and p.resolve().is_relative_to(LIBRARY) for p in links), [
        str(p) for p in links if not p.is_file()
    ]


def _github_uses(project: Path) -> list[str]:
    found = []
    for path in _workflows(project):
        for line in path.read_text().splitlines():
            match = re.match(r"^\s*(?:- )?uses: (.+)$", line)
            if match:
                found.append(match.group(1))
    return found


def test_github_is_hardened(projects):
    for style in STYLES:
        project = projects[(style, True)]
        workflow = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())
        assert workflow["permissions"] == {}, "top-level permissions must be empty"
        assert "concurrency" in workflow
        for name, job in workflow["jobs"].items():
            assert "permissions" in job, f"job {name} must grant its own permissions"
            assert "continue-on-error" not in job, f"job {name} may not ignore failures"
            for step in job.get("steps", []):
                assert "continue-on-error" not in step, f"a step of {name} ignores failures"
                if str(step.get("uses", "")).startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, f"{name}: checkout keeps credentials"
        for uses in _github_uses(project):
            if uses.startswith("./"):
                continue
            if style == "shared" and "/.github/workflows/" in uses:
                assert re.search(r"@v\d+\.\d+\.\d+ # zizmor", uses), (
                    f"library not pinned to a version: {uses}"
                )
                continue
            assert PINNED.match(uses), f"third-party action not pinned by SHA with a version comment: {uses}"


def test_library_actions_are_pinned_and_inputs_documented():
    for path in sorted((LIBRARY / ".github").rglob("*.yml")):
        for line in path.read_text().splitlines():
            match = re.match(r"^\s*(?:- )?uses: (\S+)(.*)$", line)
            if match and not match.group(1).startswith("./"):
                assert PINNED.match(match.group(1) + match.group(2)), f"{path.name}: {line.strip()}"
    for path in sorted((LIBRARY / ".github" / "actions").rglob("action.yml")):
        for name, spec in yaml.safe_load(path.read_text())["inputs"].items():
            assert spec.get("description") and "default" in spec, f"{path}: input {name} undocumented"
    for path in sorted((LIBRARY / ".github" / "workflows").glob("*.yml")):
        workflow = yaml.safe_load(path.read_text())
        assert workflow["permissions"] == {}, path.name
        if path.name == "self-test.yml":
            continue
        inputs = workflow[True]["workflow_call"]["inputs"]  # YAML 1.1 reads `on:` as True
        for name, spec in inputs.items():
            assert spec.get("description") and spec.get("type"), f"{path.name}: input {name} undocumented"
            assert "required" in spec or "default" in spec, (
                f"{path.name}: input {name} lacks required/default"
            )
            assert re.fullmatch(r"[a-z]+(-[a-z]+)*", name), f"{path.name}: input {name} is not kebab-case"
    for path in sorted((LIBRARY / "templates").glob("*.yml")):
        spec = yaml.safe_load(path.read_text().split("\n---\n", 1)[0])["spec"]["inputs"]
        for name, item in spec.items():
            assert item.get("description") and item.get("type"), f"{path.name}: input {name} undocumented"
            assert re.fullmatch(r"[a-z]+(-[a-z]+)*", name), f"{path.name}: input {name} is not kebab-case"
    for path in sorted((LIBRARY / "vars").glob("*.groovy")):
        text = path.read_text()
        used = set(re.findall(r"args\.get\('(\w+)'", text))
        documented = set(re.findall(r"^//\s+(\w+):", text, re.MULTILINE))
        assert used <= documented, f"{path.name}: undocumented inputs {used - documented}"


def test_gitlab_and_jenkins_are_hardened(projects):
    secret = re.compile(r"(glpat-|ghp_|password\s*[:=]\s*\S|token\s*[:=]\s*['\"]?\w{12,})", re.IGNORECASE)
    for style in STYLES:
        project = projects[(style, True)]
        text = (project / ".gitlab-ci.yml").read_text()
        assert not secret.search(text), f"{style}: a secret is written in .gitlab-ci.yml"
        config = gitlab_config(project)
        assert "rules" in config["workflow"]
        for name, job in config.items():
            if isinstance(job, dict) and "script" in job:
                assert job.get("allow_failure") in (None, False), f"{name} may fail silently"
                assert "rules" in job, f"{name} has no rules"
        jenkinsfile = (project / "Jenkinsfile").read_text()
        assert re.search(r"timeout\(time: \d+, unit: '\w+'\)", jenkinsfile)
        assert "disableConcurrentBuilds()" in jenkinsfile
        assert "credentialsId" in jenkinsfile and not secret.search(jenkinsfile)
    promote = gitlab_config(projects[("standalone", True)])["promote"]
    assert promote["rules"][0]["when"] == "manual" and promote["environment"]["name"] == "production"


def test_library_version_is_semver_and_the_shared_files_pin_it(projects):
    version = (LIBRARY / "VERSION").read_text().strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    from andamio.config import questions

    pinned = questions(ROOT)["ci_library_version"]["default"]
    assert pinned == version, "questions/ci.yml must pin the library's VERSION"
    project = projects[("shared", True)]
    assert f"@v{version}" in (project / ".github" / "workflows" / "ci.yml").read_text()
    assert f"ref: v{version}" in (project / ".gitlab-ci.yml").read_text()
    assert f"@Library('andamio-ci@v{version}') _" in (project / "Jenkinsfile").read_text()
    changelog = (LIBRARY / "CHANGELOG.md").read_text()
    assert f"## {version}" in changelog, "ci-templates/CHANGELOG.md must describe the pinned version"


def _pipeline_steps(steps: list[dict]) -> list[dict]:
    return [step for step in steps if "make restore pipeline" in step.get("run", "")]


@pytest.mark.parametrize("style", STYLES)
def test_github_maps_the_database_url_secret_to_the_pipeline_alone(project_factory, tmp_path, style):
    """data_source=sql: GitHub passes no secret by itself; the one named by sql_url_env is mapped."""

    answers = {"ci_providers": ["github"], "ci_style": style, "data_source": "sql", "target": "label"}
    project = project_factory.new(tmp_path / "p", {**answers, "sql_url_env": "WAREHOUSE_URL"})
    text = (project / ".github" / "workflows" / "ci.yml").read_text()
    jobs = yaml.safe_load(text)["jobs"]
    secret = "${{ secrets.WAREHOUSE_URL }}"
    assert text.count("secrets.WAREHOUSE_URL") == 1, "only the pipeline job gets the database URL"
    pipeline = jobs["pipeline"]
    if "uses" in pipeline:  # a reusable workflow: the one secret, explicitly (no `secrets: inherit`)
        assert pipeline["secrets"] == {"database-url": secret}
        assert pipeline["with"]["database-url-env"] == "WAREHOUSE_URL"
        called = yaml.safe_load((LIBRARY / ".github" / "workflows" / "pipeline.yml").read_text())
        assert "database-url" in called[True]["workflow_call"]["secrets"]
        (step,) = _pipeline_steps(called["jobs"]["pipeline"]["steps"])
        assert step["env"]["DATABASE_URL_SECRET"] == "${{ secrets.database-url }}"
        assert 'export "$URL_ENV=$DATABASE_URL_SECRET"' in step["run"]
    else:  # the step that runs the pipeline, not the job (setup and third-party actions)
        (step,) = _pipeline_steps(pipeline["steps"])
        assert step["env"] == {"WAREHOUSE_URL": secret}
    assert "secrets: inherit" not in text
