"""Benchmark (b): `make pipeline` of a generated project, cold and no-op.

Renders the defaults, runs `make setup` once (not timed), then times
* cold: all pipeline outputs, DVC cache and the MLflow store removed, `make pipeline`;
* no-op: `make pipeline` again with nothing changed.
Targets on 2 cores: cold <= 20 s, no-op <= 1.5 s.

    python benchmarks/bench_pipeline.py [--cold 3] [--noop 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import copier

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.project import copy_template  # noqa: E402

OUTPUTS = ("data/prepared", "models/bundle", "reports", "dvc.lock", "mlflow.db", "mlruns", "mlartifacts")


def sh(cwd: Path, *cmd: str) -> None:
    """Run a command, failing loudly."""
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)


def reset(project: Path) -> None:
    """Remove every pipeline output, the DVC cache and the local MLflow store."""
    for rel in (*OUTPUTS, ".dvc/cache", ".dvc/tmp"):
        path = project / rel
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def timed(project: Path) -> float:
    """Wall time of one `make pipeline`."""
    start = time.perf_counter()
    sh(project, "make", "pipeline")
    return time.perf_counter() - start


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", type=int, default=3)
    parser.add_argument("--noop", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    with tempfile.TemporaryDirectory() as tmp:
        src = copy_template(Path(tmp) / "template")
        project = Path(tmp) / "project"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            copier.run_copy(str(src), str(project), defaults=True, unsafe=True, quiet=True)
        sh(project, "git", "init", "-q", "-b", "main")
        sh(project, "git", "add", "-A")
        sh(project, "git", "commit", "-q", "-m", "initial")
        setup_start = time.perf_counter()
        sh(project, "make", "setup")
        setup = time.perf_counter() - setup_start
        cold, noop = [], []
        for _ in range(args.cold):
            reset(project)
            cold.append(timed(project))
            for _ in range(args.noop if not noop else 0):
                noop.append(timed(project))
    result = {
        "setup_s": round(setup, 2),
        "cold_runs_s": [round(t, 2) for t in cold],
        "cold_median_s": round(statistics.median(cold), 2),
        "noop_runs_s": [round(t, 3) for t in noop],
        "noop_median_s": round(statistics.median(noop), 3),
        "targets": {"cold_s": 20.0, "noop_s": 1.5},
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
