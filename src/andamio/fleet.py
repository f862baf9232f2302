"""Check or update many repositories at once.

``ROOT_OR_LIST`` is a folder (every answers file below it) or a text file with
one repository or project path per line (``#`` comments allowed).  Work runs in
parallel with a bounded number of workers:

* ``status``: threads; each template source's versions are looked up once;
  one ``git status`` per repository tells which are dirty.
* ``update``: processes (copier changes the process's working directory, so
  it cannot run in threads); one repository per task, its subprojects one
  after another on one branch; dirty repositories are skipped, untouched.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from andamio import gitrepo, outcome, source
from andamio.answers import find_answers, read_subproject, walk_answers
from andamio.check import CheckResult, check_answers, check_subproject
from andamio.errors import AndamioError, DirtyTreeError
from andamio.outcome import Status

Progress = Callable[[int, int], None]


@dataclass
class FleetRow:
    """One subproject in the fleet report."""

    repo: str
    project: str  # relative to the repository root ("." for the root)
    answers_file: str
    from_version: str | None = None
    to_version: str | None = None
    result: str = ""  # an andamio.outcome.Status: current | behind | updated | conflicts | skipped | error
    conflicts: list[str] = field(default_factory=list)
    dirty: bool = False
    branch: str | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)


def default_workers() -> int:
    """Bounded parallelism: twice the CPUs, at most 16."""
    return max(1, min(16, 2 * (os.cpu_count() or 1)))


def discover(root_or_list: Path) -> list[Path]:
    """Return every answers file under a folder, or in/under the paths a list file names."""
    root_or_list = root_or_list.expanduser().resolve()
    if root_or_list.is_dir():
        return list(walk_answers(root_or_list))
    if not root_or_list.is_file():
        raise AndamioError(f"{root_or_list} is neither a folder nor a list file")
    found: list[Path] = []
    base = root_or_list.parent
    for line in root_or_list.read_text(encoding="utf-8").splitlines():
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        path = (base / entry).expanduser().resolve()
        if not path.exists():
            raise AndamioError(f"{root_or_list}: {entry} does not exist")
        found.extend(find_answers(path))
    return list(dict.fromkeys(found))


def _toplevel(answers: Path) -> Path | None:
    return gitrepo.find_toplevel(answers.parent)


def _group(answers: Iterable[Path], pool: Executor) -> dict[Path | None, list[Path]]:
    answers = list(answers)
    groups: dict[Path | None, list[Path]] = {}
    for path, top in zip(answers, pool.map(_toplevel, answers), strict=True):
        groups.setdefault(top, []).append(path)
    return groups


def _rel(path: Path, top: Path | None) -> str:
    if top is None:
        return str(path)
    return path.relative_to(top).as_posix() or "."


def status(
    root_or_list: Path, workers: int | None = None, progress: Progress | None = None
) -> list[FleetRow]:
    """Check every subproject found; mark repositories with uncommitted changes."""
    answers = discover(root_or_list)
    workers = workers or default_workers()
    rows: list[FleetRow] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        groups = _group(answers, pool)
        # One version lookup per template source, before fanning out.
        subs = dict(zip(answers, pool.map(_safe_read, answers), strict=True))
        list(pool.map(_safe_tags, {s.src for s in subs.values() if s is not None and s.src}))
        tops = [t for t in groups if t is not None]
        dirty = dict(zip(tops, pool.map(lambda t: bool(gitrepo.dirty_paths(t)), tops), strict=True))
        futures = {pool.submit(_check, a, subs[a]): (top, a) for top, group in groups.items() for a in group}
        for done, future in enumerate(as_completed(futures), start=1):
            top, path = futures[future]
            checked = future.result()
            row = FleetRow(
                repo=str(top) if top else str(path.parent),
                project=_rel(path.parent, top),
                answers_file=path.name,
                from_version=checked.current_version,
                to_version=checked.latest_version,
                dirty=dirty.get(top, False) if top else False,
            )
            row.result, row.message = checked.result, checked.error or ""
            if top is None:
                row.result, row.message = Status.ERROR, "not in a git repository"
            rows.append(row)
            if progress:
                progress(done, len(futures))
    return sorted(rows, key=lambda r: (r.repo, r.project, r.answers_file))


def _check(path: Path, sub: Any) -> CheckResult:
    return check_answers(path) if sub is None else check_subproject(sub)


def _safe_read(path: Path) -> Any:
    try:
        return read_subproject(path)
    except AndamioError:
        return None


def _safe_tags(src: str) -> None:
    with contextlib.suppress(AndamioError):  # reported per project by check_answers
        source.refresh(src)
        source.remote_tags(src)


def _update_repo(top: str, paths: list[str], trust: bool, branch: str | None) -> list[dict[str, Any]]:
    """Worker: update one repository (runs in a child process)."""
    from andamio import update

    rows = []
    target = Path(paths[0]).parent if len(paths) == 1 else Path(top)
    try:
        results = update.update(target, trust=trust, branch=branch)
    except DirtyTreeError as error:
        return [
            FleetRow(
                top,
                _rel(Path(p).parent, Path(top)),
                Path(p).name,
                result=Status.SKIPPED,
                dirty=True,
                message=str(error).splitlines()[0],
            ).to_dict()
            for p in paths
        ]
    except AndamioError as error:
        return [
            FleetRow(
                top, _rel(Path(p).parent, Path(top)), Path(p).name, result=Status.ERROR, message=str(error)
            ).to_dict()
            for p in paths
        ]
    for res in results:
        rows.append(
            FleetRow(
                repo=top,
                project=_rel(Path(res.project), Path(top)),
                answers_file=res.answers_file,
                from_version=res.from_version,
                to_version=res.to_version,
                result=res.result,
                conflicts=res.conflicts,
                branch=res.branch,
                message=res.message,
            ).to_dict()
        )
    return rows


def update(
    root_or_list: Path,
    workers: int | None = None,
    trust: bool = False,
    branch: str | None = None,
    progress: Progress | None = None,
) -> list[FleetRow]:
    """Update every repository found, in parallel; dirty ones are skipped."""
    answers = discover(root_or_list)
    workers = workers or default_workers()
    with ThreadPoolExecutor(max_workers=workers) as threads:
        groups = _group(answers, threads)
    rows = [
        FleetRow(str(p.parent), str(p.parent), p.name, result=Status.ERROR, message="not in a git repository")
        for p in groups.pop(None, [])
    ]
    context = multiprocessing.get_context("spawn")  # no fork of a threaded parent
    with ProcessPoolExecutor(max_workers=max(1, min(workers, len(groups))), mp_context=context) as pool:
        futures = [
            pool.submit(_update_repo, str(top), [str(p) for p in group], trust, branch)
            for top, group in groups.items()
            if top is not None
        ]
        for done, future in enumerate(as_completed(futures), start=1):
            rows.extend(FleetRow(**row) for row in future.result())
            if progress:
                progress(done, len(futures))
    return sorted(rows, key=lambda r: (r.repo, r.project, r.answers_file))


def exit_code(rows: list[FleetRow]) -> int:
    """0 all current or updated, 1 any behind or with conflicts, 2 any error (andamio.outcome)."""
    return outcome.exit_code(r.result for r in rows)
