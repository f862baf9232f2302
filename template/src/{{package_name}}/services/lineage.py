"""Lineage facts recorded with every run: git commit and DVC data hash."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from ..settings import Settings

UNKNOWN = "unknown"


def _is_pipeline_file(path: str) -> bool:
    """Files the pipeline itself rewrites while it runs: they do not make the code dirty."""
    return (
        path in {"dvc.lock", "docs/model_card.md"}
        or path.endswith(".gitignore")
        or path.startswith("reports/")
    )


def git_commit(root: Path) -> str:
    """Return the current git commit (``-dirty`` appended when tracked code has changes)."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return UNKNOWN
    changed = [line[3:] for line in status.splitlines() if len(line) > 3]
    dirty = any(not _is_pipeline_file(path) for path in changed)
    return f"{sha}-dirty" if dirty else sha


def dvc_output_hash(root: Path, stage: str, path: str) -> str:
    """Return the hash DVC recorded in ``dvc.lock`` for output ``path`` of ``stage``."""
    lock = root / "dvc.lock"
    if not lock.is_file():
        return UNKNOWN
    data = yaml.safe_load(lock.read_text(encoding="utf-8")) or {}
    for out in data.get("stages", {}).get(stage, {}).get("outs", []):
        if out.get("path") == path:
            return str(out.get("md5") or out.get("hash") or UNKNOWN)
    return UNKNOWN


def raw_data_hash(settings: Settings) -> str:
    """Return the DVC hash of the raw training data (demo: the scikit-learn release).

    ``file``: from ``<data.path>.dvc`` (``dvc add``); ``sql``: the ``ingest`` stage's snapshot
    in ``dvc.lock``.
    """
    data = settings.params.data
    if data.source == "demo":
        from importlib.metadata import version

        return f"scikit-learn=={version('scikit-learn')}:{data.dataset}"
    if data.source == "sql":
        snapshot = settings.snapshot_path.relative_to(settings.root).as_posix()
        return dvc_output_hash(settings.root, "ingest", snapshot)
    pointer = settings.root / f"{data.path}.dvc"
    if not pointer.is_file():
        return UNKNOWN
    outs = (yaml.safe_load(pointer.read_text(encoding="utf-8")) or {}).get("outs", [])
    for out in outs:
        return str(out.get("md5") or out.get("hash") or UNKNOWN)
    return UNKNOWN
