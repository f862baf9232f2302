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

from support import ROOT, unavailable
from support.process import commit_all

LIBRARY = ROOT / "ci-templates"
STUBS = ROOT / "tests" / "ci" / "stubs"

# The jobs of the generated pipelines, in order (build and drift only with serving).
ALL_JOBS = [
    "check",
    "test",
    "audit",
    "pipeline",
    "build",
    "deploy-staging",
    "promote",
    "drift",
    "template-update",
]
SERVING_ONLY = {"build", "drift"}

Jobs = list[tuple[str, list[str]]]


def tool(name: str) -> str:
    """Path of a command-line tool; skip (or, under CI, fail) when it is missing."""
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed: run scripts/bootstrap.sh"
    unavailable(message)
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


def runner_env(**extra: str) -> dict[str, str]:
    """The environment of a CI run started by a test: this one, minus what a hosted runner lacks.

    PYTHONDONTWRITEBYTECODE (set on this machine) would make every DVC stage recompile the
    whole stack; GitHub and GitLab runners do not set it.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra)
    return env


def make_targets(command: str) -> list[str]:
    """``make a b`` -> ``[a, b]``; variables (``X=1``) and options are left out."""
    words = command.split()
    assert words[0] == "make", command
    return [w for w in words[1:] if not w.startswith("-") and "=" not in w]


def _make_lines(script: str) -> list[str]:
    return [line.strip() for line in script.splitlines() if line.strip().startswith("make ")]


# --- GitHub -------------------------------------------------------------------------------


def _called_workflow(project: Path, uses: str) -> dict[str, Any]:
    """A reusable workflow: the project's vendored copy (``./``), else the library's file."""
    if uses.startswith("./"):
        return yaml.safe_load((project / uses).read_text())
    name = uses.split("/.github/workflows/", 1)[1].split("@", 1)[0]
    return yaml.safe_load((LIBRARY / ".github" / "workflows" / name).read_text())


def github_jobs(project: Path) -> Jobs:
    workflow = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())
    jobs: Jobs = []
    for name, job in workflow["jobs"].items():
        if "uses" in job:  # a reusable workflow of the library (vendored, or its release)
            called = _called_workflow(project, job["uses"])
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


_SHELL_MAKE = re.compile(r"(?:^|\bthen |&& |\|\| )(make [^;&|]+)")


def _shell_makes(line: str) -> list[str]:
    """The make commands of a shell line: ``make a b``, ``if ...; then make c; fi``."""
    return [m.strip() for m in _SHELL_MAKE.findall(line)]


GITLAB_KEYWORDS = {"workflow", "stages", "variables", "default", "include", "image", "services", "cache"}


def gitlab_jobs(project: Path) -> Jobs:
    config = gitlab_config(project)
    jobs: Jobs = []
    for name, job in config.items():
        if name in GITLAB_KEYWORDS or name.startswith("."):
            continue
        lines = [*job["script"], *job.get("after_script", [])]  # after_script: e.g. after a failure
        commands = [t for line in lines for command in _shell_makes(line) for t in make_targets(command)]
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


# --- execution ----------------------------------------------------------------------------

# What the execution tests render: every provider, serving off (the jobs executed here do not
# depend on it, and the serving stack has its own tests).
EXEC_ANSWERS: dict[str, Any] = {"ci_providers": ["github", "gitlab", "jenkins"], "serving": False}


def uv_cache_dir() -> str:
    """The uv cache of this machine, shared by every CI run the tests start (warm: fast setup)."""
    if os.environ.get("UV_CACHE_DIR"):
        return os.environ["UV_CACHE_DIR"]
    found = subprocess.run(["uv", "cache", "dir"], capture_output=True, text=True, check=False)
    return found.stdout.strip() or str(Path.home() / ".cache" / "uv")


def break_unit_tests(project: Path) -> None:
    """Add a failing unit test and commit it: the CI runs must then fail."""
    (project / "tests" / "test_deliberately_broken.py").write_text(
        '"""A failing test: the CI must go red."""\n\n\ndef test_fails() -> None:\n    assert 1 == 2\n'
    )
    commit_all(project, "break a unit test")


def timed(label: str, seconds: float, sink: Path | None = None) -> None:
    """Print a wall time (the benchmark and the closing note quote these)."""
    line = f"{label}: {seconds:.1f} s"
    print(line)
    if sink is not None:
        with sink.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


# --- which jobs run on which event ------------------------------------------------------------

# The three situations every provider must treat alike, named after GitHub's events.
SCENARIOS = {"change": "pull_request", "main": "push", "schedule": "schedule"}


def github_jobs_for(project: Path, scenario: str) -> list[str]:
    """Jobs of ci.yml that run for ``scenario``: job ``if:`` on the event name, then ``needs``."""
    workflow = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())
    event = SCENARIOS[scenario]
    running: list[str] = []
    for name, job in workflow["jobs"].items():
        condition = str(job.get("if", "true"))
        unknown = re.sub(r"github\.event_name|'[\w-]+'|==|!=|\|\||&&|\s|true", "", condition)
        assert not unknown, f"job {name}: cannot evaluate {condition!r} offline"
        python = (
            condition.replace("github.event_name", repr(event)).replace("||", " or ").replace("&&", " and ")
        )
        wanted = eval(python.replace("true", "True"), {"__builtins__": {}})  # only literals remain
        # a job whose `if` has no status function runs only when all its needs succeeded
        if wanted and all(need in running for need in job.get("needs", [])):
            running.append(name)
    return running


# --- act ------------------------------------------------------------------------------------

# The remote actions the workflows use, each replaced by its stand-in (same pins as the files).
REMOTE_ACTIONS = {
    "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065": "setup-python",
    "actions/cache@5a3ec84eff668545956fd18022155c47e93e2684": "cache",
    "actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02": "upload-artifact",
    "actions/download-artifact@d3f86a106a0bac45b974a628896c90dbdf5c8093": "download-artifact",
}
PUSH_EVENT = """{
  "ref": "refs/heads/main",
  "repository": {"full_name": "acme/churn", "name": "churn", "owner": {"login": "acme"},
                 "default_branch": "main"}
}"""
PULL_REQUEST_EVENT = """{
  "pull_request": {"number": 7, "head": {"ref": "feature", "repo": {"full_name": "acme/churn"}},
                   "base": {"ref": "main", "repo": {"full_name": "acme/churn"}}},
  "repository": {"full_name": "acme/churn", "name": "churn", "owner": {"login": "acme"},
                 "default_branch": "main"}
}"""


def act(
    repo: Path, work: Path, *args: str, event: str = "pull_request", payload: str = PULL_REQUEST_EVENT
) -> tuple[int, str]:
    """Run act on the host executor in ``repo`` for ``event``; return its exit code and log."""
    binary = tool("act")
    stand_ins = work / "bin"
    stand_ins.mkdir(parents=True, exist_ok=True)
    shutil.copy2(STUBS / "gh", stand_ins / "gh")
    event_file = work / "event.json"
    event_file.write_text(payload)
    local = [f"--local-repository={ref}={STUBS / name}" for ref, name in REMOTE_ACTIONS.items()]
    env = runner_env(
        PATH=f"{stand_ins}:{Path(binary).parent}:{os.environ['PATH']}",
        XDG_CACHE_HOME=str(work / "xdg-cache"),  # act's own cache, outside the repository
        UV_CACHE_DIR=uv_cache_dir(),  # a warm package cache: `make setup` in seconds
        ANDAMIO_GH_LOG=str(work / "gh.log"),
        ANDAMIO_ARTIFACTS=str(work / "artifacts"),
    )
    command = [binary, event, "-e", str(event_file), "-P", "ubuntu-latest=-self-hosted"]
    command += ["--no-cache-server", "--artifact-server-addr", "127.0.0.1", *local, *args]
    proc = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=1200)
    return proc.returncode, proc.stdout + proc.stderr


def use_local_library(project: Path) -> None:
    """Point a shared-style .gitlab-ci.yml at a copy of the library inside the project.

    Its ``include: project:`` entries name the library on the team's git host, out of reach
    offline; gitlab-ci-local then resolves the same files, with the same inputs, locally.
    The forge code the Makefile would clone from there (``make pr-comment``,
    ``change-request``) is that copy's too: ``ANDAMIO_CI`` points at it.
    """
    for part in ("templates", "resources"):
        shutil.copytree(LIBRARY / part, project / ".andamio-ci" / part)
    path = project / ".gitlab-ci.yml"
    config = yaml.safe_load(path.read_text())
    pinned = {(include["project"], include["ref"]) for include in config["include"]}
    assert len(pinned) == 1, f"every include must pin the same library version: {pinned}"
    pattern = r"  - project: \S+\n    ref: \S+\n    file: /templates/"
    text = re.sub(pattern, "  - local: /.andamio-ci/templates/", path.read_text())
    path.write_text(text.replace("\ninclude:\n", "\nvariables:\n  ANDAMIO_CI: .andamio-ci\n\ninclude:\n", 1))
    commit_all(project, "resolve the CI library locally")
