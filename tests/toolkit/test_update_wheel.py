"""From a pip install, offline: the wheel's template history makes `copier update` work later.

A clone of this checkout gets two tags in a temporary folder (never on the real
repository); a wheel is built at each tag.  A project made by the first wheel on
one machine (a laptop) is found behind, and updated, on another (a CI runner: its own
home folder) after the second wheel is installed -- no source checkout.  The second test
runs what the scheduled template-update CI job runs, `make template-update change-request`,
on a fresh runner: the update lands on a branch pushed to the project's (bare) remote and a
merge request opens with the summary (the forge's API played by tests/support/stand_ins.py).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml
from support import ROOT
from support.process import commit_all, git, sh
from support.stand_ins import ForgeAPI, serve

pytestmark = pytest.mark.slow

UV = str(Path(sys.executable).parent / "uv")
LINE = "Generated with andamio — a {{ ml_task }} model"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Wheels of two releases: v0.1.0 (this checkout) and v0.2.0 (a README line changed)."""
    tmp_path = tmp_path_factory.mktemp("releases")
    clone = tmp_path / "clone"
    # --no-tags: the checkout's own release tags stay out of this made-up history
    git(tmp_path, "clone", "-q", "--no-local", "--no-tags", str(ROOT), str(clone))
    git(clone, "tag", "v0.1.0")
    sh(None, UV, "build", "--wheel", "--out-dir", str(tmp_path / "dist1"), str(clone))
    readme = clone / "template" / "README.md.jinja"
    readme.write_text(readme.read_text().replace(LINE, LINE + " (v0.2.0)"))
    commit_all(clone, "template v0.2.0")
    git(clone, "tag", "v0.2.0")
    sh(None, UV, "build", "--wheel", "--out-dir", str(tmp_path / "dist2"), str(clone))
    sh(None, "rm", "-rf", str(clone))  # nothing but the wheels can help from here on
    return next((tmp_path / "dist1").glob("*.whl")), next((tmp_path / "dist2").glob("*.whl"))


def machines(tmp_path: Path, venv: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Two machines: a laptop that renders, a CI runner that updates (own home folders)."""
    base = {k: v for k, v in os.environ.items() if k != "XDG_DATA_HOME" and not k.startswith("GIT_")}
    base["PATH"] = os.pathsep.join([str(venv / "bin"), str(Path(UV).parent), os.environ["PATH"]])
    return {**base, "HOME": str(tmp_path / "laptop")}, {**base, "HOME": str(tmp_path / "runner")}


def pushed_from_a_laptop(tmp_path: Path, wheel: Path, *answers: str) -> dict[str, str]:
    """Render a project with release ``wheel`` on a laptop, into the bare remote ``origin.git``.

    Returns the CI runner's environment: its own home folder, and no andamio on PATH.
    """
    venv = tmp_path / "venv"
    sh(None, UV, "venv", "--quiet", "--python", sys.executable, str(venv))
    sh(None, UV, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(wheel))
    laptop, runner = machines(tmp_path, venv)
    seed = tmp_path / "seed"
    sh(None, str(venv / "bin" / "andamio"), "new", str(seed), "--defaults", *answers, env=laptop)
    # The team locks the tree and commits the lock (README): CI then installs from it, frozen,
    # and leaves the work tree as it was (a job writing uv.lock would dirty it for the update).
    sh(seed, "make", "lock", env=laptop)
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", "Lock the dependency tree")
    git(tmp_path, "clone", "-q", "--bare", str(seed), "origin.git")
    return {**runner, "PATH": os.pathsep.join(runner["PATH"].split(os.pathsep)[1:])}


def test_a_project_from_an_old_wheel_updates_offline_after_an_upgrade(tmp_path: Path, wheels):
    wheel1, wheel2 = wheels
    venv = tmp_path / "venv"
    python, andamio = str(venv / "bin" / "python"), str(venv / "bin" / "andamio")
    sh(None, UV, "venv", "--quiet", "--python", sys.executable, str(venv))
    sh(None, UV, "pip", "install", "--quiet", "--python", python, str(wheel1))
    laptop, runner = machines(tmp_path, venv)

    # When the first release renders a project on the laptop
    project = tmp_path / "project"
    sh(None, andamio, "new", str(project), "--defaults", env=laptop)
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())

    # Then it records a per-user git source that means the same on every machine, at the release's tag
    assert answers["_src_path"] == "~/.local/share/andamio/template", answers["_src_path"]
    assert (tmp_path / "laptop" / ".local" / "share" / "andamio" / "template" / "copier.yml").is_file()
    assert answers["_commit"] == "v0.1.0"
    assert sh(None, andamio, "check", str(project), env=laptop).returncode == 0

    # When andamio is upgraded
    sh(None, UV, "pip", "install", "--quiet", "--reinstall", "--no-deps", "--python", python, str(wheel2))

    # Then on the CI runner check reports the project behind, and update brings v0.2.0 offline
    behind = sh(None, andamio, "check", "--json", str(project), env=runner, check=False)
    assert behind.returncode == 1, behind.stdout + behind.stderr  # 1: behind (andamio.outcome)
    (row,) = json.loads(behind.stdout)
    assert (row["current_version"], row["latest_version"]) == ("v0.1.0", "v0.2.0"), row
    updated = sh(None, andamio, "update", str(project), "--json", env=runner)
    (result,) = json.loads(updated.stdout)["results"]
    assert result["result"] == "updated", result
    assert "model (v0.2.0)" in (project / "README.md").read_text()
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_commit"] == "v0.2.0" and answers["_src_path"] == "~/.local/share/andamio/template"


def test_the_scheduled_ci_job_opens_a_merge_request_from_a_fresh_runner(tmp_path: Path, wheels):
    wheel1, wheel2 = wheels
    # Given a project made on a laptop by release v0.1.0, pushed to its remote
    runner = pushed_from_a_laptop(tmp_path, wheel1)

    # When a CI runner that never saw andamio checks it out (detached, as GitLab does) and
    # runs the template-update job with the newest release (v0.2.0: ANDAMIO_SPEC, the index's newest)
    project = tmp_path / "project"
    git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), str(project))
    git(project, "checkout", "-q", "--detach")
    with serve(ForgeAPI("gitlab", "t0ken")) as api:
        ci = {
            **runner,
            "GITLAB_CI": "true",
            "CI_API_V4_URL": f"{api.url}/api/v4",
            "CI_PROJECT_ID": "acme/churn",
            "CI_DEFAULT_BRANCH": "main",
            "FORGE_PUSH_URL": str(tmp_path / "origin.git"),
            "FORGE_TOKEN": "t0ken",
        }
        job_command = ("make", "template-update", "change-request", f"ANDAMIO_SPEC={wheel2}")
        job = sh(project, *job_command, env=ci)

        # Then the update is on the branch template-update of the remote, and a merge request asks for it
        origin = tmp_path / "origin.git"
        assert "model (v0.2.0)" in git(origin, "show", "template-update:README.md")
        assert "_commit: v0.2.0" in git(origin, "show", "template-update:.copier-answers.yml")
        (call,) = api.calls
        assert (call.method, call.path) == ("POST", "/api/v4/projects/acme/churn/merge_requests")
        assert call.body["source_branch"] == "template-update" and call.body["target_branch"] == "main"
        assert call.body["title"] == "Update .copier-answers.yml from template v0.1.0 to v0.2.0"
        assert "| `.` (.copier-answers.yml) | v0.1.0 | v0.2.0 | updated |" in call.body["description"]
        assert "opened the merge request template-update -> main" in job.stdout, job.stdout

        # And once it is merged, the next scheduled run has nothing to propose
        git(project, "checkout", "-q", "--detach", "template-update")
        again = sh(project, *job_command, env=ci)
    assert "nothing to propose" in again.stdout, again.stdout + again.stderr
    assert len(api.calls) == 1
    assert git(project, "status", "--porcelain") == ""


def test_gitlab_ci_local_runs_the_scheduled_template_update_job(tmp_path: Path, wheels):
    """The same loop as the GitLab job itself: gitlab-ci-local runs `template-update` on a schedule."""
    from support.ci import runner_env, tool, uv_cache_dir

    wheel1, wheel2 = wheels
    runner = runner_env(**pushed_from_a_laptop(tmp_path, wheel1, "-d", "ci_providers=[gitlab]"))
    project = tmp_path / "seed"
    assert (project / ".gitlab-ci.yml").is_file()

    with serve(ForgeAPI("gitlab", "glpat-bot")) as api:
        command = [tool("gitlab-ci-local"), "--force-shell-executor", "--shell-isolation"]
        command += ["--ignore-predefined-vars", "CI_PIPELINE_SOURCE,CI_API_V4_URL,CI_PROJECT_ID"]
        for name, value in {
            "CI_PIPELINE_SOURCE": "schedule",
            "UV_CACHE_DIR": uv_cache_dir(),
            "CI_API_V4_URL": f"{api.url}/api/v4",
            "CI_PROJECT_ID": "42",
            "ANDAMIO_BOT_TOKEN": "glpat-bot",  # the masked project variable
            "FORGE_PUSH_URL": str(tmp_path / "origin.git"),
            "ANDAMIO_SPEC": str(wheel2),  # the newest release, as the package index would serve it
        }.items():
            command += ["--variable", f"{name}={value}"]
        job = sh(project, *command, "template-update", env=runner, check=False)
    log = job.stdout + job.stderr
    assert job.returncode == 0, log[-6000:]
    assert "glpat-bot" not in log, "the token reached the job log"
    assert "model (v0.2.0)" in git(tmp_path / "origin.git", "show", "template-update:README.md")
    (call,) = api.calls
    assert call.body["source_branch"] == "template-update" and call.headers["private-token"] == "glpat-bot"
    assert "| v0.1.0 | v0.2.0 | updated |" in call.body["description"]
