"""The template as the wheel ships it, and rendered projects made from it.

``copy_template`` is the one copy of the template's paths (``andamio.config.TEMPLATE_PATHS``:
copier.yml, questions/, template/, hooks/ with its migrations). ``Projects`` is the one
factory of rendered projects: each answer set is rendered once per test session (shared by
the pytest-xdist workers) and every test gets its own copy, which it may change.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock

from andamio.config import TEMPLATE_PATHS
from support import ROOT

Answers = Mapping[str, Any]
#: The ``render`` fixture: ``render(answers=None, name=None) -> Path`` (tests/conftest.py).
Render = Callable[..., Path]
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".ruff_cache")


def clear_template(dest: Path) -> None:
    """Remove the template's paths from ``dest`` (a next version replaces them whole)."""
    for name in TEMPLATE_PATHS:
        target = dest / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def copy_template(dest: Path, source: Path = ROOT) -> Path:
    """Copy the template's paths from ``source`` into ``dest``, replacing what ``dest`` had of them."""
    dest.mkdir(parents=True, exist_ok=True)
    clear_template(dest)
    for name in TEMPLATE_PATHS:
        if (source / name).is_dir():
            shutil.copytree(source / name, dest / name, ignore=_IGNORE)
        else:
            shutil.copy2(source / name, dest / name)
    return dest


def render_project(src: Path, dest: Path, data: Answers | None = None) -> Path:
    """Render ``src`` into ``dest`` non-interactively with ``data`` over the defaults."""
    import copier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_copy(str(src), str(dest), data=dict(data or {}), defaults=True, unsafe=True, quiet=True)
    return dest


class Projects:
    """Rendered projects, each answer set rendered once into ``cache``, handed out as copies.

    ``cache`` may be shared by several processes (the pytest-xdist workers): a file lock per
    answer set makes one of them render it and the others wait for that rendering. A rendering
    that fails (an answer refused) is not cached: the error reaches every caller.
    """

    def __init__(self, template: Path, cache: Path) -> None:
        self.template = template
        self.cache = cache
        cache.mkdir(parents=True, exist_ok=True)

    def _rendered(self, data: Answers) -> Path:
        key = hashlib.sha256(json.dumps(dict(data), sort_keys=True, default=str).encode()).hexdigest()[:16]
        done = self.cache / key
        with FileLock(self.cache / f"{key}.lock"):
            if not done.is_dir():
                partial = self.cache / f"{key}.partial"
                shutil.rmtree(partial, ignore_errors=True)
                render_project(self.template, partial, data)
                partial.rename(done)
        return done

    def new(self, dest: Path, data: Answers | None = None) -> Path:
        """A project rendered with ``data`` over the defaults, at ``dest`` (which must not exist)."""
        shutil.copytree(self._rendered(data or {}), dest, symlinks=True)
        return dest
