"""Shared test helpers: a wheel-like copy of the template and a render function.

Tiers (see README): static tests have no marker, ``render`` renders the template,
``slow`` runs generated projects, ``integration`` drives real external components.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

# Generated projects find uv (fast `make setup`) and the tools of this venv.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# pytest-xdist already runs a worker per core: OpenMP models (histogram gradient boosting,
# LightGBM) spinning a thread per core on top of that slow a loaded machine by 10-100x.
os.environ.setdefault("OMP_NUM_THREADS", "1")

Render = Callable[..., Path]


def copy_template(dest: Path) -> Path:
    """Copy the template (andamio.config.TEMPLATE_PATHS) to ``dest`` exactly as the wheel ships it."""
    from andamio.config import TEMPLATE_PATHS

    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in TEMPLATE_PATHS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, dest / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, dest / name)
    return dest


@pytest.fixture(scope="session")
def template_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain-folder copy of the template (no git: renders the working tree, fast)."""
    return copy_template(tmp_path_factory.mktemp("andamio-template"))


def render_project(src: Path, dest: Path, data: Mapping[str, Any] | None = None) -> Path:
    """Render ``src`` into ``dest`` non-interactively with ``data`` over the defaults."""
    import copier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_copy(str(src), str(dest), data=dict(data or {}), defaults=True, unsafe=True, quiet=True)
    return dest


@pytest.fixture
def render(template_src: Path, tmp_path: Path) -> Render:
    """Render the template into a fresh folder under ``tmp_path``; return the project path."""
    counter = {"n": 0}

    def _render(data: Mapping[str, Any] | None = None, name: str | None = None) -> Path:
        counter["n"] += 1
        return render_project(template_src, tmp_path / (name or f"project{counter['n']}"), data)

    return _render


@pytest.fixture(scope="session")
def template_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository of the template with tags v0.1.0 (older layout) and v0.2.0 (current).

    See tests/history.py; used by the update, check, fleet and adopt tests.
    """
    from history import build_history

    return build_history(tmp_path_factory.mktemp("history") / "andamio-template")
