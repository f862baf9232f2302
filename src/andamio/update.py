"""Update one repository from its template, safely, on a new branch.

copier does the merge (``copier update``, inline conflict markers); andamio adds
what a team needs around it:

* it refuses a work tree with uncommitted changes and changes nothing then;
* it works on a new branch (``andamio/update-<version>``) and commits the result
  there, conflict markers included, so a human or a CI job can open a PR/MR;
* it lists the files that carry conflict markers;
* it never deletes a file the team changed: copier removes files the template
  dropped even when the team edited them -- andamio puts those back;
* a project in a subdirectory of a larger repository, and several answers files
  (several templates applied to one repository), are updated one after another.

Rule for files the team deleted (copier's, kept): a generated file the team
removed stays removed after an update, even when the template changed it;
``_skip_if_exists`` files (``params.yaml``) are the exception -- they are
recreated, since the project needs them.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from andamio import gitrepo, source
from andamio.errors import AndamioError

#: Answers files copier writes: ``.copier-answers.yml`` or ``.copier-answers.<name>.yml``.
ANSWERS_PATTERN = re.compile(r"^\.copier-answers(\.[\w.-]+)?\.ya?ml$")
#: Folders never searched for answers files.
SKIP_DIRS = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".nox", ".dvc"})
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader when libyaml is there
_MARKER_START = re.compile(rb"^<<<<<<< ", re.MULTILINE)
_MARKER_END = re.compile(rb"^>>>>>>> ", re.MULTILINE)


class DirtyTreeError(AndamioError):
    """The work tree has uncommitted changes; nothing was changed."""


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


@dataclass
class UpdateResult:
    """What happened to one subproject."""

    project: str
    answers_file: str
    src: str | None
    from_version: str | None
    to_version: str | None
    result: str  # updated | up-to-date | conflicts | skipped | error
    conflicts: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # files the template dropped, kept for the team
    branch: str | None = None
    commit: str | None = None
    message: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)


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


def conflicted_files(paths: Iterable[Path]) -> list[Path]:
    """Return the files among ``paths`` that carry conflict markers (or a ``.rej`` beside them)."""
    found = []
    for path in paths:
        if path.suffix == ".rej" or path.with_name(path.name + ".rej").exists():
            found.append(path)
            continue
        try:
            data = path.read_bytes()
        except (IsADirectoryError, FileNotFoundError):
            continue
        if _MARKER_START.search(data) and _MARKER_END.search(data):
            found.append(path)
    return found


def _changed_files(top: Path) -> list[Path]:
    out = gitrepo.git(top, "status", "--porcelain", "--untracked-files=all", "--no-renames")
    return [top / line[3:] for line in out.splitlines() if line[:2].strip() not in {"D"}]


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


def target_version(src: str, vcs_ref: str | None) -> str | None:
    """Return the version an update goes to: ``vcs_ref``, else the newest tag, else ``None`` (HEAD)."""
    if vcs_ref:
        return vcs_ref
    latest = source.latest_version(src)
    return latest[0] if latest else None


def is_behind(current: str | None, target: str | None) -> bool | None:
    """Tell whether ``current`` is older than ``target`` (``None``: cannot tell)."""
    a, b = source.parse_version(current), source.parse_version(target)
    if a is None or b is None:
        return None
    return b > a


@contextlib.contextmanager
def _keep_changed_dropped_files(kept: list[Path]) -> Iterator[None]:
    """Keep files the new template dropped when the team had changed them.

    copier removes every file that is in the old template version and not in the
    new one, edited or not (``_remove_old_files``, copier 9.19).  While an
    update runs, this wraps that helper: a file whose bytes differ from the old
    template's rendering is put back after copier's removal and reported.
    """
    from copier import _main

    original = _main._remove_old_files

    def guarded(prefix: Path, cmp: Any, rm_common: bool = False) -> None:
        saved = []
        with contextlib.suppress(NotADirectoryError, FileNotFoundError):
            names = list(cmp.left_only) + (list(cmp.common_files) if rm_common else [])
            for name in names:
                target, old = Path(prefix, name), Path(cmp.left, name)
                if target.is_file() and not target.is_symlink() and old.is_file():
                    mine = target.read_bytes()
                    if mine != old.read_bytes():
                        saved.append((target, mine, target.stat().st_mode))
        original(prefix, cmp, rm_common)
        for target, mine, mode in saved:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(mine)
            target.chmod(mode)
            kept.append(target)

    _main._remove_old_files = guarded  # type: ignore[attr-defined]
    try:
        yield
    finally:
        _main._remove_old_files = original  # type: ignore[attr-defined]


def update_subproject(
    sub: Subproject, *, vcs_ref: str | None = None, trust: bool = False
) -> tuple[str | None, list[str], list[str]]:
    """Run ``copier update`` on one subproject (tree must be clean); return new version, conflicts, kept."""
    import copier

    src = check_source(sub)
    trusted = trust or source.is_managed(src)
    top = gitrepo.toplevel(sub.path)
    dropped: list[Path] = []
    with warnings.catch_warnings(), _keep_changed_dropped_files(dropped):
        warnings.simplefilter("ignore")
        try:
            copier.run_update(
                str(sub.path),
                answers_file=sub.answers_file,
                vcs_ref=vcs_ref,
                defaults=True,
                overwrite=True,
                skip_answered=True,
                unsafe=trusted,
                conflict="inline",
                quiet=True,
            )
        except copier.errors.UnsafeTemplateError as error:
            raise AndamioError(f"{error}\nIf you trust {src}, pass --trust.") from None
        except (ValueError, copier.errors.CopierError) as error:
            raise AndamioError(f"copier update failed in {sub.path}: {error}") from None
    # A migration may have moved a kept file on (follow_renames): only report what is still there.
    kept = [str(p.relative_to(top)) for p in dropped if p.exists()]
    conflicts = [str(p.relative_to(top)) for p in conflicted_files(_changed_files(top))]
    new = read_subproject(sub.answers_path)
    return new.commit, conflicts, kept


def _branch_name(top: Path, wanted: str | None, label: str) -> str:
    base = wanted or f"andamio/update-{re.sub(r'[^A-Za-z0-9._-]+', '-', label)}"
    name, n = base, 1
    while gitrepo.branch_exists(top, name):
        n += 1
        name = f"{base}-{n}"
    return name


def update(
    path: Path,
    *,
    branch: str | None = None,
    vcs_ref: str | None = None,
    trust: bool = False,
    commit: bool = True,
) -> list[UpdateResult]:
    """Update every subproject of ``path`` on a new branch; see the module docstring."""
    path = path.expanduser().resolve()
    if not path.exists():
        raise AndamioError(f"{path} does not exist")
    folder = path if path.is_dir() else path.parent
    if not gitrepo.inside_work_tree(folder):
        raise AndamioError(f"{folder} is not in a git repository; `git init` and commit it first")
    top = gitrepo.toplevel(folder)
    subs = [read_subproject(p) for p in find_answers(path)]
    if not subs:
        raise AndamioError(f"no copier answers file (.copier-answers*.yml) in or under {path}")
    dirty = gitrepo.dirty_paths(top)
    if dirty:
        shown = "\n".join(f"  {p}" for p in dirty[:10]) + ("\n  …" if len(dirty) > 10 else "")
        raise DirtyTreeError(
            f"refusing to update {top}: the work tree has uncommitted changes; nothing was changed.\n"
            f"{shown}\nCommit or stash them, then run andamio update again."
        )
    plans: list[tuple[Subproject, UpdateResult]] = []
    for sub in subs:
        res = UpdateResult(
            project=str(sub.path),
            answers_file=sub.answers_file,
            src=sub.src,
            from_version=sub.commit,
            to_version=None,
            result="up-to-date",
        )
        try:
            src = check_source(sub)
            res.to_version = target_version(src, vcs_ref)
            if vcs_ref is None and is_behind(sub.commit, res.to_version) is False:
                res.to_version = sub.commit
                res.message = "already on the newest template version"
            else:
                res.result = "pending"
        except AndamioError as error:
            res.result, res.message = "error", str(error)
        plans.append((sub, res))
    pending = [(s, r) for s, r in plans if r.result == "pending"]
    if not pending:
        return [r for _, r in plans]
    if not commit and len(pending) > 1:
        # copier updates only clean trees: the second update would see the first one's changes.
        names = ", ".join(str(s.answers_path.relative_to(top)) for s, _ in pending)
        raise AndamioError(f"--no-commit updates one answers file at a time; name one of: {names}")
    main = [r for s, r in pending if s.answers_file == ".copier-answers.yml"] or [pending[0][1]]
    label = main[0].to_version or "head"
    name = _branch_name(top, branch, label) if commit else None
    if name:
        gitrepo.git(top, "checkout", "--quiet", "-b", name)
    for sub, res in pending:
        started = time.perf_counter()
        try:
            res.to_version, res.conflicts, res.kept = update_subproject(sub, vcs_ref=vcs_ref, trust=trust)
        except AndamioError as error:
            res.result, res.message = "error", str(error)
            # Leave nothing half-done behind for the next subproject.
            gitrepo.git(top, "reset", "--quiet", "--hard", "HEAD")
            gitrepo.git(top, "clean", "-fdq")
            res.seconds = time.perf_counter() - started
            continue
        res.result = "conflicts" if res.conflicts else "updated"
        res.branch = name
        if commit:
            rel = sub.path.relative_to(top).as_posix()
            where = sub.answers_file if rel == "." else f"{rel}/{sub.answers_file}"
            lines = [f"Update {where} from template {res.from_version} to {res.to_version}"]
            if res.conflicts:
                lines += ["", "Conflicts to resolve (markers in the files):"]
                lines += [f"- {c}" for c in res.conflicts]
            if res.kept:
                lines += ["", "Kept (dropped by the template, changed by the team):"]
                lines += [f"- {k}" for k in res.kept]
            res.commit = gitrepo.commit_all(top, "\n".join(lines))
        if commit and res.commit is None and not res.conflicts:
            res.result, res.message = "up-to-date", "the update changed nothing"
        res.seconds = time.perf_counter() - started
    if name and not any(r.commit for _, r in pending):
        # Nothing to review: go back and drop the empty branch.
        gitrepo.git(top, "checkout", "--quiet", "-")
        gitrepo.git(top, "branch", "--quiet", "-D", name)
        for _, res in pending:
            res.branch = None
    return [r for _, r in plans]


def summary_markdown(results: list[UpdateResult]) -> str:
    """Write a PR/MR description: what was updated, and which files need a human."""
    lines = ["## Template update", "", "| project | from | to | result |", "|---|---|---|---|"]
    here = Path.cwd()
    for r in results:
        where = Path(r.project)
        shown = where.relative_to(here).as_posix() if where.is_relative_to(here) else str(where)
        lines.append(f"| `{shown}` ({r.answers_file}) | {r.from_version} | {r.to_version} | {r.result} |")
    conflicts = [c for r in results for c in r.conflicts]
    if conflicts:
        lines += ["", "### Conflicts to resolve", "", "Search for `<<<<<<<` in:", ""]
        lines += [f"- `{c}`" for c in conflicts]
    kept = [k for r in results for k in r.kept]
    if kept:
        lines += ["", "### Kept for the team (the template dropped these files)", ""]
        lines += [f"- `{k}`" for k in kept]
    return "\n".join(lines) + "\n"
