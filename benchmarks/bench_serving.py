"""Benchmark: the generated model API against `mlflow models serve`, same model, same run.

Both servers serve the bundle of a generated project (defaults: the pipeline's default
model), one uvicorn worker each, one at a time, on 127.0.0.1, driven by the same
closed-loop load generator (tests/integration/loadgen.py).  For 1-row and 100-row
requests at concurrency 8 and 32 it reports throughput and p99 (median of --runs runs)
and the ratios; then the API's p50 for a 100-row batch at concurrency 1 against the same
model's in-process ``predict`` (scikit-learn, as MLflow loads it).

Targets (issue 6): throughput >= 3x MLflow's, p99 <= 0.5x MLflow's; API p50 <= 1.2x the
in-process predict + 1 ms.

    python benchmarks/bench_serving.py [--runs 5] [--requests 2000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from _serving_project import BUILD, in_project, package, project
from loadgen import run_load

CONFIGS = [(1, 8), (1, 32), (100, 8), (100, 32)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A server process in its own session, stopped by PID."""

    def __init__(self, name: str, cmd: list[str], cwd: Path, port: int, ready: str) -> None:
        self.name, self.port = name, port
        self.log = (BUILD / f"{name}.log").open("wb")
        env = {**os.environ, "MLFLOW_MODELS_WORKERS": "1", "MAX_BATCH_SIZE": "1000"}
        # `mlflow models serve` execs `uvicorn` from PATH: the project's venv first
        env["PATH"] = f"{Path(cmd[0]).parent}{os.pathsep}{env.get('PATH', '')}"
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        self.started = time.perf_counter()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{ready}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        else:
            self.stop()
            raise SystemExit(f"{name} did not become ready; see {self.log.name}")
        self.startup = time.perf_counter() - self.started

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def payloads(dest: Path) -> tuple[list[str], list[list[float]]]:
    schema = json.loads((dest / "models/bundle/schema.json").read_text())
    names = [f["name"] for f in schema["features"]]
    import csv

    with (dest / "data/prepared/test.csv").open() as handle:
        rows = [[float(r[n]) for n in names] for r in csv.DictReader(handle)]
    return names, (rows * 2)[:100]


def bodies(kind: str, names: list[str], rows: list[list[float]], n: int) -> tuple[str, bytes]:
    chosen = rows[:n]
    if kind == "mlflow":
        return "/invocations", json.dumps({"dataframe_split": {"columns": names, "data": chosen}}).encode()
    records = [dict(zip(names, r, strict=True)) for r in chosen]
    if n == 1:
        return "/predict", json.dumps(records[0]).encode()
    return "/predict/batch", json.dumps({"rows": records}).encode()


def predictions(port: int, path: str, body: bytes) -> list[float]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    return [float(v) for v in answer["predictions"]]


def measure(server: Server, kind: str, names, rows, runs: int, requests: int) -> dict[str, Any]:
    out: dict[str, Any] = {"startup_s": server.startup}
    for n_rows, conc in CONFIGS:
        path, body = bodies(kind, names, rows, n_rows)
        run_load(server.port, path, body, total=300, concurrency=conc)  # warm-up
        rps, p99, p50, errors = [], [], [], 0
        for _ in range(runs):
            result = run_load(server.port, path, body, total=requests, concurrency=conc)
            errors += result.errors
            rps.append(result.throughput)
            p99.append(result.percentile(0.99))
            p50.append(result.percentile(0.5))
        out[f"{n_rows}x{conc}"] = {
            "rps": statistics.median(rps),
            "p99_ms": statistics.median(p99) * 1000,
            "p50_ms": statistics.median(p50) * 1000,
            "errors": errors,
        }
        print(f"  {kind:6} rows={n_rows:<3} c={conc:<2} {out[f'{n_rows}x{conc}']}", flush=True)
    if kind == "api":
        path, body = bodies(kind, names, rows, 100)
        seq = [run_load(server.port, path, body, total=500, concurrency=1) for _ in range(runs)]
        out["seq_100_p50_ms"] = statistics.median(r.percentile(0.5) for r in seq) * 1000
    return out


INPROC = """
import json, statistics, time, warnings
import numpy as np, pandas as pd
warnings.simplefilter("ignore")
from {pkg}.bundle import load_model
from {pkg}.serving.predictor import choose_runtime
from pathlib import Path
model = load_model(Path("models/bundle"))
names = {names!r}
frame = pd.DataFrame({rows!r}, columns=names)
def median_ms(fn, n=1000):
    for _ in range(50):
        fn()
    runs = []
    for _ in range({runs}):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t) / n * 1000)
    return statistics.median(runs)
runtime = choose_runtime(model, names, hasattr(model, "predict_proba"), frame.to_numpy())
x = frame.to_numpy()
print(json.dumps({{"sklearn_predict_ms": median_ms(lambda: model.predict(frame)),
                   "runtime": runtime.name, "runtime_predict_ms": median_ms(lambda: runtime.predict(x)),
                   "predictions": model.predict(frame).tolist()}}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000, help="requests per run")
    parser.add_argument("--json", type=Path, default=BUILD / "serving.json")
    args = parser.parse_args()

    dest = project()
    pkg = package(dest)
    names, rows = payloads(dest)
    venv_bin = dest / ".venv" / "bin"
    results: dict[str, Any] = {"runs": args.runs, "requests_per_run": args.requests, "workers": 1}

    inproc = in_project(dest, INPROC.format(pkg=pkg, names=names, rows=rows, runs=args.runs))
    reference_predictions = inproc.pop("predictions")
    results["in_process"] = inproc
    print(f"in-process 100-row predict: {inproc}", flush=True)

    port = free_port()
    api = Server(
        "api",
        [
            str(venv_bin / "uvicorn"),
            "--factory",
            f"{pkg}.serving:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--workers",
            "1",
        ],
        dest,
        port,
        "/ready",
    )
    try:
        path, body = bodies("api", names, rows, 100)
        assert predictions(port, path, body) == reference_predictions, "API predictions differ"
        results["api"] = measure(api, "api", names, rows, args.runs, args.requests)
    finally:
        api.stop()

    port = free_port()
    mlflow = Server(
        "mlflow",
        [
            str(venv_bin / "mlflow"),
            "models",
            "serve",
            "-m",
            "models/bundle/model",
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        dest,
        port,
        "/ping",
    )
    try:
        path, body = bodies("mlflow", names, rows, 100)
        assert predictions(port, path, body) == reference_predictions, "MLflow predictions differ"
        results["mlflow"] = measure(mlflow, "mlflow", names, rows, args.runs, max(args.requests // 2, 500))
    finally:
        mlflow.stop()

    print(
        "\n| request | concurrency | API req/s | MLflow req/s | ratio (>= 3) "
        "| API p99 ms | MLflow p99 ms | ratio (<= 0.5) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    ratios = {}
    for n_rows, conc in CONFIGS:
        key = f"{n_rows}x{conc}"
        a, m = results["api"][key], results["mlflow"][key]
        ratios[key] = {"throughput": a["rps"] / m["rps"], "p99": a["p99_ms"] / m["p99_ms"]}
        print(
            f"| {n_rows} row(s) | {conc} | {a['rps']:.0f} | {m['rps']:.0f} | {ratios[key]['throughput']:.2f} "
            f"| {a['p99_ms']:.1f} | {m['p99_ms']:.1f} | {ratios[key]['p99']:.2f} |"
        )
    p50 = results["api"]["seq_100_p50_ms"]
    budget = 1.2 * inproc["sklearn_predict_ms"] + 1.0
    results["ratios"] = ratios
    results["p50_vs_in_process"] = {"api_p50_ms": p50, "budget_ms": budget, "met": p50 <= budget}
    print(
        f"\nAPI p50, 100-row batch, concurrency 1: {p50:.2f} ms; in-process sklearn predict "
        f"{inproc['sklearn_predict_ms']:.2f} ms (budget 1.2x + 1 ms = {budget:.2f} ms: "
        f"{'met' if p50 <= budget else 'MISSED'}); in-process {inproc['runtime']} runtime "
        f"{inproc['runtime_predict_ms']:.3f} ms"
    )
    print(
        f"startup to ready: API {results['api']['startup_s']:.1f} s, "
        f"MLflow {results['mlflow']['startup_s']:.1f} s"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
