"""A git history of the template with two real tagged versions, built from the working tree.

* ``v0.1.0``: the current template in an *older layout* -- the quality-gate test
  is still called ``tests/test_quality_gate.py``, a README line, the ``params.yaml``
  header and the end of ``tests/test_settings.py`` differ, and a ``CONTRIBUTING.md``
  is still generated;
* ``v0.2.0``: the current working tree, plus the breaking rename
  ``tests/test_quality_gate.py`` -> ``tests/test_gate.py`` declared in
  ``hooks/migrations/renames.yml`` (the migration copier runs on update).

Built in a temporary folder: tags on the real repository are for real releases.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from support.process import commit_all, git
from support.project import copy_template

__all__ = ["build_history", "commit_all", "git", "render_at"]  # commit_all, git: from support.process

OLD, NEW = "v0.1.0", "v0.2.0"
OLD_TEST, NEW_TEST = "tests/test_quality_gate.py", "tests/test_gate.py"
README_LINE = "Generated with andamio — a {{ ml_task }} model"
OLD_README_LINE = "Generated from the andamio template — a {{ ml_task }} model"
OLD_PARAMS_HEADER = "# params.yaml of the v0.1.0 layout\n"
OLD_SETTINGS_TAIL = "\n# checked against the v0.1.0 settings layout\n"
DROPPED = "CONTRIBUTING.md"


def _commit_and_tag(repo: Path, tag: str) -> None:
    commit_all(repo, f"template {tag}")
    git(repo, "tag", tag)


def build_history(repo: Path) -> Path:
    """Create the two-version template repository in ``repo``; return it."""
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    copy_template(repo)
    # v0.1.0: the older layout.
    tests = repo / "template" / "tests"
    (tests / "test_gate.py.jinja").rename(tests / "test_quality_gate.py.jinja")
    readme = repo / "template" / "README.md.jinja"
    text = readme.read_text(encoding="utf-8")
    assert README_LINE in text, "history fixture: README anchor line moved; update tests/support/history.py"
    readme.write_text(text.replace(README_LINE, OLD_README_LINE), encoding="utf-8")
    params = repo / "template" / "params.yaml.jinja"
    params.write_text(OLD_PARAMS_HEADER + params.read_text(encoding="utf-8"), encoding="utf-8")
    settings_test = repo / "template" / "tests" / "test_settings.py.jinja"
    settings_test.write_text(settings_test.read_text(encoding="utf-8") + OLD_SETTINGS_TAIL, encoding="utf-8")
    (repo / "template" / DROPPED).write_text("How to contribute: open a merge request.\n", encoding="utf-8")
    _commit_and_tag(repo, OLD)
    # v0.2.0: the current template and the rename it makes.
    copy_template(repo)
    renames = repo / "hooks" / "migrations" / "renames.yml"
    renames.write_text(f'- {{version: "0.2.0", from: {OLD_TEST}, to: {NEW_TEST}}}\n', encoding="utf-8")
    _commit_and_tag(repo, NEW)
    return repo


def render_at(
    repo: Path, dest: Path, ref: str = OLD, data: Mapping[str, Any] | None = None, commit: bool = True
) -> Path:
    """Render ``repo`` at ``ref`` into ``dest`` (a git repo with one commit unless ``commit`` is false)."""
    import copier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_copy(
            str(repo), str(dest), data=dict(data or {}), vcs_ref=ref, defaults=True, unsafe=True, quiet=True
        )
    if commit:
        commit_all(dest, f"render {ref}")
    return dest
