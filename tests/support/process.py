"""The process helpers of every test: run a command, fail with its output tail when it fails."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

#: The andamio CLI of this checkout, run the way a user runs it.
ANDAMIO = (sys.executable, "-m", "andamio")
#: A commit identity, so commits work on a machine with no git configuration.
IDENTITY = ("-c", "user.name=t", "-c", "user.email=t@example.org")


def sh(
    cwd: Path | None,
    *cmd: str | Path,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    timeout: float = 900,
    unset: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in ``cwd`` with this environment, less the variables whose names start with
    one of ``unset`` (a CI runner's clean environment, say), plus ``env``.

    With ``check`` (the default) an exit status other than 0 fails the test with the last
    lines of the command's output.
    """
    args = [str(c) for c in cmd]
    base = {k: v for k, v in os.environ.items() if not (unset and k.startswith(unset))}
    proc = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, env={**base, **(env or {})}, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"`{' '.join(args)}` failed ({proc.returncode}) in {cwd}:\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def git(cwd: Path, *args: str) -> str:
    """``git ARGS`` in ``cwd`` (must succeed); its standard output."""
    return sh(cwd, "git", *args).stdout


def make(project: Path, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    """``make ARGS`` in ``project``; ``sh``'s keywords (``check``, ``env``, ``timeout``) apply."""
    return sh(project, "make", *args, **kwargs)


def andamio(cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``andamio ARGS`` in ``cwd``, whatever its exit status (the tests check it)."""
    return sh(cwd, *ANDAMIO, *args, check=False, timeout=timeout)


def commit_all(repo: Path, message: str = "initial") -> None:
    """Commit everything in ``repo`` (``git init`` first when it is in no repository yet)."""
    if sh(repo, "git", "rev-parse", check=False).returncode:
        git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "--all")
    git(repo, *IDENTITY, "commit", "-q", "--allow-empty", "-m", message)
