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
