"""Answers files: where they are, what they record, which template source they name.

The one home of answers-file discovery, shared by ``check``, ``update``, ``fleet`` and
``adopt``: copier writes ``.copier-answers.yml`` (or ``.copier-answers.<name>.yml`` when
several templates are applied to one repository) in the folder it rendered.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from andamio import source
from andamio.errors import AndamioError

#: Answers files copier writes: ``.copier-answers.yml`` or ``.copier-answers.<name>.yml``.
ANSWERS_PATTERN = re.compile(r"^\.copier-answers(\.[\w.-]+)?\.ya?ml$")
#: Folders never searched for answers files.
SKIP_DIRS = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".nox", ".dvc"})
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader when libyaml is there


@dataclass(frozen=True)
class Subproject:
    """A folder rendered from a template, known by its answers file."""

    path: Path  # the folder holding the answers file
    answers_file: str  # its name, relative to ``path``
    src: str | None
    commit: str | None
    answers: dict[str, Any]

    @property
    def answers_path(self) -> Path:
        """Absolute path of the answers file."""
        return self.path / self.answers_file


def is_answers_file(name: str) -> bool:
    """Tell whether ``name`` is a copier answers file name."""
    return bool(ANSWERS_PATTERN.match(name))


def walk_answers(root: Path) -> Iterator[Path]:
    """Yield every answers file under ``root`` (skipping virtualenvs, .git, node_modules)."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            if is_answers_file(name):
                yield Path(folder) / name


def find_answers(path: Path) -> list[Path]:
    """Answers files of ``path``: its own, or else every one below it."""
    path = path.resolve()
    if path.is_file():
        return [path]
    own = sorted(p for p in path.iterdir() if p.is_file() and is_answers_file(p.name))
    return own or list(walk_answers(path))


def read_subproject(answers_path: Path) -> Subproject:
    """Read an answers file."""
    try:
        data = yaml.load(answers_path.read_text(encoding="utf-8"), Loader=_YAML_LOADER) or {}
    except (OSError, yaml.YAMLError) as error:
        raise AndamioError(f"cannot read {answers_path}: {error}") from None
    if not isinstance(data, dict):
        raise AndamioError(f"{answers_path} is not a copier answers file (not a mapping)")
    src = data.get("_src_path")
    commit = data.get("_commit")
    return Subproject(
        path=answers_path.parent,
        answers_file=answers_path.name,
        src=str(src) if src else None,
        commit=str(commit) if commit else None,
        answers={k: v for k, v in data.items() if not str(k).startswith("_")},
    )


def check_source(sub: Subproject) -> str:
    """Return the template source of ``sub``, or explain why it cannot be updated."""
    if not sub.src:
        raise AndamioError(f"{sub.answers_path} records no template source (_src_path); cannot update")
    if not sub.commit:
        raise AndamioError(
            f"{sub.answers_path} records no template version (_commit): it was rendered from a "
            f"folder without git history ({sub.src}). Point _src_path at a git source of the "
            "template (andamio's: see ANDAMIO_TEMPLATE) and set _commit to the tag it was rendered from."
        )
    source.refresh(sub.src)
    src = source.expand(sub.src)
    if "://" not in src and not src.startswith(("git@", "gh:", "gl:")):
        if not Path(src).is_absolute():
            raise AndamioError(
                f"{sub.answers_path} records a relative template source ({sub.src}); copier would "
                "resolve it from the current directory. Write an absolute path or a URL there."
            )
        if not Path(src).exists():
            raise AndamioError(
                f"template source {sub.src} (from {sub.answers_path}) does not exist on this machine; "
                f"set {source.SOURCE_ENV} or edit _src_path to a mirror of the template"
            )
    return src
