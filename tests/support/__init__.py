"""Helpers shared by the test subjects (template, toolkit, CI library, Ansible).

Importable as ``support`` because pytest puts ``tests/`` on ``sys.path``
(``[tool.pytest.ini_options] pythonpath`` in pyproject.toml); scripts outside pytest
(``benchmarks/``) put it there themselves.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import NoReturn


def unavailable(reason: str) -> NoReturn:
    """Fail in CI, whose bootstrap installs every tool, and skip elsewhere, saying why."""
    import os

    import pytest

    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


#: The andamio checkout.
ROOT = Path(__file__).resolve().parents[2]


def load_hook(relative: str) -> ModuleType:
    """Import a module of the template's ``hooks/`` (not a package) from its file, once."""
    name = "andamio_hooks_" + Path(relative).stem
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "hooks" / relative)
    assert spec and spec.loader, relative
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
