"""Big tables shaped like a generated project's demo data, for batch-scoring tests and benchmarks.

``demo_table`` resamples the rows of the project's demo dataset (``data.load_demo``, the
dataset its ``params.yaml`` names) with a little noise, so the table has exactly the demo's
feature columns, plus an ``id`` column. It runs this file as a script with the project's own
Python (the root venv has no numpy or pandas) and writes Parquet in row groups of
``ROW_GROUP`` rows, or CSV::

    .venv/bin/python tests/support/scoring_data.py --rows 1000000 --out big.parquet
"""

from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

ROW_GROUP = 131_072
CHUNK = 1_000_000  # rows generated at a time: bounded memory at any size


def demo_table(project: Path, out: Path, rows: int, *, seed: int = 0) -> Path:
    """Write ``rows`` demo-like rows to ``out`` (.parquet or .csv) with the project's Python."""
    subprocess.run(
        [str(project / ".venv" / "bin" / "python"), __file__, "--rows", str(rows), "--out", str(out),
         "--seed", str(seed)],
        cwd=project, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return out


def score(
    project: Path,
    source: Path,
    out: Path,
    *,
    check: bool = True,
    env: dict[str, str] | None = None,
    **make_vars: str,
) -> subprocess.CompletedProcess[str]:
    """Run ``make batch-score INPUT=source OUTPUT=out`` in ``project`` (``make_vars``: KEEP=...)."""
    from support.process import sh

    assignments = [f"{k}={v}" for k, v in make_vars.items()]
    return sh(
        project, "make", "batch-score", f"INPUT={source}", f"OUTPUT={out}", *assignments, check=check, env=env
    )


def facts(project: Path, *paths: Path) -> dict:
    """Read scored outputs with the project's pandas: shape, row ids, lineage, equality.

    ``ids_match`` (the carried ``id`` equals the row id) is ``None`` when there is no ``id``.
    """
    from support.process import sh

    code = """
import json, sys
import numpy as np, pandas as pd
def read(path):
    return pd.read_parquet(path).sort_values("row_id", kind="stable").reset_index(drop=True)
frames = [read(p) for p in sys.argv[1:]]
first = frames[0]
out = {
    "rows": [len(f) for f in frames],
    "columns": list(first.columns),
    "row_ids_are_positions": all(bool((f["row_id"].to_numpy() == np.arange(len(f))).all()) for f in frames),
    "ids_match": all(bool((f["id"] == f["row_id"]).all()) for f in frames) if "id" in first else None,
    "predictions": sorted({str(v) for f in frames for v in f["prediction"].unique()})[:50],
    "versions": sorted({str(v) for f in frames for v in f["model_version"].unique()}),
    "run_ids": sorted({str(v) for f in frames for v in f["run_id"].unique()}),
    "equal": all(first.equals(f) for f in frames[1:]),
    "differing": [c for f in frames[1:] for c in first.columns if not first[c].equals(f[c])],
}
print(json.dumps(out))
"""
    proc = sh(project, ".venv/bin/python", "-c", code, *map(str, paths))
    return json.loads(proc.stdout)


def _write(rows: int, out: Path, seed: int) -> None:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq
    import yaml

    params = yaml.safe_load(Path("params.yaml").read_text())["data"]
    package = next(p.parent.name for p in Path("src").glob("*/data.py"))
    data = __import__(f"{package}.data", fromlist=["load_demo"])
    demo = data.load_demo(params["dataset"], params.get("target", "target"))
    features = demo.drop(columns=[params.get("target", "target")])
    values = features.to_numpy(dtype=np.float64)
    scale = values.std(axis=0) * 0.05
    rng = np.random.default_rng(seed)
    writer = None
    try:
        for start in range(0, rows, CHUNK):
            n = min(CHUNK, rows - start)
            picked = values[rng.integers(0, len(values), size=n)]
            picked = picked + rng.normal(size=picked.shape) * scale
            frame = pd.DataFrame(picked, columns=features.columns)
            frame.insert(0, "id", np.arange(start, start + n, dtype=np.int64))
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if out.suffix == ".csv":
                writer = writer or pa_csv.CSVWriter(out, table.schema)
            else:
                writer = writer or pq.ParquetWriter(out, table.schema)
            if out.suffix == ".csv":
                writer.write_table(table)
            else:
                writer.write_table(table, row_group_size=ROW_GROUP)
    finally:
        if writer is not None:
            writer.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    _write(args.rows, args.out.resolve(), args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
