"""From a pip install, offline: the wheel's template history makes `copier update` work later.

A clone of this checkout gets two tags in a temporary folder (never on the real
repository); a wheel is built at each tag.  A project made by the first wheel on
one machine (a laptop) is found behind, and updated, on another (a CI runner: its own
home folder) after the second wheel is installed -- no network, no source checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from history import commit_all, git

pytestmark = pytest.mark.slow

UV = str(Path(sys.executable).parent / "uv")
LINE = "Generated with andamio — a {{ ml_task }} model"


def run(*cmd: str, cwd: Path | None = None, env: dict[str, str] | None = None, check: bool = True):
    proc = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})}
    )
    if check:
        assert proc.returncode == 0, f"`{' '.join(cmd)}` failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_a_project_from_an_old_wheel_updates_offline_after_an_upgrade(tmp_path: Path):
    # Given a clone of the committed checkout, tagged v0.1.0, and a wheel of it
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--no-local", str(ROOT), str(clone))
    git(clone, "tag", "v0.1.0")
    run(UV, "build", "--wheel", "--out-dir", str(tmp_path / "dist1"), str(clone))
    # ...and a v0.2.0 that changes a README line
    readme = clone / "template" / "README.md.jinja"
    readme.write_text(readme.read_text().replace(LINE, LINE + " (v0.2.0)"))
    commit_all(clone, "template v0.2.0")
    git(clone, "tag", "v0.2.0")
    run(UV, "build", "--wheel", "--out-dir", str(tmp_path / "dist2"), str(clone))
    wheel1, wheel2 = next((tmp_path / "dist1").glob("*.whl")), next((tmp_path / "dist2").glob("*.whl"))

    venv = tmp_path / "venv"
    python, andamio = str(venv / "bin" / "python"), str(venv / "bin" / "andamio")
    run(UV, "venv", "--quiet", "--python", sys.executable, str(venv))
    run(UV, "pip", "install", "--quiet", "--python", python, str(wheel1))
    # Two machines: a laptop that renders, a CI runner that updates (own home folders, no XDG override)
    base = {k: v for k, v in os.environ.items() if k != "XDG_DATA_HOME"}
    base["PATH"] = f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"
    laptop = {**base, "HOME": str(tmp_path / "laptop")}
    runner = {**base, "HOME": str(tmp_path / "runner")}

    # When the first release renders a project on the laptop
    project = tmp_path / "project"
    run(andamio, "new", str(project), "--defaults", env=laptop)
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())

    # Then it records a per-user git source that means the same on every machine, at the release's tag
    assert answers["_src_path"] == "~/.local/share/andamio/template", answers["_src_path"]
    assert (tmp_path / "laptop" / ".local" / "share" / "andamio" / "template" / "copier.yml").is_file()
    assert answers["_commit"] == "v0.1.0"
    assert run(andamio, "check", str(project), env=laptop).returncode == 0

    # When andamio is upgraded (the clone is gone: nothing but the wheel can help)
    run("rm", "-rf", str(clone))
    run(UV, "pip", "install", "--quiet", "--reinstall", "--no-deps", "--python", python, str(wheel2))

    # Then on the CI runner check reports the project behind, and update brings v0.2.0 offline
    behind = run(andamio, "check", "--json", str(project), env=runner, check=False)
    assert behind.returncode == 2, behind.stdout + behind.stderr
    (row,) = json.loads(behind.stdout)
    assert (row["current_version"], row["latest_version"]) == ("v0.1.0", "v0.2.0"), row
    updated = run(andamio, "update", str(project), "--json", env=runner)
    (result,) = json.loads(updated.stdout)["results"]
    assert result["result"] == "updated", result
    assert "model (v0.2.0)" in (project / "README.md").read_text()
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_commit"] == "v0.2.0" and answers["_src_path"] == "~/.local/share/andamio/template"
