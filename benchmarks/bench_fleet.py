"""Benchmark: `andamio fleet status` over 50 repositories vs a loop of `copier check-update`.

Same run, same repositories: a two-version template history (tests/support/history.py)
is built in a temporary folder, one project is rendered at each version and
copied into 50 git repositories (half behind).  Then, as whole commands:

* ``fleet``: ``andamio fleet status ROOT --json`` (median of ``--repeat`` runs);
* ``loop``: ``copier check-update --output-format json`` in each repository, one
  after another (what a shell loop over a fleet does today).

Targets (issue 7): fleet <= 2 s in all, and >= 10x faster than the loop.

    python benchmarks/bench_fleet.py [--repos 50] [--repeat 3] [--json out.json]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.history import NEW, OLD, build_history, render_at  # noqa: E402

BIN = Path(sys.executable).parent


def timed(cmd: list[str], cwd: Path | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    return time.perf_counter() - started, proc


def main() -> int:
    """Build the fleet, time both ways, print (and optionally write) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="andamio-bench-fleet-") as tmp:
        work = Path(tmp)
        history = build_history(work / "template")
        bases = {
            OLD: render_at(history, work / "base-old", OLD),
            NEW: render_at(history, work / "base-new", NEW),
        }
        estate = work / "estate"
        repos = []
        for n in range(args.repos):
            repo = estate / f"team-{n % 5}" / f"repo-{n:02d}"
            shutil.copytree(bases[OLD if n % 2 else NEW], repo, symlinks=True)
            repos.append(repo)

        fleet_cmd = [str(BIN / "andamio"), "fleet", "status", str(estate), "--json"]
        fleet_times = []
        for _ in range(args.repeat):
            seconds, proc = timed(fleet_cmd)
            assert proc.returncode == 1, f"fleet status failed: {proc.stderr}"  # 1: some behind
            fleet_times.append(seconds)
        report = json.loads(proc.stdout)
        behind = sum(1 for r in report["rows"] if r["result"] == "behind")

        loop_started = time.perf_counter()
        loop_behind = 0
        for repo in repos:
            _, proc = timed([str(BIN / "copier"), "check-update", "--output-format", "json"], cwd=repo)
            assert proc.returncode == 0, f"copier check-update failed in {repo}: {proc.stderr}"
            loop_behind += json.loads(proc.stdout)["update_available"]
        loop_seconds = time.perf_counter() - loop_started

    fleet_median = statistics.median(fleet_times)
    figures = {
        "repos": args.repos,
        "cpus": os.cpu_count(),
        "fleet_status_seconds": round(fleet_median, 3),
        "fleet_status_runs": [round(t, 3) for t in fleet_times],
        "copier_check_update_loop_seconds": round(loop_seconds, 3),
        "speedup": round(loop_seconds / fleet_median, 1),
        "behind_found": {"fleet": behind, "copier_loop": loop_behind},
        "targets": {"fleet_status_seconds_max": 2.0, "speedup_min": 10.0},
    }
    figures["targets_met"] = fleet_median <= 2.0 and figures["speedup"] >= 10.0
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if behind != loop_behind:
        print("fleet status and copier disagree on which repositories are behind", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
