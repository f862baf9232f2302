"""TEMPORARY shim: test_update_wheel.py and test_gitops_requests.py still import ``from history``.

The helpers live in ``support`` (support.history, support.process); the lead deletes this file
when those two import ``from support.history`` / ``from support.process`` instead.
"""

from support.history import *  # noqa: F403
from support.history import DROPPED, NEW, NEW_TEST, OLD, OLD_TEST, build_history, render_at  # noqa: F401
from support.process import commit_all, git  # noqa: F401
