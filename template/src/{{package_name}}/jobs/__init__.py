"""One job per pipeline stage; each takes :class:`Settings` and returns a result."""
