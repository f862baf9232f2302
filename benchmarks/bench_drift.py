"""Benchmark: the generated drift check against Evidently's DataDriftPreset, same data, same run.

1,000,000 rows x 20 columns -- 15 numeric (two with 5 % missing values) and 5 categorical
(one with 50 levels, one with missing values) -- as a reference and a current frame saved once
(floats as .npy, categories as integer codes).  7 columns are shifted: 5 numeric (location,
scale, mixture) and 2 categorical (shares moved; a new category at 15 %).  Timed, median of
--runs runs:

* ``check``: the generated project's ``DriftDetector.check`` with the 1M-row reference profile
  precomputed -- what ``make drift --reference`` pays per batch once profiled;
* ``check vs reference.json``: the same against the serving bundle's ``reference.json`` (what
  ``make drift`` and the API use);
* ``profile + check``: profiling the 1M-row reference included;
* ``naive``: scipy ``ks_2samp`` / ``chi2_contingency`` + numpy/pandas PSI per column, for context;
* Evidently 0.7 ``Report([DataDriftPreset()]).run`` (its own venv: it needs pandas<3), told
  which columns are numeric and which categorical.

It also compares the drifted column sets: every check must flag exactly the 7 shifted columns.
Target (issue 11): >= 30x faster than Evidently, same drifted set, no false alarm.

    python benchmarks/bench_drift.py [--runs 3] [--evidently-runs 1] [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _serving_project import BUILD, _template_digest, in_project, package, run

EVIDENTLY = "evidently==0.7.23"
NUMERIC = [f"x{i:02d}" for i in range(15)]
CATEGORICAL = [f"c{i}" for i in range(5)]
SHIFTED = {
    "x02": "+0.5 sd",
    "x05": "x2 sd",
    "x09": "+1 sd",
    "x11": "30% +2 sd",
    "x13": "x0.5 sd",
    "c1": "shares 50/30/15/5 % -> 25/30/15/30 %",
    "c3": "a new category at 15 %",
}

DATA = """
import json, numpy as np
from pathlib import Path
rng = np.random.default_rng(2026)
rows = {rows}
out = Path({out!r})
out.mkdir(parents=True, exist_ok=True)
cols = 15
ref = rng.normal(size=(rows, cols)) * rng.uniform(0.5, 5, cols) + rng.uniform(-10, 10, cols)
cur = rng.normal(size=(rows, cols)) * ref.std(axis=0) + ref.mean(axis=0)
sd, mean = ref.std(axis=0), ref.mean(axis=0)
cur[:, 2] += 0.5 * sd[2]
cur[:, 5] = mean[5] + (cur[:, 5] - mean[5]) * 2.0
cur[:, 9] += 1.0 * sd[9]
cur[:, 11] += np.where(rng.random(rows) < 0.3, 2.0 * sd[11], 0.0)
cur[:, 13] = mean[13] + (cur[:, 13] - mean[13]) * 0.5
for j in (4, 7):  # 5 % missing on both sides
    ref[rng.random(rows) < 0.05, j] = np.nan
    cur[rng.random(rows) < 0.05, j] = np.nan
zipf = 1.0 / np.arange(1, 51) ** 1.1
levels = {{
    "c0": (["red", "green", "blue", "grey"], [0.4, 0.3, 0.2, 0.1], None),
    "c1": (["basic", "pro", "team", "enterprise"], [0.5, 0.3, 0.15, 0.05], [0.25, 0.3, 0.15, 0.3]),
    "c2": ([f"city-{{i:02d}}" for i in range(50)], zipf / zipf.sum(), None),
    "c3": (["web", "app", "store"], [0.6, 0.3, 0.1], None),
    "c4": (["small", "medium", "large"], [0.5, 0.3, 0.2], None),
}}
codes = {{}}
for name, (names, shares, shifted) in levels.items():
    r = rng.choice(len(names), size=rows, p=shares).astype(np.int16)
    c = rng.choice(len(names), size=rows, p=shifted or shares).astype(np.int16)
    if name == "c4":  # 5 % missing on both sides (code -1)
        r[rng.random(rows) < 0.05] = -1
        c[rng.random(rows) < 0.05] = -1
    np.save(out / f"ref-{{name}}.npy", r)
    np.save(out / f"cur-{{name}}.npy", c)
    codes[name] = names
names3 = codes["c3"] + ["kiosk"]  # the new category, 15 % of the current rows
c3 = np.load(out / "cur-c3.npy")
c3[rng.random(rows) < 0.15] = 3
np.save(out / "cur-c3.npy", c3)
codes["c3"] = names3
np.save(out / "reference.npy", ref)
np.save(out / "current.npy", cur)
(out / "levels.json").write_text(json.dumps(codes))
print(json.dumps({{"rows": rows}}))
"""

# Both sides rebuild the same frames: numeric float64 with NaN, categorical object str / None.
LOAD = """
import json
import numpy as np, pandas as pd
def load(side):
    data = {data!r}
    levels = json.loads(open(data + "/levels.json").read())
    numeric = np.load(data + ("/reference.npy" if side == "ref" else "/current.npy"))
    frame = {{f"x{{i:02d}}": numeric[:, i] for i in range(15)}}
    for name, names in levels.items():
        lookup = np.array([*names, None], dtype=object)  # code -1 -> None
        frame[name] = lookup[np.load(data + f"/{{side}}-{{name}}.npy")]
    return pd.DataFrame(frame)
ref, cur = load("ref"), load("cur")
numeric = [c for c in ref.columns if c.startswith("x")]
categorical = [c for c in ref.columns if c.startswith("c")]
"""

OURS = (
    LOAD
    + """
import statistics, time
from scipy.stats import chi2_contingency, ks_2samp
from {pkg} import bundle
from {pkg}.contract import Column, Contract, Target
from {pkg}.drift import DriftDetector
from {pkg}.settings import DriftParams
params = DriftParams()
contract = Contract(
    tuple(Column(n, "numeric" if n in numeric else "categorical", True,
                 categories=None if n in numeric else tuple(sorted(set(ref[n].dropna()))))
          for n in ref.columns),
    Target("label", "numeric"),
)
schema = bundle.build_schema(contract)
reference = bundle.build_reference(
    ref, np.zeros(len(ref)), contract, bins=10, sample_size=500, seed=0
)
check, both, bundled, naive = [], [], [], []
for _ in range({runs}):
    start = time.perf_counter()
    detector = DriftDetector.from_frame(ref, params, schema=schema)
    mid = time.perf_counter()
    report = detector.check(cur)
    end = time.perf_counter()
    check.append(end - mid)
    both.append(end - start)
from_json = DriftDetector.from_reference(schema, reference, params)
for _ in range({runs}):
    start = time.perf_counter()
    json_report = from_json.check(cur)
    bundled.append(time.perf_counter() - start)
def naive_psi(pc, pr):
    pc, pr = np.maximum(pc, 1e-4), np.maximum(pr, 1e-4)
    return float(np.sum((pc - pr) * np.log(pc / pr)))
for _ in range({runs}):
    start = time.perf_counter()
    flagged = []
    for name in numeric:
        r, c = ref[name].dropna().to_numpy(), cur[name].dropna().to_numpy()
        ks = ks_2samp(r, c)
        edges = np.quantile(r, np.linspace(0, 1, 11))[1:-1]
        pr = np.bincount(np.searchsorted(edges, r), minlength=10) / r.size
        pc = np.bincount(np.searchsorted(edges, c), minlength=10) / c.size
        if (naive_psi(pc, pr) > params.psi or ks.statistic > params.ks) and ks.pvalue < params.p_value:
            flagged.append(name)
    for name in categorical:
        table = pd.crosstab(
            np.r_[np.zeros(len(ref)), np.ones(len(cur))], pd.concat([ref[name], cur[name]]).to_numpy()
        )
        shares = table.to_numpy() / table.to_numpy().sum(axis=1, keepdims=True)
        if naive_psi(shares[1], shares[0]) > params.psi and chi2_contingency(table)[1] < params.p_value:
            flagged.append(name)
    naive.append(time.perf_counter() - start)
print(json.dumps({{
    "check_s": statistics.median(check), "profile_and_check_s": statistics.median(both),
    "reference_json_check_s": statistics.median(bundled), "naive_s": statistics.median(naive),
    "drifted": report.drifted_features, "reference_json_drifted": json_report.drifted_features,
    "naive_drifted": flagged,
    "stats": {{c.name: [round(c.psi, 4), c.ks and round(c.ks, 4)] for c in report.features}},
}}))
"""
)

EVIDENTLY_CODE = (
    LOAD
    + """
import statistics, time
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
times = []
for _ in range({runs}):
    start = time.perf_counter()
    current = Dataset.from_pandas(cur, data_definition=definition)
    reference = Dataset.from_pandas(ref, data_definition=definition)
    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    times.append(time.perf_counter() - start)
drifted, methods = [], set()
for metric in snapshot.dict()["metrics"]:
    config = metric["config"]
    if config.get("type", "").endswith("ValueDrift"):
        methods.add(config.get("method"))
        if metric["value"] >= config["threshold"]:
            drifted.append(config["column"])
print(json.dumps({{"run_s": statistics.median(times), "all_s": times, "drifted": sorted(drifted),
                   "methods": sorted(map(str, methods))}}))
"""
)


def drift_project() -> Path:
    """Return a generated project with its .venv (rendered once per template digest)."""
    from support.project import copy_template, render_project

    dest = BUILD / "drift-project"
    stamp = BUILD / "drift-project.digest"
    digest = _template_digest()
    if stamp.is_file() and stamp.read_text() == digest and (dest / ".venv").is_dir():
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    BUILD.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        render_project(copy_template(Path(tmp) / "src"), dest)
    print(f"bench: rendered {dest}; make setup ...", flush=True)
    run(dest, "make", "setup")
    stamp.write_text(digest)
    return dest


def evidently_python() -> Path:
    """Return a venv python with Evidently (apart: it needs pandas<3 and pins its own stack)."""
    venv = BUILD / "evidently-venv"
    python = venv / "bin" / "python"
    uv = str(Path(sys.executable).parent / "uv")
    if not python.is_file():
        run(BUILD, uv, "venv", "-q", "--python", "3.11", str(venv))
    if subprocess.run([str(python), "-c", "import evidently"], capture_output=True).returncode:
        run(BUILD, uv, "pip", "install", "-q", "--python", str(python), EVIDENTLY, "pandas==2.3.3")
    return python


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--evidently-runs", type=int, default=1, help="Evidently is slow")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path, default=BUILD / "drift.json")
    args = parser.parse_args()

    dest = drift_project()
    data = BUILD / f"drift-data-mixed-{args.rows}"
    if not (data / "levels.json").is_file():
        in_project(dest, DATA.format(rows=args.rows, out=str(data)))
    print(f"data: {args.rows:,} rows x 15 numeric + 5 categorical, shifted {SHIFTED}", flush=True)

    ours = in_project(dest, OURS.format(pkg=package(dest), data=str(data), runs=args.runs))
    print(f"andamio drift: {json.dumps({k: v for k, v in ours.items() if k != 'stats'})}", flush=True)
    python = evidently_python()
    code = EVIDENTLY_CODE.format(data=str(data), runs=args.evidently_runs)
    evidently = json.loads(run(BUILD, str(python), "-c", code).strip().splitlines()[-1])
    print(f"evidently: {evidently}", flush=True)

    expected = sorted(SHIFTED)
    found = {
        "check": sorted(ours["drifted"]),
        "reference.json": sorted(ours["reference_json_drifted"]),
        "evidently": sorted(evidently["drifted"]),
    }
    result = {
        "rows": args.rows,
        "runs": args.runs,
        "evidently_runs": args.evidently_runs,
        "andamio": ours,
        "evidently": evidently,
        "speedup_check": evidently["run_s"] / ours["check_s"],
        "speedup_reference_json_check": evidently["run_s"] / ours["reference_json_check_s"],
        "speedup_profile_and_check": evidently["run_s"] / ours["profile_and_check_s"],
        "same_drifted_set": all(v == expected for v in found.values()),
        "false_alarms": {k: sorted(set(v) - set(expected)) for k, v in found.items()},
    }
    e = evidently["run_s"]
    print("\n| measure | seconds (median) | Evidently / this |")
    print("|---|---|---|")
    print(f"| Evidently DataDriftPreset | {e:.2f} | 1 |")
    size = f"{args.rows:,}-row"
    for label, key in (
        (f"check, {size} reference profile precomputed", "check_s"),
        ("check against the bundle's reference.json", "reference_json_check_s"),
        (f"profile the {size} reference + check", "profile_and_check_s"),
        ("naive scipy ks_2samp / chi2_contingency + PSI", "naive_s"),
    ):
        print(f"| {label} | {ours[key]:.3f} | {e / ours[key]:.0f}x |")
    print(
        f"\ndrifted: {found} (Evidently methods {evidently['methods']}); shifted {expected}: "
        f"same set {result['same_drifted_set']}, false alarms {result['false_alarms']}"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"results: {args.json}")
    return 0 if result["same_drifted_set"] else 1


if __name__ == "__main__":
    sys.exit(main())
