"""Hatch build hook: ship the template's git history in the wheel.

``copier update`` needs the version a project was rendered from and the new
one; a wheel only holds one folder.  This hook writes ``git bundle`` of the
checkout's ``HEAD`` and tags (local git only, no network) and adds it to the
wheel as ``andamio/_template/history.bundle``; ``andamio new`` unpacks it
(see ``andamio.source``).  Editable installs skip it: the checkout itself is the
template's git source there.  A build outside a git checkout (e.g. from an
sdist) ships no history and says so.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class HistoryBundleHook(BuildHookInterface):  # type: ignore[misc]
    """Add ``history.bundle`` to standard (non-editable) wheels."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Create the bundle under ``build/`` and force-include it."""
        if self.target_name != "wheel" or version == "editable":
            return
        root = Path(self.root)
        inside = subprocess.run(
            ["git", "rev-parse", "--is-inside-work-tree"], cwd=root, capture_output=True, text=True
        )
        if inside.returncode != 0 or inside.stdout.strip() != "true":
            self.app.display_warning("not a git checkout: the wheel ships no template history")
            return
        bundle = root / "build" / "history.bundle"
        bundle.parent.mkdir(parents=True, exist_ok=True)
        has_tags = bool(subprocess.run(["git", "tag"], cwd=root, capture_output=True, text=True).stdout)
        refs = ["HEAD", "--tags"] if has_tags else ["HEAD"]
        subprocess.run(["git", "bundle", "create", "-q", str(bundle), *refs], cwd=root, check=True)
        build_data["force_include"][str(bundle)] = "andamio/_template/history.bundle"
