"""Copier migration: the team's version of a renamed file follows the rename.

``copier update`` alone treats a renamed template file as "old path deleted,
new path added": it removes the old path -- with the team's edits -- and
writes the new template file.  This script runs after the update (copier's
``_migrations``, working directory = the project) and, for every rename in
``renames.yml`` whose version lies in (from, to], writes the team's last
committed version of the old path to the new path.

Rules (see CHANGELOG "Versioning"):

* the old path is read from ``HEAD`` (copier only updates clean work trees);
* a file the team had deleted stays deleted under its new name too;
* a release that renames a file does not change its content, so the team's
  version is the whole truth and nothing is lost.

Copier passes the versions as ``VERSION_PEP440_FROM`` / ``VERSION_PEP440_TO``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from packaging.version import InvalidVersion, Version

TABLE = Path(__file__).with_name("renames.yml")


def load_renames(table: Path, since: Version, until: Version) -> list[tuple[str, str]]:
    """Return ``(old, new)`` paths renamed by releases in ``(since, until]``."""
    rows = yaml.safe_load(table.read_text(encoding="utf-8")) or []
    return [
        (str(row["from"]), str(row["to"])) for row in rows if since < Version(str(row["version"])) <= until
    ]


def committed(path: str) -> bytes | None:
    """Return ``path`` (relative to the cwd) as committed in ``HEAD``, or ``None``."""
    proc = subprocess.run(["git", "show", f"HEAD:./{path}"], capture_output=True, check=False)
    return proc.stdout if proc.returncode == 0 else None


def follow(old: str, new: str, project: Path) -> str:
    """Move the team's committed ``old`` to ``new``; return what was done."""
    mine = committed(old)
    target = project / new
    if mine is None:
        if committed(new) is None and target.exists():
            target.unlink()  # deleted by the team before the rename: not resurrected
            return f"{old} -> {new}: you had deleted {old}, {new} not created"
        return f"{old} -> {new}: nothing to move"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(mine)
    (project / old).unlink(missing_ok=True)
    return f"{old} -> {new}: your version moved"


def main() -> int:
    """Apply the renames between the versions copier passes in the environment."""
    try:
        since = Version(os.environ["VERSION_PEP440_FROM"])
        until = Version(os.environ["VERSION_PEP440_TO"])
    except (KeyError, InvalidVersion) as error:
        print(f"follow_renames: no usable versions ({error}); nothing to do", file=sys.stderr)
        return 0
    project = Path.cwd()
    for old, new in load_renames(TABLE, since, until):
        print(f"follow_renames: {follow(old, new, project)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
