"""Small git plumbing used by the toolkit."""

from __future__ import annotations

import subprocess
from pathlib import Path

from andamio.errors import AndamioError

# Used only when the user has no git identity configured (fresh CI machines).
_FALLBACK_IDENTITY = ("-c", "user.name=andamio", "-c", "user.email=andamio@localhost")


def git(cwd: Path, *args: str) -> str:
    """Run ``git`` in ``cwd`` and return its stdout; raise :class:`AndamioError` on failure."""
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise AndamioError("git is not installed; install git or pass --no-git") from None
    if proc.returncode != 0:
        raise AndamioError(f"git {' '.join(args)} failed in {cwd}:\n{proc.stderr.strip()}")
    return proc.stdout


def inside_work_tree(path: Path) -> bool:
    """Tell whether ``path`` is (or, not created yet, would be) inside an existing git work tree."""
    while not path.exists():
        path = path.parent
    proc = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"], cwd=path, capture_output=True, text=True, check=False
    )
    return proc.returncode == 0 and proc.stdout.strip() == "true"


def is_ignored(path: Path) -> bool:
    """Tell whether ``path`` is git-ignored by the work tree that encloses it."""
    proc = subprocess.run(
        ["git", "check-ignore", "--quiet", str(path)], cwd=path, capture_output=True, check=False
    )
    return proc.returncode == 0


def tracked_by_enclosing_repo(path: Path) -> bool:
    """Tell whether files in ``path`` would belong to an enclosing git work tree."""
    return inside_work_tree(path) and not is_ignored(path)


def has_identity(path: Path) -> bool:
    """Tell whether git has a committer identity configured for ``path``."""
    proc = subprocess.run(["git", "config", "user.email"], cwd=path, capture_output=True, check=False)
    return proc.returncode == 0


def init_and_commit(path: Path, message: str) -> str:
    """``git init`` ``path`` on branch ``main``, commit everything, return the commit sha."""
    git(path, "init", "--quiet", "--initial-branch=main")
    git(path, "add", "--all")
    identity = () if has_identity(path) else _FALLBACK_IDENTITY
    git(path, *identity, "commit", "--quiet", "--no-verify", "-m", message)
    return git(path, "rev-parse", "HEAD").strip()


def toplevel(path: Path) -> Path:
    """Return the root of the git work tree holding ``path``."""
    return Path(git(path, "rev-parse", "--show-toplevel").strip())


def dirty_paths(path: Path) -> list[str]:
    """Return the changed and untracked paths of the work tree holding ``path`` (porcelain)."""
    out = git(path, "status", "--porcelain", "--untracked-files=normal")
    return [line[3:] for line in out.splitlines() if line.strip()]


def current_branch(path: Path) -> str | None:
    """Return the checked-out branch name, or ``None`` on a detached HEAD."""
    proc = subprocess.run(
        ["git", "symbolic-ref", "--quiet", "--short", "HEAD"], cwd=path, capture_output=True, text=True
    )
    return proc.stdout.strip() or None


def branch_exists(path: Path, name: str) -> bool:
    """Tell whether a local branch ``name`` exists."""
    proc = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{name}"], cwd=path, capture_output=True
    )
    return proc.returncode == 0


def commit_all(path: Path, message: str, pathspec: str = ".") -> str | None:
    """Stage everything under ``pathspec`` and commit it; return the sha, or ``None`` if nothing changed."""
    git(path, "add", "--all", "--", pathspec)
    if not git(path, "diff", "--cached", "--name-only"):
        return None
    identity = () if has_identity(path) else _FALLBACK_IDENTITY
    git(path, *identity, "commit", "--quiet", "--no-verify", "-m", message)
    return git(path, "rev-parse", "HEAD").strip()


def show(path: Path, rev: str, relpath: str) -> bytes | None:
    """Return the bytes of ``relpath`` (relative to ``path``) at ``rev``, or ``None`` if absent."""
    proc = subprocess.run(["git", "show", f"{rev}:./{relpath}"], cwd=path, capture_output=True, check=False)
    return proc.stdout if proc.returncode == 0 else None


def find_toplevel(path: Path) -> Path | None:
    """Return the nearest folder at or above ``path`` holding ``.git`` (no subprocess), or ``None``."""
    for folder in (path, *path.parents):
        if (folder / ".git").exists():
            return folder
    return None
