"""Allow ``python -m andamio``."""

from andamio.cli import app

app(prog_name="andamio")
