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

import shutil
import subprocess
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from andamio.config import TEMPLATE_PATHS

ROOT = Path(__file__).resolve().parents[1]
OLD, NEW = "v0.1.0", "v0.2.0"
OLD_TEST, NEW_TEST = "tests/test_quality_gate.py", "tests/test_gate.py"
README_LINE = "Generated with andamio — a {{ ml_task }} model"
OLD_README_LINE = "Generated from the andamio template — a {{ ml_task }} model"
OLD_PARAMS_HEADER = "# params.yaml of the v0.1.0 layout\n"
OLD_SETTINGS_TAIL = "\n# checked against the v0.1.0 settings layout\n"
DROPPED = "CONTRIBUTING.md"


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, f"git {' '.join(args)} failed in {cwd}: {proc.stderr}"
    return proc.stdout


def _copy_tree(dest: Path) -> None:
    for name in TEMPLATE_PATHS:
        if (dest / name).is_dir():
            shutil.rmtree(dest / name)
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, dest / name)


def _commit_and_tag(repo: Path, tag: str) -> None:
    git(repo, "add", "--all")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", f"template {tag}")
    git(repo, "tag", tag)


def build_history(repo: Path) -> Path:
    """Create the two-version template repository in ``repo``; return it."""
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    _copy_tree(repo)
    # v0.1.0: the older layout.
    tests = repo / "template" / "tests"
    (tests / "test_gate.py.jinja").rename(tests / "test_quality_gate.py.jinja")
    readme = repo / "template" / "README.md.jinja"
    text = readme.read_text(encoding="utf-8")
    assert README_LINE in text, "history fixture: README anchor line moved; update tests/history.py"
    readme.write_text(text.replace(README_LINE, OLD_README_LINE), encoding="utf-8")
    params = repo / "template" / "params.yaml.jinja"
    params.write_text(OLD_PARAMS_HEADER + params.read_text(encoding="utf-8"), encoding="utf-8")
    settings_test = repo / "template" / "tests" / "test_settings.py.jinja"
    settings_test.write_text(settings_test.read_text(encoding="utf-8") + OLD_SETTINGS_TAIL, encoding="utf-8")
    (repo / "template" / DROPPED).write_text("How to contribute: open a merge request.\n", encoding="utf-8")
    _commit_and_tag(repo, OLD)
    # v0.2.0: the current template and the rename it makes.
    _copy_tree(repo)
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
        top = dest
        if (
            not (dest / ".git").exists()
            and subprocess.run(["git", "rev-parse"], cwd=dest, capture_output=True).returncode
        ):
            git(dest, "init", "-q", "-b", "main")
        else:
            top = Path(git(dest, "rev-parse", "--show-toplevel").strip())
        commit_all(top, f"render {ref}")
    return dest


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "--all")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", message)
