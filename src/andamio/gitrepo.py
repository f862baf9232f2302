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
    """Tell whether ``path`` is inside an existing git work tree."""
    proc = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"], cwd=path, capture_output=True, text=True, check=False
    )
    return proc.returncode == 0 and proc.stdout.strip() == "true"


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
