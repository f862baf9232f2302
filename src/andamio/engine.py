"""The one seam onto copier: every render and every update goes through here.

No other andamio module imports copier (a test checks it).  Here copier's errors
become :class:`~andamio.errors.AndamioError` with one wording for every command, and
copier is imported lazily, so ``andamio --help`` and ``andamio check`` stay fast.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from andamio import gitrepo
from andamio.errors import AndamioError


@contextlib.contextmanager
def _copier_errors(src: str, what: str) -> Iterator[None]:
    """Translate copier's exceptions into AndamioError (``what`` says which step failed)."""
    import copier

    try:
        yield
    except copier.errors.UnsafeTemplateError as error:
        raise AndamioError(f"{error}\nIf you trust {src}, pass --trust.") from None
    except (ValueError, copier.errors.CopierError) as error:
        raise AndamioError(f"{what}: {error}" if what else str(error)) from None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence copier's warnings (a dirty template checkout is expected while developing it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def _skip_git_index_sync(dest: Path) -> Iterator[None]:
    """Skip copier's per-file ``git config`` probe when rendering outside any git work tree.

    copier 9.19 runs one ``git`` subprocess per rendered file to keep executable bits in
    a *destination* git index when ``core.fileMode`` is false.  A destination outside
    any work tree has no index, so the probe is a no-op that costs ~1.5 ms a file; it is
    skipped there and only there (a speed-up only: copier's result is the same).
    """
    from copier import _main

    method = getattr(_main.Worker, "_sync_git_index_executable_bit", None)
    if method is None or gitrepo.inside_work_tree(dest):
        yield
        return
    _main.Worker._sync_git_index_executable_bit = lambda self, relpath, mode: None  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        _main.Worker._sync_git_index_executable_bit = method  # type: ignore[method-assign]


def render(
    src: str,
    dest: Path,
    *,
    data: Mapping[str, Any] | None = None,
    vcs_ref: str | None = None,
    defaults: bool = True,
    overwrite: bool = False,
    trusted: bool = False,
    skip_tasks: bool = False,
    what: str = "",
) -> dict[str, Any]:
    """Render ``src`` at ``vcs_ref`` into ``dest``; return the answers (``_``-keys excluded)."""
    import copier

    with _quiet(), _skip_git_index_sync(dest), _copier_errors(src, what):
        worker = copier.run_copy(
            src,
            str(dest),
            data=dict(data or {}),
            defaults=defaults,
            vcs_ref=vcs_ref,
            overwrite=overwrite,
            unsafe=trusted,
            quiet=True,
            skip_tasks=skip_tasks,
        )
    return {k: v for k, v in worker.answers.combined.items() if not str(k).startswith("_")}


def update(
    project: Path, *, src: str, answers_file: str, vcs_ref: str | None = None, trusted: bool = False
) -> None:
    """Run ``copier update`` in ``project`` (clean tree): recorded answers, inline conflict markers."""
    import copier

    with _quiet(), _copier_errors(src, f"copier update failed in {project}"):
        copier.run_update(
            str(project),
            answers_file=answers_file,
            vcs_ref=vcs_ref,
            defaults=True,
            overwrite=True,
            skip_answered=True,
            unsafe=trusted,
            conflict="inline",
            quiet=True,
        )
