"""Copier migration: a file the template retired goes, unless the team had changed it.

``copier update`` removes a file the new template no longer renders, with whatever the
team had changed in it.  When its code moved elsewhere (the forge and GitOps scripts went
into the andamio ci-templates library, which the Makefile now calls), an unchanged copy
may go, but an edited one holds work the team must carry over.  This script runs after the
update (copier's ``_migrations``, working directory = the project) and, for every row of
``retired.yml`` whose version lies in (from, to]:

* reads the team's last committed version of the path from ``HEAD`` (copier only updates
  clean work trees);
* when it is one the template rendered (``pristine`` hashes), makes sure it is gone;
* otherwise writes it back where it was and says where the code lives now: nothing calls
  the kept copy any more, and the review of the update shows it.

Copier passes the versions as ``VERSION_PEP440_FROM`` / ``VERSION_PEP440_TO``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from packaging.version import InvalidVersion, Version

TABLE = Path(__file__).with_name("retired.yml")


@dataclass(frozen=True)
class Retired:
    """A retired path, where its code went, and the sha256 of every rendered version."""

    path: str
    now: str
    pristine: frozenset[str]


def load_retired(table: Path, since: Version, until: Version) -> list[Retired]:
    """Return the paths retired by releases in ``(since, until]``."""
    rows = yaml.safe_load(table.read_text(encoding="utf-8")) or []
    return [
        Retired(str(row["path"]), str(row["now"]), frozenset(map(str, row.get("pristine", []))))
        for row in rows
        if since < Version(str(row["version"])) <= until
    ]


def committed(path: str) -> bytes | None:
    """Return ``path`` (relative to the cwd) as committed in ``HEAD``, or ``None``."""
    proc = subprocess.run(["git", "show", f"HEAD:./{path}"], capture_output=True, check=False)
    return proc.stdout if proc.returncode == 0 else None


def settle(row: Retired, project: Path) -> str:
    """Remove or keep the team's copy of ``row.path``; return what was done."""
    mine = committed(row.path)
    target = project / row.path
    if mine is None:
        return f"{row.path}: not in your project, nothing to do"
    if hashlib.sha256(mine).hexdigest() in row.pristine:
        target.unlink(missing_ok=True)
        return f"{row.path}: removed (unchanged; the code is now in the {row.now})"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(mine)
    return (
        f"{row.path}: KEPT, you had changed it; nothing calls it any more: the code is now in "
        f"the {row.now}. Carry your change over (or propose it upstream), then delete the file."
    )


def main() -> int:
    """Settle the retired paths between the versions copier passes in the environment."""
    try:
        since = Version(os.environ["VERSION_PEP440_FROM"])
        until = Version(os.environ["VERSION_PEP440_TO"])
    except (KeyError, InvalidVersion) as error:
        print(f"keep_retired: no usable versions ({error}); nothing to do", file=sys.stderr)
        return 0
    project = Path.cwd()
    for row in load_retired(TABLE, since, until):
        print(f"keep_retired: {settle(row, project)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
