"""Render a new project from the template (copier is the only engine)."""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from andamio import gitrepo
from andamio.errors import AndamioError
from andamio.source import bundled_template, default_source


@dataclass(frozen=True)
class NewResult:
    """What ``andamio new`` produced."""

    dest: Path
    answers: dict[str, Any]
    files: int
    commit: str | None
    seconds: float


def parse_data(pairs: Iterable[str]) -> dict[str, str]:
    """Turn ``KEY=VALUE`` strings into a mapping; copier casts values per question type."""
    data: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise AndamioError(f"--data {pair!r}: expected KEY=VALUE, e.g. --data ml_task=regression")
        data[key] = value
    return data


def questions(template: Path) -> dict[str, dict[str, Any]]:
    """Return the questions declared in ``template``'s ``copier.yml`` (settings excluded)."""
    config = yaml.safe_load((template / "copier.yml").read_text(encoding="utf-8")) or {}
    return {k: v for k, v in config.items() if not k.startswith("_") and isinstance(v, dict)}


@contextlib.contextmanager
def _skip_git_index_sync(dest: Path) -> Iterator[None]:
    """Skip copier's per-file ``git config`` probe when rendering outside any git work tree.

    copier 9.19 runs one ``git`` subprocess per rendered file to keep executable
    bits in a *destination* git index when ``core.fileMode`` is false.  A fresh
    destination outside any work tree has no index, so the probe is a no-op
    that costs ~1.5 ms a file; ``andamio new`` skips it there and only there.
    """
    from copier import _main

    method = getattr(_main.Worker, "_sync_git_index_executable_bit", None)
    probe = dest if dest.exists() else dest.parent
    while not probe.exists():
        probe = probe.parent
    if method is None or gitrepo.inside_work_tree(probe):
        yield
        return
    _main.Worker._sync_git_index_executable_bit = lambda self, relpath, mode: None  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        _main.Worker._sync_git_index_executable_bit = method  # type: ignore[method-assign]


def _check_destination(dest: Path, overwrite: bool) -> None:
    if dest.exists() and not dest.is_dir():
        raise AndamioError(f"{dest} exists and is not a directory")
    if dest.is_dir() and any(dest.iterdir()) and not overwrite:
        raise AndamioError(
            f"{dest} is not empty; choose a new directory, or pass --overwrite to render over it"
        )


def new(
    dest: Path,
    *,
    data: Mapping[str, str] | None = None,
    defaults: bool = False,
    vcs_ref: str | None = None,
    overwrite: bool = False,
    template: str | Path | None = None,
    trust: bool = False,
    git: bool = True,
) -> NewResult:
    """Render the template into ``dest`` and (optionally) make the first git commit.

    ``template`` defaults to the template bundled with andamio, which is trusted;
    any other source must be trusted explicitly because it runs Jinja extensions.
    """
    import copier

    started = time.perf_counter()
    dest = dest.expanduser().resolve()
    _check_destination(dest, overwrite)
    src: str
    if template is None:
        src_path = bundled_template()
        # Render from a git source (andamio.source) so `copier update` finds this version later.
        default = default_source()
        src, trusted = default.url, True
        vcs_ref = vcs_ref or default.ref
        unknown = sorted(set(data or {}) - set(questions(src_path)))
        if unknown:
            raise AndamioError(
                f"unknown question(s) in --data: {', '.join(unknown)}; "
                f"known: {', '.join(sorted(questions(src_path)))}"
            )
    else:
        # Never record a relative source: copier would resolve it from the cwd later.
        candidate = Path(template).expanduser()
        src = str(candidate.resolve()) if candidate.exists() else str(template)
        trusted = trust
    with warnings.catch_warnings(), _skip_git_index_sync(dest):
        # A source checkout with uncommitted changes is expected while developing the template.
        warnings.simplefilter("ignore", copier.errors.DirtyLocalWarning)
        try:
            worker = copier.run_copy(
                src,
                str(dest),
                data=dict(data or {}),
                defaults=defaults,
                vcs_ref=vcs_ref,
                overwrite=overwrite,
                unsafe=trusted,
                quiet=True,
            )
        except copier.errors.UnsafeTemplateError as error:
            raise AndamioError(f"{error}\nIf you trust {src}, pass --trust.") from None
        except (ValueError, copier.errors.CopierError) as error:
            raise AndamioError(str(error)) from None
    answers = {k: v for k, v in worker.answers.combined.items() if not str(k).startswith("_")}
    files = sum(1 for p in dest.rglob("*") if p.is_file() and ".git" not in p.relative_to(dest).parts)
    commit = None
    # A project inside a larger repo (monorepo) joins it; an ignored folder gets its own repo.
    if git and not gitrepo.tracked_by_enclosing_repo(dest):
        message = f"Initial commit from andamio template ({src_path_label(src)})"
        commit = gitrepo.init_and_commit(dest, message)
    return NewResult(dest, dict(answers), files, commit, time.perf_counter() - started)


def src_path_label(src: str) -> str:
    """Short label of a template source for commit messages."""
    return "bundled" if src == str(bundled_template()) else src
