"""Fixtures of every test subject: the template as the wheel ships it, rendered projects.

Tiers (see README): static tests have no marker, ``render`` renders the template,
``slow`` runs generated projects, ``integration`` drives real external components.
The helpers themselves live in the ``support`` package (tests/support/).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock
from support.project import Projects, Render, copy_template

# Generated projects find uv (fast `make setup`) and the tools of this venv.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# pytest-xdist already runs a worker per core: OpenMP models (histogram gradient boosting,
# LightGBM) spinning a thread per core on top of that slow a loaded machine by 10-100x.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A folder of this test session, the same for every pytest-xdist worker."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if hasattr(request.config, "workerinput") else base


@pytest.fixture(scope="session")
def template_src(session_dir: Path) -> Path:
    """A plain-folder copy of the template (no git: renders the working tree, fast)."""
    dest = session_dir / "andamio-template"
    with FileLock(session_dir / "andamio-template.lock"):
        if not (dest / "copier.yml").exists():
            copy_template(dest.with_name("andamio-template.partial")).rename(dest)
    return dest


@pytest.fixture(scope="session")
def project_factory(template_src: Path, session_dir: Path) -> Projects:
    """The rendered-project factory: ``project_factory.new(dest, answers)`` (one rendering per answer set)."""
    return Projects(template_src, session_dir / "rendered")


@pytest.fixture
def render(project_factory: Projects, tmp_path: Path) -> Render:
    """``render(answers, name=None)``: a project of this test under ``tmp_path``; return its path."""
    counter = {"n": 0}

    def _render(data: Mapping[str, Any] | None = None, name: str | None = None) -> Path:
        counter["n"] += 1
        return project_factory.new(tmp_path / (name or f"project{counter['n']}"), data)

    return _render


@pytest.fixture(scope="session")
def template_history(session_dir: Path) -> Path:
    """A git repository of the template with tags v0.1.0 (older layout) and v0.2.0 (current).

    See tests/support/history.py; used by the update, check, fleet and adopt tests, which only
    read it (one per session, shared by the workers).
    """
    from support.history import build_history

    repo = session_dir / "history" / "andamio-template"
    with FileLock(session_dir / "history.lock"):
        if not (repo / ".git" / "andamio-built").exists():
            shutil.rmtree(repo, ignore_errors=True)
            build_history(repo)
            (repo / ".git" / "andamio-built").touch()
    return repo
