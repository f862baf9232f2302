"""Where the template comes from.

The wheel bundles ``copier.yml``, ``template/`` and ``hooks/`` under
``andamio/_template`` so that ``andamio new`` works offline.  In a source
checkout (editable install) the repository root is the template.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def bundled_template() -> Path:
    """Return the directory holding ``copier.yml`` shipped with this installation."""
    candidates = (_PACKAGE_DIR / "_template", _PACKAGE_DIR.parents[1])
    for candidate in candidates:
        if (candidate / "copier.yml").is_file() and (candidate / "template").is_dir():
            return candidate
    raise FileNotFoundError(
        "andamio's template is missing from this installation "
        f"(looked in {', '.join(str(c) for c in candidates)}); reinstall andamio"
    )
