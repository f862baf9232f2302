"""Helpers of the CI tests: tools, rendering for CI, and the per-provider job extraction.

The extraction reads each provider's files the way a reviewer diffs them side by side: the
jobs in file order and the make targets each one runs (setup excluded: every provider has one
setup unit calling ``make ci-setup``).  Shared-style files are resolved through the
``ci-templates/`` library with the inputs they pass.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "ci-templates"
STUBS = ROOT / "tests" / "integration" / "ci_stubs"

# The jobs of the generated pipelines, in order (build and drift only with serving).
ALL_JOBS = ["check", "test", "pipeline", "build", "deploy-staging", "promote", "drift", "template-update"]
SERVING_ONLY = {"build", "drift"}

Jobs = list[tuple[str, list[str]]]


def tool(name: str) -> str:
    """Path of a command-line tool; skip (or, under CI, fail) when it is missing."""
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed: run scripts/bootstrap.sh"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
    raise AssertionError  # unreachable


def groovy_classpath() -> str:
    """The Groovy runtime bundled with npm-groovy-lint (Java 17 runs it)."""
    tool("npm-groovy-lint")
    tool("java")
    root = subprocess.run(["npm", "root", "-g"], capture_output=True, text=True, check=True).stdout.strip()
    lib = Path(root) / "npm-groovy-lint" / "lib" / "java" / "groovy" / "lib"
    if not lib.is_dir():
        pytest.fail(f"no Groovy runtime in {lib}: reinstall npm-groovy-lint (scripts/bootstrap.sh)")
    return f"{lib}/*"


def run(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 900
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout
    )


def git_commit_all(project: Path, message: str = "initial") -> None:
    if not (project / ".git").is_dir():
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=project, check=True)
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", message], cwd=project, check=True)


def make_targets(command: str) -> list[str]:
    """``make a b`` -> ``[a, b]``; variables (``X=1``) and options are left out."""
    words = command.split()
    assert words[0] == "make", command
    return [w for w in words[1:] if not w.startswith("-") and "=" not in w]


def _make_lines(script: str) -> list[str]:
    return [line.strip() for line in script.splitlines() if line.strip().startswith("make ")]


# --- GitHub -------------------------------------------------------------------------------


def _library_workflow(uses: str) -> dict[str, Any]:
    name = uses.split("/.github/workflows/", 1)[1].split("@", 1)[0]
    return yaml.safe_load((LIBRARY / ".github" / "workflows" / name).read_text())


def github_jobs(project: Path) -> Jobs:
    workflow = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())
    jobs: Jobs = []
    for name, job in workflow["jobs"].items():
        if "uses" in job:  # shared style: a reusable workflow of the library
            called = _library_workflow(job["uses"])
            steps = [s for j in called["jobs"].values() for s in j["steps"]]
            targets = (job.get("with") or {}).get("targets", "")
        else:
            steps, targets = job["steps"], ""
        commands = []
        for step in steps:
            for line in _make_lines(step.get("run", "")):
                commands.extend(make_targets(line.replace("$TARGETS", targets)))
        jobs.append((name, [c for c in commands if c != "ci-setup"]))
    return jobs


# --- GitLab -------------------------------------------------------------------------------

_INPUT = re.compile(r"\$\[\[\s*inputs\.([\w-]+)\s*\]\]")


def _resolve_component(path: Path, inputs: dict[str, Any]) -> dict[str, Any]:
    header, body = path.read_text().split("\n---\n", 1)
    spec = yaml.safe_load(header)["spec"]["inputs"]
    values = {k: v.get("default") for k, v in spec.items()}
    unknown = set(inputs) - set(spec)
    assert not unknown, f"{path.name}: unknown inputs {unknown}"
    values.update(inputs)
    missing = [k for k, v in values.items() if v is None]
    assert not missing, f"{path.name}: required inputs not given: {missing}"

    def substitute(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        return (
            yaml.safe_dump(value, default_flow_style=True).strip() if isinstance(value, list) else str(value)
        )

    return yaml.safe_load(_INPUT.sub(substitute, body))


def gitlab_config(project: Path) -> dict[str, Any]:
    """The project's .gitlab-ci.yml with ci-templates includes resolved (file order kept)."""
    config = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
    resolved: dict[str, Any] = {}
    for key, value in config.items():
        if key != "include":
            resolved[key] = value
            continue
        for include in value:
            # project includes come from the library; local ones (tests) from the project
            where = (
                LIBRARY / include["file"].lstrip("/")
                if "file" in include
                else project / include["local"].lstrip("/")
            )
            resolved.update(_resolve_component(where, include.get("inputs", {})))
    return resolved


GITLAB_KEYWORDS = {"workflow", "stages", "variables", "default", "include", "image", "services", "cache"}


def gitlab_jobs(project: Path) -> Jobs:
    config = gitlab_config(project)
    jobs: Jobs = []
    for name, job in config.items():
        if name in GITLAB_KEYWORDS or name.startswith("."):
            continue
        commands = [t for line in job["script"] if line.startswith("make ") for t in make_targets(line)]
        jobs.append((name, commands))
    return jobs


def gitlab_setup_commands(project: Path) -> list[str]:
    config = gitlab_config(project)
    base = next(v for k, v in config.items() if k.startswith(".") and "setup" in k)
    return list(base["before_script"])


# --- Jenkins ------------------------------------------------------------------------------

_STAGE = re.compile(r"^\s*stage\('([\w-]+)'\)", re.MULTILINE)
_SH_MAKE = re.compile(r"sh '(make [^']+)'")
_LIB_CALL = re.compile(r"(andamio\w+)\(([^)]*)\)", re.DOTALL)


def _library_step_commands(step: str, arguments: str) -> list[str]:
    text = (LIBRARY / "vars" / f"{step}.groovy").read_text()
    targets = re.search(r"targets: '([^']+)'", arguments)
    commands: list[str] = []
    for line in re.findall(r"sh [\"']make ([^\"']+)[\"']", text):
        line = line.replace("${targets}", targets.group(1) if targets else "")
        commands.extend(make_targets(f"make {line}"))
    return commands


def jenkins_jobs(project: Path) -> Jobs:
    """Stages of the Jenkinsfile (a regex reading; the Groovy harness runs it for real)."""
    text = (project / "Jenkinsfile").read_text()
    starts = [(m.group(1), m.start()) for m in _STAGE.finditer(text)]
    jobs: Jobs = []
    for i, (name, start) in enumerate(starts):
        block = text[start : starts[i + 1][1] if i + 1 < len(starts) else len(text)]
        commands = [t for line in _SH_MAKE.findall(block) for t in make_targets(line)]
        for step, arguments in _LIB_CALL.findall(block):
            commands.extend(_library_step_commands(step, arguments))
        jobs.append((name, [c for c in commands if c != "ci-setup"]))
    assert jobs and jobs[0][0] == "setup", "the Jenkinsfile's first stage must be the setup unit"
    return jobs[1:]


def provider_jobs(project: Path) -> dict[str, Jobs]:
    found: dict[str, Jobs] = {}
    if (project / ".github" / "workflows" / "ci.yml").is_file():
        found["github"] = github_jobs(project)
    if (project / ".gitlab-ci.yml").is_file():
        found["gitlab"] = gitlab_jobs(project)
    if (project / "Jenkinsfile").is_file():
        found["jenkins"] = jenkins_jobs(project)
    return found


def assert_parity(jobs: dict[str, Jobs]) -> None:
    """Every provider has the same jobs, in the same order, running the same make targets."""
    reference_name, reference = next(iter(jobs.items()))
    for name, other in jobs.items():
        names, reference_names = [j for j, _ in other], [j for j, _ in reference]
        assert names == reference_names, (
            f"jobs differ: {name} has {names}, {reference_name} has {reference_names}"
        )
        assert other == reference, (
            f"make targets differ between {name} and {reference_name}:\n{other}\n{reference}"
        )
