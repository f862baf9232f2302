"""TEMPORARY shim: tests/test_update_wheel.py still imports ``from history import commit_all, git``.

The helpers live in ``support`` (support.process, support.history); the lead deletes this file
when test_update_wheel.py imports ``from support.process import commit_all, git``.
"""

from support.history import *  # noqa: F403
from support.process import commit_all, git  # noqa: F401
