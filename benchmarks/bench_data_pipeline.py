"""Benchmark: `make pipeline` on a team's own mixed-type table against a bare script (the floor).

Generates a mixed table (default 1,000,000 rows x 30 columns: 20 numeric, 8 categorical,
2 boolean, 5 % missing; tests/support/datagen.py) as Parquet (or CSV), renders a project on it
(data_source=file, the default real-data model), runs `make setup` and `make schema` (not
timed), then measures in the same run
* pipeline: `make pipeline` cold (pipeline outputs, DVC cache and state, MLflow store removed);
* floor: a bare script in the project's venv that reads the same file, splits it as prepare
  does, fits the same Pipeline (the project's ``features.build_model`` on its contract) and
  computes the same test metrics.
Each gets its wall time, the peak RSS of its largest process (wait4's ru_maxrss, as
getrusage(RUSAGE_CHILDREN) reports it) and the peak RSS of its whole process tree (sampled
from /proc). Per pipeline stage: wall time (from dvc's "Running stage" lines) and peak RSS
of the stage's process. Target: pipeline <= 1.5x the floor's time and peak memory.

    python benchmarks/bench_data_pipeline.py [--rows 1000000] [--format parquet|csv]
        [--repeat 1] [--json build/bench/data_pipeline.json] [--keep DIR [--prepare-only | --reuse]]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
_OMP_THREADS = os.environ.get("OMP_NUM_THREADS")

from support.project import copy_template  # noqa: E402

# tests/conftest.py pins OpenMP to one thread for pytest-xdist; a team's run uses every core.
if _OMP_THREADS is None:
    os.environ.pop("OMP_NUM_THREADS", None)

TARGETS = {"time_ratio": 1.5, "memory_ratio": 1.5}
OUTPUTS = (
    "data/prepared",
    "data/raw/snapshot.parquet",
    "models/bundle",
    "reports",
    "dvc.lock",
    "mlflow.db",
    "mlruns",
    "mlartifacts",
    ".dvc/cache",
    ".dvc/tmp",
)
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")

# The floor: what a data scientist's one-file script does with the same data and model.
BARE = """
import json, sys, time
from pathlib import Path
import numpy as np
import pandas as pd
import yaml
from sklearn import metrics as skm
from sklearn.model_selection import train_test_split
from {pkg} import contract as contract_module
from {pkg}.features import build_model

phases = {{}}
clock = time.perf_counter()


def phase(name):
    global clock
    now = time.perf_counter()
    phases[name] = round(now - clock, 2)
    clock = now


params = yaml.safe_load(open("params.yaml"))
contract = contract_module.load(Path("data/contract.yaml"))
path = sys.argv[1]
frame = pd.read_parquet(path) if path.endswith((".parquet", ".pq")) else pd.read_csv(path, engine="pyarrow")
target = contract.target.name
task = "classification" if contract.target.kind == "categorical" else "regression"
train, test = train_test_split(
    frame, test_size=params["prepare"]["test_size"], random_state=params["prepare"]["random_state"],
    stratify=frame[target] if task == "classification" else None,
)
del frame
phase("read+split")
x_train, y_train = contract_module.split_target(train, contract)
x_test, y_test = contract_module.split_target(test, contract)
estimator = params["train"]["estimator"]
model = build_model(task, estimator, dict(params["train"].get(estimator) or {{}}),
                    params["train"]["random_state"], contract)
phase("coerce")
model.fit(x_train, y_train)
phase("fit")
predicted = model.predict(x_test)
if task == "classification":
    proba = model.predict_proba(x_test)
    if proba.shape[1] > 2:
        auc = skm.roc_auc_score(y_test, proba, multi_class="ovr", labels=list(model.classes_))
    else:
        auc = skm.roc_auc_score(y_test == model.classes_[1], proba[:, 1])
    result = {{"accuracy": skm.accuracy_score(y_test, predicted),
              "f1": skm.f1_score(y_test, predicted, average="macro"), "roc_auc": auc}}
else:
    result = {{"r2": skm.r2_score(y_test, predicted),
              "rmse": float(np.sqrt(skm.mean_squared_error(y_test, predicted)))}}
phase("predict+metrics")
print(json.dumps({{"metrics": {{k: round(float(v), 6) for k, v in result.items()}}, "phases": phases}}))
"""


def sh(cwd: Path, *cmd: str, env: dict[str, str] | None = None) -> str:
    """Run a command, failing loudly with its output."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise SystemExit(
            f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc.stdout


def _pss(pid: int) -> int:
    """Return the proportional set size of ``pid`` in bytes.

    Shared pages are split among their users, so a tree's sum counts a page once (RSS would
    count a forked child's copy-on-write pages twice).
    """
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


class TreeSampler(threading.Thread):
    """Sample the memory of a process and all its descendants from /proc every ``interval`` s.

    Per process: peak RSS (as ru_maxrss counts it). Whole tree: peak sum of PSS.
    """

    def __init__(self, root: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.peak_tree = 0
        self.per_process: dict[str, int] = {}  # command line -> peak RSS
        self.cpu: dict[str, float] = {}  # command line -> CPU seconds (user + sys) last seen
        self.done = threading.Event()

    def _snapshot(self) -> None:
        children: dict[int, list[int]] = {}
        ticks: dict[int, int] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            ticks[int(entry.name)] = int(fields[11]) + int(fields[12])  # utime + stime
        total, stack = 0, [self.root]
        while stack:
            pid = stack.pop()
            stack.extend(children.get(pid, ()))
            try:
                rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                total += _pss(pid)
            except (OSError, IndexError, ValueError):
                continue
            key = cmdline[:160]
            self.per_process[key] = max(self.per_process.get(key, 0), rss)
            self.cpu[key] = max(self.cpu.get(key, 0.0), ticks.get(pid, 0) / TICKS)
        self.peak_tree = max(self.peak_tree, total)

    def run(self) -> None:
        """Sample until ``done`` is set."""
        while not self.done.is_set():
            self._snapshot()
            self.done.wait(self.interval)


def measure(cwd: Path, cmd: list[str]) -> dict[str, Any]:
    """Run ``cmd`` and return its wall time and peak memory.

    Peak RSS of its largest process and of its whole process tree, the per-process peaks,
    and the output lines with their time offsets.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = TreeSampler(proc.pid)
    sampler.start()
    lines: list[tuple[float, str]] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append((time.perf_counter() - start, line.rstrip("\n")))
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    sampler.done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(
            f"`{' '.join(cmd)}` failed ({proc.returncode}):\n" + "\n".join(t for _, t in lines[-60:])
        )
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,  # the process and every descendant it waited for
        "max_process_rss_mb": usage.ru_maxrss / 1024,  # Linux: KiB
        "tree_pss_mb": sampler.peak_tree / 2**20,
        "per_process_mb": {k: v / 2**20 for k, v in sampler.per_process.items()},
        "per_process_cpu_s": dict(sampler.cpu),
        "lines": lines,
    }


def stage_times(lines: list[tuple[float, str]], wall: float) -> dict[str, float]:
    """Wall time of each stage: from its "Running stage" line to the next stage's (or the end)."""
    starts = [(t, m.group(1)) for t, text in lines if (m := re.search(r"Running stage '([^']+)'", text))]
    times = {}
    for i, (t, name) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else wall
        times[name] = round(end - t, 2)
    if starts:
        times["(dvc start-up)"] = round(starts[0][0], 2)
    return times


def stage_peaks(per_process: dict[str, float], package: str) -> dict[str, float]:
    """Largest value (peak RSS, CPU seconds) of each stage's own process (``python -m <pkg> <stage>``)."""
    peaks: dict[str, float] = {}
    for cmdline, mb in per_process.items():
        match = re.search(rf"-m {package} (\w+)", cmdline)
        name = match.group(1) if match else ("dvc" if re.search(r"\bdvc repro\b", cmdline) else None)
        if name:
            peaks[name] = round(max(peaks.get(name, 0.0), mb), 1)
    return peaks


def reset(project: Path) -> None:
    """Remove every pipeline output, the DVC cache and state, and the local MLflow store."""
    for rel in OUTPUTS:
        path = project / rel
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def prepare_project(work: Path, rows: int, fmt: str, seed: int) -> tuple[Path, Path, str, dict[str, float]]:
    """Render the project, generate its data, `make setup` and `make schema`."""
    import copier

    src = copy_template(work / "template")
    project = work / "project"
    data_rel = f"data/raw/data.{fmt}"
    answers = {
        "project_name": "Bench Data",
        "data_source": "file",
        "data_path": data_rel,
        "target": "label",
        "ml_task": "classification",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_copy(str(src), str(project), data=answers, defaults=True, unsafe=True, quiet=True)
    package = _answers(project)["package_name"]
    timings: dict[str, float] = {}
    sh(project, "git", "init", "-q", "-b", "main")
    start = time.perf_counter()
    sh(project, "make", "setup")
    timings["setup_s"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    data = project / data_rel
    sh(
        project,
        str(project / ".venv" / "bin" / "python"),
        str(ROOT / "tests" / "support" / "datagen.py"),
        "--rows",
        str(rows),
        "--out",
        str(data),
        "--seed",
        str(seed),
        "--numeric",
        "20",
        "--categorical",
        "8",
        "--boolean",
        "2",
        "--missing",
        "0.05",
    )
    timings["generate_s"] = round(time.perf_counter() - start, 1)
    timings["data_mb"] = round(data.stat().st_size / 2**20, 1)
    start = time.perf_counter()
    if not (project / "data" / "contract.yaml").exists():
        sh(project, "make", "schema")
    timings["schema_s"] = round(time.perf_counter() - start, 1)
    # What `andamio new --data-file` does: DVC tracks the raw file, git the rest.
    if not (project / f"{data_rel}.dvc").exists():
        sh(project, ".venv/bin/dvc", "add", "-q", data_rel)
    sh(project, "git", "add", "-A")
    sh(project, "git", "commit", "-q", "-m", "initial")
    return project, data, package, timings


def yaml_load(path: Path) -> Any:
    """Read a YAML file (PyYAML comes with andamio)."""
    import yaml

    return yaml.safe_load(path.read_text())


def _answers(project: Path) -> dict[str, Any]:
    return dict(yaml_load(project / ".copier-answers.yml"))


def main() -> int:
    """Run the benchmark, print a table and write the JSON figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument(
        "--repeat", type=int, default=1, help="measure pipeline and floor this many times each"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, help="OMP_NUM_THREADS for both sides (default: unset, all cores)"
    )
    parser.add_argument("--json", type=Path, default=ROOT / "build" / "bench" / "data_pipeline.json")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temp folder)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --keep: measure the project already there (no render/setup)",
    )
    parser.add_argument(
        "--prepare-only", action="store_true", help="with --keep: render, set up and generate, then stop"
    )
    args = parser.parse_args()
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)

    work = args.keep or Path(tempfile.mkdtemp(prefix="andamio-bench-data-"))
    reuse = bool(args.keep and args.reuse and (work / "project" / ".venv").is_dir())
    if args.keep and work.exists() and not reuse:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    try:
        if reuse:
            project = work / "project"
            package = _answers(project)["package_name"]
            data = project / yaml_load(project / "params.yaml")["data"]["path"]
            timings = {"reused": True}
        else:
            project, data, package, timings = prepare_project(work, args.rows, args.format, args.seed)
            if args.keep and args.prepare_only:
                print(json.dumps(timings))
                return 0
        bare = work / "bare.py"
        bare.write_text(BARE.format(pkg=package))
        python = str(project / ".venv" / "bin" / "python")
        pipelines, floors = [], []
        for _ in range(args.repeat):
            floors.append(measure(project, [python, str(bare), str(data)]))
            reset(project)
            pipelines.append(measure(project, ["make", "pipeline"]))
        floor_out = json.loads(floors[-1]["lines"][-1][1])
        pipeline_metrics = json.loads((project / "reports" / "metrics.json").read_text())
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    def med(runs: list[dict[str, Any]], key: str) -> float:
        return round(statistics.median(r[key] for r in runs), 2)

    last = pipelines[-1]
    result: dict[str, Any] = {
        "rows": args.rows,
        "columns": {"numeric": 20, "categorical": 8, "boolean": 2, "target": 1, "missing": 0.05},
        "format": args.format,
        "cpus": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "prepare": timings,
        "pipeline": {k: med(pipelines, k) for k in ("wall_s", "cpu_s", "max_process_rss_mb", "tree_pss_mb")},
        "floor": {k: med(floors, k) for k in ("wall_s", "cpu_s", "max_process_rss_mb", "tree_pss_mb")},
        "runs": {
            "pipeline_wall_s": [round(r["wall_s"], 2) for r in pipelines],
            "floor_wall_s": [round(r["wall_s"], 2) for r in floors],
            "pipeline_cpu_s": [round(r["cpu_s"], 2) for r in pipelines],
            "floor_cpu_s": [round(r["cpu_s"], 2) for r in floors],
        },
        "stages_s": stage_times(last["lines"], last["wall_s"]),
        "stages_peak_rss_mb": stage_peaks(last["per_process_mb"], package),
        # sampled every 0.1 s from /proc: a stage's CPU time to within that
        "stages_cpu_s": stage_peaks(last["per_process_cpu_s"], package),
        "floor_phases_s": floor_out["phases"],
        "metrics": {"pipeline": pipeline_metrics, "floor": floor_out["metrics"]},
        "load_average": os.getloadavg(),
        "targets": TARGETS,
    }
    result["ratios"] = {
        "time": round(result["pipeline"]["wall_s"] / result["floor"]["wall_s"], 2),
        "cpu": round(result["pipeline"]["cpu_s"] / result["floor"]["cpu_s"], 2),
        "memory_max_process": round(
            result["pipeline"]["max_process_rss_mb"] / result["floor"]["max_process_rss_mb"], 2
        ),
        "memory_tree": round(result["pipeline"]["tree_pss_mb"] / result["floor"]["tree_pss_mb"], 2),
    }
    result["passed"] = (
        result["ratios"]["time"] <= TARGETS["time_ratio"]
        and result["ratios"]["memory_max_process"] <= TARGETS["memory_ratio"]
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"\nwrote {args.json}")
    return 0


def print_table(result: dict[str, Any]) -> None:
    """Print the figures as a small table."""
    p, f, r = result["pipeline"], result["floor"], result["ratios"]
    print(
        f"data pipeline benchmark: {result['rows']:,} rows x 30 columns ({result['format']}),"
        f" {result['cpus']} CPUs"
    )
    print(f"{'':28}{'pipeline':>12}{'floor':>12}{'ratio':>8}{'target':>8}")
    print(f"{'wall time (s)':28}{p['wall_s']:>12.2f}{f['wall_s']:>12.2f}{r['time']:>8.2f}{'<= 1.5':>8}")
    print(f"{'CPU time (s)':28}{p['cpu_s']:>12.2f}{f['cpu_s']:>12.2f}{r['cpu']:>8.2f}")
    print(
        f"{'peak RSS, max process (MB)':28}{p['max_process_rss_mb']:>12.0f}{f['max_process_rss_mb']:>12.0f}"
        f"{r['memory_max_process']:>8.2f}{'<= 1.5':>8}"
    )
    print(
        f"{'peak PSS, process tree (MB)':28}{p['tree_pss_mb']:>12.0f}{f['tree_pss_mb']:>12.0f}"
        f"{r['memory_tree']:>8.2f}"
    )
    print("stages (s):     " + ", ".join(f"{k} {v}" for k, v in result["stages_s"].items()))
    print("stage peak RSS (MB): " + ", ".join(f"{k} {v}" for k, v in result["stages_peak_rss_mb"].items()))
    print("stage CPU (s, sampled): " + ", ".join(f"{k} {v}" for k, v in result["stages_cpu_s"].items()))
    print("floor phases (s): " + ", ".join(f"{k} {v}" for k, v in result["floor_phases_s"].items()))
    print(f"load average (1, 5, 15 min) at the end: {result['load_average']}")
    print(f"metrics: pipeline {result['metrics']['pipeline']}; floor {result['metrics']['floor']}")
    print(f"setup/generate/schema: {result['prepare']}")
    print("PASS" if result["passed"] else "FAIL: over target")


if __name__ == "__main__":
    sys.exit(main())
