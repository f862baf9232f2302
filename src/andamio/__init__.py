"""andamio: scaffold production ML repositories with Copier, keep them current."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("andamio")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
