"""Locked installs of generated projects: uv.lock on the first setup, frozen installs after.

The template never ships a lock (a lock records the index URL, and it is the team's to
commit); the first ``make setup`` locks the whole tree and exports the pip fallbacks into
``requirements/``; every later setup installs exactly that tree, and a pin changed in
``pyproject.toml`` without ``make lock`` fails with a message naming it.
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest
from support import ROOT
from support.process import commit_all, sh
from support.project import Render

# Generated files: `make lock` writes them in a project, nothing ships them.
GENERATED = ("uv.lock", "requirements/all.txt", "requirements/serve.txt", "requirements/pipeline.txt")


def freeze(project: Path) -> list[str]:
    """The exact versions installed in the project's .venv (the project itself left out)."""
    out = sh(project, "uv", "pip", "freeze", "--python", ".venv/bin/python", "--exclude-editable").stdout
    return sorted(out.splitlines())


def test_the_template_ships_no_lock_and_no_exported_requirements():
    shipped = [p.relative_to(ROOT) for p in (ROOT / "template").rglob("*") if p.is_file()]
    offending = [str(p) for p in shipped if p.name == "uv.lock" or "requirements" in p.parts]
    assert not offending, f"generated lock files are in the template: {offending}"


@pytest.mark.render
def test_extras_split_core_serve_and_pipeline(render: Render):
    # Given a default project (serving on) and one with a SQL source
    for answers in ({}, {"data_source": "sql"}):
        project = render(answers)
        meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
        names = {
            group: {d.split("==")[0].split("[")[0] for d in deps}
            for group, deps in {"core": meta["dependencies"], **meta["optional-dependencies"]}.items()
        }
        # Then the core loads a bundle and predicts, without the pipeline's tools
        assert {"mlflow-skinny", "skops", "scikit-learn", "pandas", "pandera"} <= names["core"], names
        assert not names["core"] & {"dvc", "matplotlib", "mlflow", "optuna", "fastapi"}, names["core"]
        assert {"fastapi", "uvicorn", "prometheus-client", "scipy"} <= names["serve"], names
        assert {"dvc", "matplotlib", "mlflow", "optuna"} <= names["pipeline"], names
        assert ({"sqlalchemy", "psycopg"} <= names["pipeline"]) == (answers == {"data_source": "sql"})
        every = [d for deps in (meta["dependencies"], *meta["optional-dependencies"].values()) for d in deps]
        assert all("==" in d for d in every), f"unpinned dependency in {every}"
        # And the mlflow client and server are the same release
        pins = {d.split("==")[0]: d.split("==")[1] for d in every}
        assert pins["mlflow-skinny"] == pins["mlflow"], pins
        # And nothing rendered is a lock, and git would not ignore the ones setup writes
        assert not any((project / name).exists() for name in GENERATED)
        subprocess.run(["git", "init", "-q"], cwd=project, check=True)
        ignored = subprocess.run(
            ["git", "check-ignore", *GENERATED], cwd=project, capture_output=True, text=True
        ).stdout
        assert ignored == "", f".gitignore hides files the team must commit: {ignored}"


@pytest.mark.slow
def test_two_setups_install_the_same_tree_and_a_changed_pin_needs_make_lock(render: Render, tmp_path: Path):
    # Given a project whose first setup locked its tree, committed by the team
    first = render({"serving": True}, name="first")
    sh(first, "make", "setup", "COMPILE_BYTECODE=")
    for name in GENERATED:
        assert (first / name).is_file(), f"the first setup did not write {name}"
    exported = (first / "requirements" / "serve.txt").read_text()
    assert "--index-url" not in exported and "://" not in exported, "an index URL in the export"
    assert "fastapi==" in exported and "dvc==" not in exported and "\nmlflow==" not in exported
    commit_all(first, "initial, with the lock")

    # When a second machine clones it and runs setup
    second = tmp_path / "second"
    sh(tmp_path, "git", "clone", "-q", str(first), str(second))
    setup = sh(second, "make", "setup", "COMPILE_BYTECODE=")

    # Then it installs from the lock, the very same versions, and leaves the lock as it was
    assert "from uv.lock" in setup.stdout and "locking" not in setup.stdout, setup.stdout
    assert freeze(second) == freeze(first)
    assert sh(second, "git", "status", "--porcelain").stdout == ""

    # When a pin changes in pyproject.toml without a new lock
    pyproject = second / "pyproject.toml"
    before = freeze(second)
    pyproject.write_text(pyproject.read_text().replace('"orjson==3.13.0"', '"orjson==3.12.0"'))
    stale = sh(second, "make", "setup", "COMPILE_BYTECODE=", check=False)

    # Then the install fails, says to run `make lock`, and changes nothing installed
    assert stale.returncode != 0, stale.stdout
    assert "uv.lock does not match pyproject.toml" in stale.stderr, stale.stderr
    assert "run make lock" in stale.stderr, stale.stderr
    assert freeze(second) == before

    # When the lock is refreshed, setup installs the new pin, and the exports follow it
    sh(second, "make", "lock")
    sh(second, "make", "setup", "COMPILE_BYTECODE=")
    assert "orjson==3.12.0" in freeze(second)
    assert "orjson==3.12.0" in (second / "requirements" / "serve.txt").read_text()
    changed = sh(second, "git", "status", "--porcelain").stdout
    assert "uv.lock" in changed and "requirements/serve.txt" in changed, changed
