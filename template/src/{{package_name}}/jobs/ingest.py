"""Stage ``ingest`` (SQL source): snapshot the training query to Parquet, tracked by DVC.

Every later stage reads the snapshot, so a pipeline run is reproducible without the
database; ``make ingest`` takes a new snapshot.
"""

from __future__ import annotations

from pathlib import Path

from ..data import read_sql
from ..settings import Settings


def run(settings: Settings) -> Path:
    """Run the query and write ``data/raw/snapshot.parquet`` (temporary name, then rename)."""
    frame = read_sql(settings.params.data)
    out = settings.snapshot_path
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".parquet.partial")
    frame.to_parquet(partial, index=False)
    partial.replace(out)
    where = out.relative_to(settings.root)
    print(f"ingest: {len(frame)} rows x {frame.shape[1]} columns -> {where}")
    return out
