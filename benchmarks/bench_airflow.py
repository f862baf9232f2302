"""Benchmark: the orchestration overhead of Airflow, `airflow dags test` against `make pipeline`.

Renders the defaults with orchestrator=airflow, runs `make setup` and `airflow db migrate`
(SQLite, a temporary AIRFLOW_HOME; Airflow from build/tools/airflow, tests/support/airflow_tools.py)
once, not timed.  Then, alternating, each run from the same cold state (pipeline outputs,
DVC cache and the MLflow store removed, so both do every stage):
* make: `make pipeline` (dvc repro of all stages in one process);
* airflow: `airflow dags test <slug>_pipeline` (one task per stage, each `dvc repro <stage>`).
The overhead is the difference of the medians, in seconds (and per task), of wall and CPU time.

    python benchmarks/bench_airflow.py [--repeat 3] [--json build/bench/airflow.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from bench_pipeline import reset  # noqa: E402  (the same cold start: no outputs, no cache)
from support.airflow_tools import airflow_env, airflow_venv  # noqa: E402
from support.process import commit_all  # noqa: E402
from support.project import copy_template, render_project  # noqa: E402

STAGES = 4  # prepare, train, evaluate, register
PROJECT = "breast-cancer-classifier"  # the default answers


CPU_TIMES: list[float] = []  # CPU seconds (user + system) of each timed command's process tree


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sh(cwd: Path, *cmd: str, env: dict[str, str] | None = None) -> float:
    """Run a command, failing loudly; return its wall time (its CPU time goes to CPU_TIMES)."""
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    CPU_TIMES.append(_children_cpu() - cpu)
    return time.perf_counter() - start


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    airflow = str(airflow_venv() / "bin" / "airflow")
    with tempfile.TemporaryDirectory() as tmp:
        src = copy_template(Path(tmp) / "template")
        project = render_project(src, Path(tmp) / "project", {"orchestrator": "airflow"})
        commit_all(project)
        sh(project, "make", "setup")
        env = airflow_env(Path(tmp) / "airflow-home", project / "orchestration" / "airflow" / "dags")
        sh(project, airflow, "db", "migrate", env=env)
        dag_id = f"{PROJECT}_pipeline"
        make_runs, airflow_runs, make_cpu, airflow_cpu = [], [], [], []
        for _ in range(args.repeat):
            reset(project)
            make_runs.append(sh(project, "make", "pipeline"))
            make_cpu.append(CPU_TIMES[-1])
            reset(project)
            airflow_runs.append(sh(project, airflow, "dags", "test", dag_id, env=env))
            airflow_cpu.append(CPU_TIMES[-1])
    make_s, airflow_s = statistics.median(make_runs), statistics.median(airflow_runs)
    result = {
        "make_pipeline_runs_s": [round(t, 2) for t in make_runs],
        "airflow_dags_test_runs_s": [round(t, 2) for t in airflow_runs],
        "make_pipeline_median_s": round(make_s, 2),
        "airflow_dags_test_median_s": round(airflow_s, 2),
        "overhead_s": round(airflow_s - make_s, 2),
        "overhead_per_task_s": round((airflow_s - make_s) / STAGES, 2),
        # CPU seconds depend far less than wall time on what else the machine runs
        "make_pipeline_cpu_median_s": round(statistics.median(make_cpu), 2),
        "airflow_dags_test_cpu_median_s": round(statistics.median(airflow_cpu), 2),
        "overhead_cpu_s": round(statistics.median(airflow_cpu) - statistics.median(make_cpu), 2),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
