"""Tell whether projects are behind their template (like ``copier check-update``, but many at once).

The template's versions are looked up once per template source (one
``git ls-remote``), not once per project, so checking a whole fleet costs little
more than reading its answers files.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from andamio import outcome, source
from andamio.answers import Subproject, check_source, find_answers, read_subproject
from andamio.errors import AndamioError
from andamio.outcome import Status


@dataclass
class CheckResult:
    """The template status of one subproject."""

    project: str
    answers_file: str
    src: str | None
    current_version: str | None
    latest_version: str | None
    update_available: bool | None
    error: str | None = None

    @property
    def result(self) -> Status:
        """``current``, ``behind`` or ``error`` (andamio.outcome's vocabulary)."""
        if self.error:
            return Status.ERROR
        return Status.BEHIND if self.update_available else Status.CURRENT

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {**asdict(self), "result": str(self.result)}


def check_answers(answers_path: Path, prereleases: bool = False) -> CheckResult:
    """Check one answers file against the newest version of its template source."""
    try:
        sub = read_subproject(answers_path)
    except AndamioError as error:
        return CheckResult(str(answers_path.parent), answers_path.name, None, None, None, None, str(error))
    return check_subproject(sub, prereleases)


def check_subproject(sub: Subproject, prereleases: bool = False) -> CheckResult:
    """Check one subproject (its answers already read)."""
    result = CheckResult(str(sub.path), sub.answers_file, sub.src, sub.commit, None, None)
    try:
        src = check_source(sub)
        if prereleases:
            latest = source.latest_version(src, prereleases=True)
            result.latest_version = latest[0] if latest else None
        else:
            result.latest_version = source.target_version(src, None)
        if result.latest_version is None:
            raise AndamioError(f"{src} has no version tags; cannot tell whether {sub.path} is behind")
        result.update_available = source.is_behind(sub.commit, result.latest_version)
        if result.update_available is None:
            raise AndamioError(f"cannot compare versions {sub.commit!r} and {result.latest_version!r}")
    except AndamioError as error:
        result.error = str(error)
    return result


def check(paths: list[Path], prereleases: bool = False) -> list[CheckResult]:
    """Check every answers file in or under ``paths``."""
    results: list[CheckResult] = []
    for path in paths:
        path = path.expanduser().resolve()
        if not path.exists():
            results.append(CheckResult(str(path), "", None, None, None, None, f"{path} does not exist"))
            continue
        found = find_answers(path)
        if not found:
            results.append(CheckResult(str(path), "", None, None, None, None, "no copier answers file here"))
        results.extend(check_answers(a, prereleases) for a in found)
    return results


def exit_code(results: list[CheckResult]) -> int:
    """0 when all are current, 1 when any is behind, 2 when any could not be checked (andamio.outcome)."""
    return outcome.exit_code(r.result for r in results)
