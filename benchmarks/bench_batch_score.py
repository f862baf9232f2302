"""Benchmark: ``make batch-score`` on 1M and 10M rows, streaming engine and Spark, against the floor.

The default project (demo data, the default model; ``_serving_project.project``) scores tables
shaped like its demo data (``tests/support/scoring_data.py``: 30 float features + an id, Parquet in
row groups of 131,072 rows). Measured, each command run once as the CLI a user runs:

* streaming engine at 1M and 10M rows: wall time, rows/s and the command's peak RSS
  (``wait4``). Target: a flat memory curve, 10M within +-20 % of 1M;
* Spark ``local[1]`` and ``local[2]`` at 10M rows: wall time and the speed-up (target >= 1.6x);
  the fixed cost (JVM, session, model load: a 1,000-row table) is measured too, and the
  speed-up is also given without it.  The environment's first Spark run, which records the
  JVM's class archive (any archive there is removed first), is timed apart, before the
  others.  Each command's CPU seconds are those of its whole process tree (the JVM and the
  Python workers included; sampled from ``/proc``, by a sampler that takes about 0.2 % of a
  core), a figure that other work on the machine skews much less than the wall time.
  ``--repeat N`` runs local[1] and local[2] alternately N times and keeps each one's fastest
  run; the speed-up is given from those, and as the median of each round's ratio (a round's
  two runs come back to back, so a drift of the machine's speed cancels out);
* the floor: a bare ``model.predict_proba`` over the same 10M rows held in memory (the
  project's Python, the bundle's model), and each engine's time over the floor.

    python benchmarks/bench_batch_score.py [--rows 10000000] [--small 1000000] [--skip-spark]
        [--repeat 1]

Tables and outputs live under build/bench/batch (about 7 GB at 10M rows, removed at the
end unless --keep). The machine's load average is printed: other work skews the figures.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from _serving_project import BUILD, in_project, package, project

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.scoring_data import demo_table

WORK = BUILD / "batch"


def adopt_orphans() -> None:
    """Become the subreaper of every descendant (Linux): orphans stay in this process's tree."""
    PR_SET_CHILD_SUBREAPER = 36
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


class TreeCPU(threading.Thread):
    """Sample the CPU seconds of every descendant of this process (``/proc``, every 0.1 s).

    Spark's driver exits without waiting for its JVM, and the JVM's Python workers are not
    always reaped by their parents: ``getrusage(RUSAGE_CHILDREN)`` misses them, sampling
    does not (it loses at most the last 0.1 s of each process).  A process found outside this
    process's tree is not read again: the sampler's own CPU, taken from the cores it
    measures, stays near 0.2 % of one (scanning every process was about 1.5 %).
    """

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: dict[tuple[int, int], float] = {}  # (pid, start time) -> CPU seconds
        self.foreign: set[int] = set()  # outside this process's tree
        self.done = threading.Event()

    def sample(self) -> None:
        parents, cpu = {}, {}
        for name in os.listdir("/proc"):  # noqa: PTH208 - plain strings: the sampler runs often
            if not name.isdigit() or int(name) in self.foreign:
                continue
            try:
                with open(f"/proc/{name}/stat") as stat:  # noqa: PTH123
                    text = stat.read()
            except OSError:
                continue
            fields = text[text.rfind(")") + 2 :].split()
            pid = int(name)
            parents[pid] = int(fields[1])
            cpu[pid] = ((int(fields[11]) + int(fields[12])) / self.TICK, int(fields[19]))
        me = os.getpid()
        for pid in cpu:
            ancestor = parents.get(pid)
            while ancestor not in (None, 0, 1, me) and ancestor not in self.foreign:
                ancestor = parents.get(ancestor)
            if ancestor == me:
                seconds, started = cpu[pid]
                self.seen[(pid, started)] = max(seconds, self.seen.get((pid, started), 0.0))
            elif ancestor is not None:  # reached init, or a process outside the tree
                self.foreign.add(pid)

    def run(self) -> None:
        while not self.done.is_set():
            self.sample()
            time.sleep(0.1)

    def stop(self) -> float:
        self.done.set()
        self.join()
        return sum(self.seen.values())


def _reap(deadline: float) -> None:
    """Wait for the orphans a command left (Spark's JVM shuts down after the driver exits)."""
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.05)


def peak_rss(cwd: Path, *cmd: str) -> tuple[float, float, str, float]:
    """Run ``cmd`` as a direct child; return (wall s, peak RSS MiB of that child, stdout, CPU s).

    The CPU seconds are those of the command and of every process it started (sampled).
    """
    sampler = TreeCPU()
    sampler.start()
    start = time.perf_counter()
    out_file = WORK / "stdout.txt"
    with out_file.open("w") as sink:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    _reap(time.monotonic() + 60)
    cpu = sampler.stop()
    text = out_file.read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"`{' '.join(cmd)}` failed:\n{text[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, text, cpu


def floor(dest: Path, table: Path) -> dict:
    """Time a bare predict_proba of the bundle's model over the table's features in memory."""
    pkg = package(dest)
    code = f"""
import json, time
import pandas as pd
from {pkg} import bundle
from {pkg}.contract import coerce
from {pkg}.settings import load_settings
settings = load_settings()
model = bundle.load_model(settings.bundle_dir)
contract = settings.contract()
features = coerce(pd.read_parquet({str(table)!r}, columns=contract.feature_names), contract)
start = time.perf_counter()
model.predict_proba(features)
seconds = time.perf_counter() - start
print(json.dumps({{"rows": len(features), "seconds": seconds}}))
"""
    return in_project(dest, code)


def score_cmd(dest: Path, source: Path, out: Path, *extra: str) -> list[str]:
    python = str(dest / ".venv" / "bin" / "python")
    return [python, "-m", package(dest), "batch-score", "--input", str(source), "--output", str(out), *extra]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--small", type=int, default=1_000_000)
    parser.add_argument("--skip-spark", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the tables and outputs")
    parser.add_argument(
        "--repeat", type=int, default=1, help="Spark runs per master, alternated; the fastest is kept"
    )
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    adopt_orphans()
    dest = project()
    WORK.mkdir(parents=True, exist_ok=True)
    results: dict = {"load_average_start": os.getloadavg(), "rows": args.rows, "small": args.small}
    tables = {}
    for rows in (args.small, args.rows, 1000):
        path = WORK / f"table-{rows}.parquet"
        if not path.is_file():
            print(f"bench: writing {rows:,} rows to {path} ...", flush=True)
            demo_table(dest, path, rows, seed=rows % 97)
        tables[rows] = path

    local = {}
    for rows in (args.small, args.rows):
        out = WORK / f"local-{rows}.parquet"
        seconds, rss, _, cpu = peak_rss(dest, *score_cmd(dest, tables[rows], out))
        local[rows] = {
            "seconds": round(seconds, 2),
            "cpu_seconds": round(cpu, 2),
            "rows_per_s": round(rows / seconds),
            "peak_rss_mib": round(rss),
        }
        print(
            f"bench: local {rows:,} rows: {seconds:.1f} s, {rows / seconds:,.0f} rows/s, "
            f"peak RSS {rss:.0f} MiB",
            flush=True,
        )
        out.unlink(missing_ok=True)
    results["local"] = local
    small_rss, big_rss = local[args.small]["peak_rss_mib"], local[args.rows]["peak_rss_mib"]
    results["rss_ratio_big_over_small"] = round(big_rss / small_rss, 3)

    results["floor"] = floor(dest, tables[args.rows])
    floor_s = results["floor"]["seconds"]
    print(f"bench: floor predict_proba {args.rows:,} rows in memory: {floor_s:.2f} s", flush=True)
    results["local_over_floor"] = round(local[args.rows]["seconds"] / floor_s, 1)

    if not args.skip_spark:
        # the spark extra, as `make batch-score SCORE_ENGINE=spark` installs it
        subprocess.run(["make", "setup", "SCORE_ENGINE=spark"], cwd=dest, check=True, capture_output=True)
        spark: dict = {}
        # The environment's first local Spark run records the JVM's class archive (CDS) as its
        # JVM exits; every later run maps it. Timed apart: the runs measured below are "later".
        shutil.rmtree(dest / ".venv" / "var" / "cache" / package(dest), ignore_errors=True)  # no archive yet
        out = WORK / "spark-first.parquet"
        cmd = score_cmd(dest, tables[1000], out, "--engine", "spark", "--master", "local[1]")
        spark["first_run_seconds"] = round(peak_rss(dest, *cmd)[0], 2)
        shutil.rmtree(out, ignore_errors=True)
        print(f"bench: spark first run (records the class archive): {spark['first_run_seconds']:.1f} s")
        pairs = []  # local[1] seconds / local[2] seconds of each round, run back to back
        for _ in range(args.repeat):
            timed = {}
            for master in ("local[1]", "local[2]"):
                run = {}
                for name, rows in (("fixed", 1000), ("", args.rows)):
                    out = WORK / f"spark-{master[6]}.parquet"
                    shutil.rmtree(out, ignore_errors=True)
                    cmd = score_cmd(dest, tables[rows], out, "--engine", "spark", "--master", master)
                    seconds, _, _, cpu = peak_rss(dest, *cmd)
                    shutil.rmtree(out, ignore_errors=True)
                    run[f"{name}_seconds".lstrip("_")] = round(seconds, 2)
                    run[f"{name}_cpu_seconds".lstrip("_")] = round(cpu, 2)
                run["rows_per_s"] = round(args.rows / run["seconds"])
                run["over_floor"] = round(run["seconds"] / floor_s, 1)
                print(
                    f"bench: spark {master} {args.rows:,} rows: {run['seconds']:.1f} s, "
                    f"CPU {run['cpu_seconds']:.1f} s (fixed cost {run['fixed_seconds']:.1f} s, "
                    f"CPU {run['fixed_cpu_seconds']:.1f} s; load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
                timed[master] = run["seconds"]
                best = spark.get(master)
                if best is None or run["seconds"] < best["seconds"]:
                    spark[master] = run
            pairs.append(round(timed["local[1]"] / timed["local[2]"], 2))
        one, two = spark["local[1]"], spark["local[2]"]
        spark["speedup"] = round(one["seconds"] / two["seconds"], 2)
        # The machine's own speed drifts over minutes (other guests on its host): the ratio of
        # each back-to-back round cancels that drift; their median is the steadier figure.
        spark["speedup_each_round"] = pairs
        spark["speedup_median_of_rounds"] = statistics.median(pairs)
        spark["speedup_without_fixed"] = round(
            (one["seconds"] - one["fixed_seconds"]) / (two["seconds"] - two["fixed_seconds"]), 2
        )
        results["spark"] = spark
    results["load_average_end"] = os.getloadavg()
    if not args.keep:
        shutil.rmtree(WORK, ignore_errors=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
