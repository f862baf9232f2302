"""Benchmark: the generated drift check against Evidently's DataDriftPreset, same data, same run.

1,000,000 rows x 20 numeric columns, 5 of them shifted (location, scale, mixture), as a
reference and a current frame saved once as .npy.  Timed, median of --runs runs:

* ``check``: the generated project's ``DriftDetector.check`` with the reference profile
  precomputed (as the serving bundle holds it) -- what ``make drift`` pays per batch;
* ``profile + check``: the same including profiling the 1M-row reference;
* ``naive``: scipy ``ks_2samp`` + numpy PSI per column, for context;
* Evidently 0.7 ``Report([DataDriftPreset()]).run`` (its own venv: it needs pandas<3).

It also compares the drifted column sets: both must flag exactly the 5 shifted columns.
Target (issue 6): >= 30x faster than Evidently, same drifted set, no false alarm.

    python benchmarks/bench_drift.py [--runs 5] [--rows 1000000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _serving_project import BUILD, in_project, package, project, run

EVIDENTLY = "evidently==0.7.23"
SHIFTED = {"x02": "+0.5 sd", "x05": "x2 sd", "x09": "+1 sd", "x13": "x0.5 sd", "x17": "30% +2 sd"}

DATA = """
import json, numpy as np
from pathlib import Path
rng = np.random.default_rng(2026)
rows, cols = {rows}, 20
out = Path({out!r})
out.mkdir(parents=True, exist_ok=True)
ref = rng.normal(size=(rows, cols)) * rng.uniform(0.5, 5, cols) + rng.uniform(-10, 10, cols)
cur = rng.normal(size=(rows, cols)) * ref.std(axis=0) + ref.mean(axis=0)
sd = ref.std(axis=0)
mean = ref.mean(axis=0)
cur[:, 2] += 0.5 * sd[2]
cur[:, 5] = mean[5] + (cur[:, 5] - mean[5]) * 2.0
cur[:, 9] += 1.0 * sd[9]
cur[:, 13] = mean[13] + (cur[:, 13] - mean[13]) * 0.5
mix = rng.random(rows) < 0.3
cur[mix, 17] += 2.0 * sd[17]
np.save(out / "reference.npy", ref)
np.save(out / "current.npy", cur)
print(json.dumps({{"rows": rows, "cols": cols}}))
"""

OURS = """
import json, statistics, time
import numpy as np, pandas as pd
from scipy.stats import ks_2samp
from {pkg}.drift import DriftDetector, Thresholds
names = [f"x{{i:02d}}" for i in range(20)]
ref = pd.DataFrame(np.load({data!r} + "/reference.npy"), columns=names)
cur = pd.DataFrame(np.load({data!r} + "/current.npy"), columns=names)
t = Thresholds()
check, both, naive = [], [], []
for _ in range({runs}):
    start = time.perf_counter()
    detector = DriftDetector.from_frame(ref, t)
    mid = time.perf_counter()
    report = detector.check(cur)
    end = time.perf_counter()
    check.append(end - mid)
    both.append(end - start)
for _ in range({runs}):
    start = time.perf_counter()
    flagged = []
    for name in names:
        r, c = ref[name].to_numpy(), cur[name].to_numpy()
        ks = ks_2samp(r, c).statistic
        edges = np.quantile(r, np.linspace(0, 1, 11))[1:-1]
        pr = np.bincount(np.searchsorted(edges, r), minlength=10) / r.size
        pc = np.bincount(np.searchsorted(edges, c), minlength=10) / c.size
        pr, pc = np.maximum(pr, 1e-4), np.maximum(pc, 1e-4)
        psi = float(np.sum((pc - pr) * np.log(pc / pr)))
        if psi > t.psi or ks > t.ks:
            flagged.append(name)
    naive.append(time.perf_counter() - start)
print(json.dumps({{
    "check_s": statistics.median(check), "profile_and_check_s": statistics.median(both),
    "naive_s": statistics.median(naive), "drifted": report.drifted_features,
    "naive_drifted": flagged,
    "stats": {{c.name: [round(c.psi, 4), round(c.ks, 4)] for c in report.features}},
}}))
"""

EVIDENTLY_CODE = """
import json, statistics, time
import numpy as np, pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
names = [f"x{{i:02d}}" for i in range(20)]
ref = pd.DataFrame(np.load({data!r} + "/reference.npy"), columns=names)
cur = pd.DataFrame(np.load({data!r} + "/current.npy"), columns=names)
times = []
for _ in range({runs}):
    start = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
    times.append(time.perf_counter() - start)
drifted = []
for metric in snapshot.dict()["metrics"]:
    config = metric["config"]
    if config.get("type", "").endswith("ValueDrift") and metric["value"] >= config["threshold"]:
        drifted.append(config["column"])
method = next(m["config"]["method"] for m in snapshot.dict()["metrics"] if "method" in m["config"])
print(json.dumps({{"run_s": statistics.median(times), "all_s": times, "drifted": sorted(drifted),
                   "method": method}}))
"""


def evidently_python() -> Path:
    """Return a venv python with Evidently (apart: it needs pandas<3 and pins its own stack)."""
    venv = BUILD / "evidently-venv"
    python = venv / "bin" / "python"
    if not python.is_file():
        uv = str(Path(sys.executable).parent / "uv")
        run(BUILD, uv, "venv", "-q", "--python", "3.11", str(venv))
    check = [str(python), "-c", "import evidently"]
    import subprocess

    if subprocess.run(check, capture_output=True).returncode != 0:
        uv = str(Path(sys.executable).parent / "uv")
        run(BUILD, uv, "pip", "install", "-q", "--python", str(python), EVIDENTLY, "pandas==2.3.3")
    return python


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--evidently-runs", type=int, default=None, help="default: --runs")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path, default=BUILD / "drift.json")
    args = parser.parse_args()

    dest = project()
    data = BUILD / f"drift-data-{args.rows}"
    if not (data / "current.npy").is_file():
        in_project(dest, DATA.format(rows=args.rows, out=str(data)))
    print(f"data: {args.rows:,} rows x 20 columns, shifted {SHIFTED}", flush=True)

    ours = in_project(dest, OURS.format(pkg=package(dest), data=str(data), runs=args.runs))
    print(f"andamio drift: {json.dumps({k: v for k, v in ours.items() if k != 'stats'})}", flush=True)
    python = evidently_python()
    code = EVIDENTLY_CODE.format(data=str(data), runs=args.evidently_runs or args.runs)
    evidently = json.loads(run(BUILD, str(python), "-c", code).strip().splitlines()[-1])
    print(f"evidently: {evidently}", flush=True)

    expected = sorted(SHIFTED)
    result = {
        "rows": args.rows,
        "runs": args.runs,
        "andamio": ours,
        "evidently": evidently,
        "speedup_check": evidently["run_s"] / ours["check_s"],
        "speedup_profile_and_check": evidently["run_s"] / ours["profile_and_check_s"],
        "same_drifted_set": sorted(ours["drifted"]) == sorted(evidently["drifted"]) == expected,
        "false_alarms": sorted(set(ours["drifted"]) - set(expected)),
    }
    print("\n| measure | seconds (median) | Evidently / this |")
    print("|---|---|---|")
    print(f"| Evidently DataDriftPreset | {evidently['run_s']:.2f} | 1 |")
    print(
        f"| check, reference profile precomputed | {ours['check_s']:.3f} | {result['speedup_check']:.0f}x |"
    )
    print(
        f"| profile 1M-row reference + check | {ours['profile_and_check_s']:.3f} "
        f"| {result['speedup_profile_and_check']:.0f}x |"
    )
    print(
        f"| naive scipy ks_2samp + numpy PSI | {ours['naive_s']:.2f} "
        f"| {evidently['run_s'] / ours['naive_s']:.0f}x |"
    )
    print(
        f"\ndrifted: ours {ours['drifted']}, Evidently {evidently['drifted']} ({evidently['method']}), "
        f"shifted {expected}: same set {result['same_drifted_set']}, false alarms {result['false_alarms']}"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"results: {args.json}")
    return 0 if result["same_drifted_set"] else 1


if __name__ == "__main__":
    sys.exit(main())
