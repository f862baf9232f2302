"""Render a new project from the template (copier, through andamio.engine, is the only engine)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from andamio import config, datafile, engine, gitrepo
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
    source: str = ""  # the template source copier rendered
    data_path: str | None = None  # new_from_data_file: where the project keeps the file


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
        unknown = sorted(set(data or {}) - set(config.questions(src_path)))
        if unknown:
            raise AndamioError(
                f"unknown question(s) in --data: {', '.join(unknown)}; "
                f"known: {', '.join(sorted(config.questions(src_path)))}"
            )
    else:
        # Never record a relative source: copier would resolve it from the cwd later.
        candidate = Path(template).expanduser()
        src = str(candidate.resolve()) if candidate.exists() else str(template)
        trusted = trust
    answers = engine.render(
        src, dest, data=data, defaults=defaults, vcs_ref=vcs_ref, overwrite=overwrite, trusted=trusted
    )
    files = sum(1 for p in dest.rglob("*") if p.is_file() and ".git" not in p.relative_to(dest).parts)
    commit = None
    # A project inside a larger repo (monorepo) joins it; an ignored folder gets its own repo.
    if git and not gitrepo.tracked_by_enclosing_repo(dest):
        commit = gitrepo.init_and_commit(dest, _initial_message(src))
    return NewResult(dest, dict(answers), files, commit, time.perf_counter() - started, source=src)


def new_from_data_file(
    dest: Path,
    data_file: datafile.DataFile,
    *,
    data: Mapping[str, str] | None = None,
    defaults: bool = False,
    vcs_ref: str | None = None,
    overwrite: bool = False,
    template: str | Path | None = None,
    trust: bool = False,
    git: bool = True,
    progress: Callable[[str], None] | None = None,
) -> NewResult:
    """Render a project that trains on ``data_file``, ready for ``make pipeline`` with no edit.

    ``data_file`` comes from :func:`andamio.datafile.inspect` and ``data`` from
    :func:`andamio.datafile.answers`; the other arguments are :func:`new`'s (``overwrite``
    is refused). After rendering, the file is copied to ``data/raw/``,
    ``make setup`` and ``make schema`` run in the project, ``dvc add`` tracks the file and
    the first commit holds it all. If a step fails, ``dest`` is removed (emptied, when it
    existed) and the error carries the step's last output lines. ``progress`` is called
    with the name of each step as it starts.
    """
    started = time.perf_counter()
    step = progress or (lambda label: None)
    dest = dest.expanduser().resolve()
    if overwrite:
        raise AndamioError(
            "--data-file renders into a new or empty directory (it removes what it wrote when a "
            "step fails); drop --overwrite"
        )
    if not git and not gitrepo.inside_work_tree(dest):
        raise AndamioError("--data-file tracks the file with DVC, which needs git; drop --no-git")
    _check_destination(dest, overwrite=False)
    with _undo_on_failure(dest):
        step("Rendering the template")
        rendered = new(
            dest, data=data, defaults=defaults, vcs_ref=vcs_ref, template=template, trust=trust, git=False
        )
        # The task was decided for the user only when neither --data nor a prompt gave it.
        guessed = defaults and "ml_task" not in (data or {})
        _add_data_file(dest, data_file, str(rendered.answers["ml_task"]), guessed, step)
        # A project inside a larger repo (monorepo) joins it; an ignored folder gets its own repo.
        own_repo = git and not gitrepo.tracked_by_enclosing_repo(dest)
        if own_repo:
            gitrepo.git(dest, "init", "--quiet", "--initial-branch=main")
        step(f"dvc add {data_file.data_path}")
        _run(dest, ".venv/bin/dvc", "add", data_file.data_path)
        commit = None
        if own_repo:
            step("Making the first commit")
            commit = gitrepo.commit_all(dest, _initial_message(rendered.source))
    seconds = time.perf_counter() - started
    return replace(rendered, commit=commit, seconds=seconds, data_path=data_file.data_path)


def _add_data_file(
    dest: Path, data: datafile.DataFile, ml_task: str, guessed: bool, step: Callable[[str], None]
) -> None:
    """Copy the data file into the project, set up its environment and infer its contract."""
    step(f"Copying {data.path.name} to {data.data_path}")
    copy = dest / data.data_path
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(data.path, copy)
    step("make setup: .venv with the project's pinned dependencies")
    _run(dest, "make", "setup")
    if data.target is None:
        # Parquet, and no pyarrow next to andamio: the project's environment reads it now.
        step(f"Checking {data.data_path} with the project's pyarrow")
        python = dest / ".venv" / "bin" / "python"
        datafile.probe_parquet(data.path, data.target_name, python, ml_task, guessed=guessed)
    step("make schema: data/contract.yaml from the data")
    _run(dest, "make", "schema")


#: Output lines of a failed project step that its error shows.
_TAIL_LINES = 20


def _run(cwd: Path, *cmd: str) -> None:
    """Run a step of the generated project; raise with its last output lines when it fails."""
    # An enclosing make's flags (-n, -j, -k) are not meant for the project's make.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
        )
    except FileNotFoundError:
        raise AndamioError(f"{cmd[0]} is not installed; --data-file runs `make` in the project") from None
    if proc.returncode != 0:
        tail = "\n".join(f"  {line}" for line in proc.stdout.rstrip().splitlines()[-_TAIL_LINES:])
        raise AndamioError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}) in {cwd}:\n{tail}")


@contextlib.contextmanager
def _undo_on_failure(dest: Path) -> Iterator[None]:
    """Leave ``dest`` as it was (absent, or empty) when the body raises."""
    existed = dest.exists()
    created = dest  # the outermost folder this call creates
    while not created.parent.exists():
        created = created.parent
    try:
        yield
    except BaseException as error:
        if existed:
            for child in dest.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        else:
            shutil.rmtree(created, ignore_errors=True)
        if isinstance(error, AndamioError):
            undone = "emptied" if existed else "removed"
            raise AndamioError(f"{error}\n{dest} was {undone}: nothing was kept.") from None
        raise


def _initial_message(src: str) -> str:
    return f"Initial commit from andamio template ({src_path_label(src)})"


def src_path_label(src: str) -> str:
    """Short label of a template source for commit messages."""
    return "bundled" if src == str(bundled_template()) else src
