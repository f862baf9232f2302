"""One status vocabulary and one exit-code table for every andamio command.

Statuses (the ``result`` of a project in ``check``, ``update``, ``adopt`` and ``fleet``
reports, text and JSON alike):

=============  ==============================================================
``current``    on the newest template version (nothing to do)
``behind``     a newer template version exists (``check``, ``fleet status``)
``updated``    updated cleanly, committed on a new branch
``conflicts``  updated or adopted, with conflict markers left for a human
``skipped``    not touched because its repository has uncommitted changes
``error``      could not be checked or changed; the message says why
=============  ==============================================================

Exit codes (README, "Exit codes"):

===  ==========================================================================
0    done: every project is current or updated cleanly, or the project was created
1    done, and something is left for you: a project is behind, or has conflicts
2    error: wrong arguments, or a project could not be checked, created or changed
130  interrupted
===  ==========================================================================

2 for errors matches the command-line parser's own usage errors, so a script can
tell "look at this" (1) from "this failed" (2) for every command.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum, StrEnum


class Status(StrEnum):
    """What andamio found or did for one project."""

    CURRENT = "current"
    BEHIND = "behind"
    UPDATED = "updated"
    CONFLICTS = "conflicts"
    SKIPPED = "skipped"
    ERROR = "error"


class Exit(IntEnum):
    """Exit codes shared by every command."""

    OK = 0
    ATTENTION = 1
    ERROR = 2
    INTERRUPTED = 130


#: Statuses that leave work for a human (exit 1 unless an error makes it 2).
NEEDS_ATTENTION = frozenset({Status.BEHIND, Status.CONFLICTS})


def exit_code(statuses: Iterable[str]) -> Exit:
    """Return the exit code of a run whose projects ended with ``statuses``."""
    seen = {Status(s) for s in statuses}
    if Status.ERROR in seen:
        return Exit.ERROR
    if seen & NEEDS_ATTENTION:
        return Exit.ATTENTION
    return Exit.OK
