"""Update one repository from its template, safely, on a new branch.

copier does the merge (``copier update``, inline conflict markers); andamio adds
what a team needs around it:

* it refuses a work tree with uncommitted changes and changes nothing then;
* it works on a new branch (``andamio/update-<version>``) and commits the result
  there, conflict markers included, so a human or a CI job can open a PR/MR;
* it lists the files that carry conflict markers;
* it never deletes a file the team changed: copier removes files the template
  dropped even when the team edited them -- andamio renders the project's old
  template version first (copier's public API), so it knows which files the team
  changed, and puts those back after the update;
* a project in a subdirectory of a larger repository, and several answers files
  (several templates applied to one repository), are updated one after another.

Rule for files the team deleted (copier's, kept): a generated file the team
removed stays removed after an update, even when the template changed it;
``_skip_if_exists`` files (``params.yaml``) are the exception -- they are
recreated, since the project needs them.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from andamio import engine, gitrepo, source
from andamio.answers import Subproject, check_source, find_answers, read_subproject
from andamio.errors import AndamioError, DirtyTreeError
from andamio.outcome import Status

_MARKER_START = re.compile(rb"^<<<<<<< ", re.MULTILINE)
_MARKER_END = re.compile(rb"^>>>>>>> ", re.MULTILINE)


@dataclass
class UpdateResult:
    """What happened to one subproject."""

    project: str
    answers_file: str
    src: str | None
    from_version: str | None
    to_version: str | None
    result: str  # an andamio.outcome.Status: current | updated | conflicts | error
    conflicts: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # files the template dropped, kept for the team
    branch: str | None = None
    commit: str | None = None
    message: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)


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


def _team_changes(sub: Subproject, src: str, trusted: bool) -> dict[Path, tuple[bytes, int]]:
    """Return the files of ``sub`` whose bytes differ from what its template version rendered.

    ``copier update`` removes every file the new template version dropped, edited or
    not.  To keep the team's work, andamio renders the version the project is on (its
    recorded answers at ``_commit``, with copier's public API, as copier itself does
    inside an update) and remembers each file the team changed, bytes and mode.
    """
    changed: dict[Path, tuple[bytes, int]] = {}
    with tempfile.TemporaryDirectory(prefix="andamio-old-") as tmp:
        old = Path(tmp) / "old"
        engine.render(
            src,
            old,
            data=sub.answers,
            vcs_ref=sub.commit,
            trusted=trusted,
            skip_tasks=True,
            what=f"rendering template version {sub.commit} (to protect the team's edits) failed",
        )
        for rendered in old.rglob("*"):
            mine = sub.path / rendered.relative_to(old)
            if not rendered.is_file() or not mine.is_file() or mine.is_symlink():
                continue
            data = mine.read_bytes()
            if data != rendered.read_bytes():
                changed[mine] = (data, mine.stat().st_mode)
    return changed


def _restore_dropped(changed: dict[Path, tuple[bytes, int]], written: list[Path]) -> list[Path]:
    """Put back the changed files the update removed; return them.

    A file a migration moved on (``follow_renames``: the team's bytes now live at the
    new path, among the files the update ``written``) has not been lost: it stays moved.
    """
    moved = {path.read_bytes() for path in written if path.is_file()}
    kept = []
    for path, (data, mode) in changed.items():
        if path.exists() or data in moved:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
        kept.append(path)
    return kept


def update_subproject(
    sub: Subproject, *, vcs_ref: str | None = None, trust: bool = False
) -> tuple[str | None, list[str], list[str]]:
    """Run ``copier update`` on one subproject (tree must be clean); return new version, conflicts, kept."""
    src = check_source(sub)
    trusted = trust or source.is_managed(src)
    top = gitrepo.toplevel(sub.path)
    changed = _team_changes(sub, src, trusted)
    engine.update(sub.path, src=src, answers_file=sub.answers_file, vcs_ref=vcs_ref, trusted=trusted)
    written = _changed_files(top)
    kept = [str(p.relative_to(top)) for p in _restore_dropped(changed, written)]
    conflicts = [str(p.relative_to(top)) for p in conflicted_files(written)]
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
            result=Status.CURRENT,
        )
        try:
            src = check_source(sub)
            res.to_version = source.target_version(src, vcs_ref)
            if vcs_ref is None and source.is_behind(sub.commit, res.to_version) is False:
                res.to_version = sub.commit
                res.message = "already on the newest template version"
            else:
                res.result = "pending"
        except AndamioError as error:
            res.result, res.message = Status.ERROR, str(error)
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
            res.result, res.message = Status.ERROR, str(error)
            # Leave nothing half-done behind for the next subproject.
            gitrepo.git(top, "reset", "--quiet", "--hard", "HEAD")
            gitrepo.git(top, "clean", "-fdq")
            res.seconds = time.perf_counter() - started
            continue
        res.result = Status.CONFLICTS if res.conflicts else Status.UPDATED
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
            res.result, res.message = Status.CURRENT, "the update changed nothing"
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
