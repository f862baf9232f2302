"""Errors andamio reports to the user (one clear message, exit code 2)."""


class AndamioError(Exception):
    """A problem the user can fix; the message says how."""


class DirtyTreeError(AndamioError):
    """The work tree has uncommitted changes; nothing was changed."""
