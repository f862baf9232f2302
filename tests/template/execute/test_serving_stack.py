"""Tier 4: the generated model API under real uvicorn, scraped by a real Prometheus.

One rendered project (defaults), one API process and one Prometheus (plus Alertmanager)
serve every step, so the steps run in one test, in order: Prometheus sees the target up,
a bounded load run gets no error, schemathesis fuzzing gets no 5xx, the recording rules
evaluate, and shifted inputs drive the drift gauge over its threshold and the drift alert
to firing, all the way to Alertmanager.  Intervals are 1 s and every ``for:`` is cut to
1 s in a test-only copy of the rules; everything binds 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import unavailable
import yaml
from support.loadgen import run_load
from support.process import sh
from support.servers import free_port

pytestmark = pytest.mark.integration

TOOLS = {
    "prometheus": "prometheus (Debian package prometheus)",
    "promtool": "promtool (Debian package prometheus)",
    "prometheus-alertmanager": "Alertmanager (Debian package prometheus-alertmanager)",
}
LOAD_REQUESTS = 10_000
LOAD_CONCURRENCY = 32


def need_tools() -> None:
    missing = [label for tool, label in TOOLS.items() if shutil.which(tool) is None]
    if shutil.which("st", path=str(Path(sys.executable).parent)) is None:
        missing.append("schemathesis (root dev extra)")
    if missing:
        message = f"missing {', '.join(missing)}: run scripts/bootstrap.sh"
        unavailable(message)


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def post_json(url: str, payload: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def wait_for(what: str, check, timeout: float = 60.0, interval: float = 0.5) -> Any:
    """Poll ``check`` until it returns a truthy value; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, ValueError, KeyError) as error:
            last = error
        else:
            if last:
                return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


class Processes:
    """Background processes started by the test, stopped by PID at teardown."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self.procs.append((name, proc))

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


class Prometheus:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        answer = get_json(url)
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def alerts(self, name: str, state: str = "firing") -> list[dict[str, Any]]:
        alerts = get_json(f"{self.base}/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == name and a["state"] == state]


@pytest.fixture(scope="module")
def project(project_factory, tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_tools()
    dest = project_factory.new(tmp_path_factory.mktemp("stack") / "project")
    sh(dest, "make", "setup")
    # the generated tests' helper builds models/bundle without a full pipeline run
    code = "from pathlib import Path; from serving_helpers import make_bundle; make_bundle(Path.cwd())"
    sh(dest, ".venv/bin/python", "-c", f"import sys; sys.path.insert(0, 'tests'); {code}")
    return dest


def test_rules_config_and_alertmanager_files_pass_the_native_validators(project: Path):
    need_tools()
    monitoring = project / "monitoring"
    sh(monitoring, "promtool", "check", "config", "prometheus.yml")
    sh(monitoring, "promtool", "check", "rules", "recording_rules.yml", "alert_rules.yml")
    out = sh(monitoring, "promtool", "test", "rules", "alert_rules_test.yml").stdout
    assert "SUCCESS" in out, out
    amtool = shutil.which("amtool")
    assert amtool, "amtool comes with prometheus-alertmanager: run scripts/bootstrap.sh"
    sh(monitoring, amtool, "check-config", "alertmanager.yml")


def _test_rules(monitoring: Path, dest: Path) -> None:
    """Copy the rule files with every `for:` cut to 1s (the shipped ones wait minutes)."""
    for name in ("recording_rules.yml", "alert_rules.yml"):
        text = (monitoring / name).read_text()
        (dest / name).write_text(re.sub(r"(?m)^(\s+for:)\s*\S+", r"\1 1s", text))


@pytest.fixture(scope="module")
def stack(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("stack-run")
    procs = Processes(work)
    api_port, prom_port, am_port = free_port(), free_port(), free_port()
    try:
        procs.start(
            "api",
            [
                str(project / ".venv" / "bin" / "uvicorn"),
                "--factory",
                f"{project_package(project)}.serving:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
                "--no-access-log",
            ],
            cwd=project,
            env={"MAX_BATCH_SIZE": "100"},
        )
        am_config = project / "monitoring" / "alertmanager.yml"
        procs.start(
            "alertmanager",
            [
                "prometheus-alertmanager",
                f"--config.file={am_config}",
                f"--storage.path={work / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            cwd=work,
        )
        # the shipped scrape config, pointed at the test ports with 1 s intervals
        config = yaml.safe_load((project / "monitoring" / "prometheus.yml").read_text())
        config["global"].update(scrape_interval="1s", evaluation_interval="1s")
        config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{am_port}"]
        jobs = {job["job_name"]: job for job in config["scrape_configs"]}
        jobs["model-api"]["static_configs"][0]["targets"] = [f"127.0.0.1:{api_port}"]
        jobs["prometheus"]["static_configs"][0]["targets"] = [f"127.0.0.1:{prom_port}"]
        (work / "prometheus.yml").write_text(yaml.safe_dump(config))
        _test_rules(project / "monitoring", work)
        sh(work, "promtool", "check", "config", "prometheus.yml")
        procs.start(
            "prometheus",
            [
                "prometheus",
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            cwd=work,
        )
        api = f"http://127.0.0.1:{api_port}"
        wait_for("the API to be ready (/ready 200)", lambda: get_json(f"{api}/ready")["status"] == "ready")
        wait_for(
            "Prometheus to be ready", lambda: urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/-/ready")
        )
        yield {
            "api": api,
            "api_port": api_port,
            "prom": Prometheus(prom_port),
            "am_port": am_port,
            "procs": procs,
        }
    finally:
        procs.stop()


def project_package(project: Path) -> str:
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    return answers["package_name"]


def _rows(project: Path, split: str) -> list[dict[str, float]]:
    """The prepared split's feature rows, read by the project's own pandas (Parquet)."""
    code = (
        "import pandas as pd, sys; "
        f"pd.read_parquet('data/prepared/{split}.parquet').drop(columns=['target'])"
        ".to_json(sys.stdout, orient='records')"
    )
    out = subprocess.run(
        [".venv/bin/python", "-c", code], cwd=project, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)


def test_api_under_load_fuzzing_and_prometheus_alerting(project: Path, stack: dict[str, Any]):
    api, prom = stack["api"], stack["prom"]
    rows = _rows(project, "train")

    # Given Prometheus scraping the API: the target is up
    wait_for("up{job='model-api'} == 1", lambda: prom.value('up{job="model-api"}') == 1.0, timeout=30)

    # When a bounded load run of mixed 1-row and 10-row requests hits the API
    one = json.dumps(rows[0]).encode()
    batch = json.dumps({"rows": rows[:10]}).encode()
    single = run_load(
        stack["api_port"], "/predict", one, total=LOAD_REQUESTS // 2, concurrency=LOAD_CONCURRENCY
    )
    multi = run_load(
        stack["api_port"], "/predict/batch", batch, total=LOAD_REQUESTS // 2, concurrency=LOAD_CONCURRENCY
    )
    # Then every one of the 10,000 requests succeeds
    for result in (single, multi):
        assert result.count == LOAD_REQUESTS // 2 and result.errors == 0, (
            result.statuses,
            result.failures[:3],
        )

    # When schemathesis fuzzes every operation of the OpenAPI schema
    report = stack["procs"].logs / "schemathesis"
    fuzz = subprocess.run(
        [
            str(Path(sys.executable).parent / "st"),
            "run",
            f"{api}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "60",
            "--seed",
            "6",
            "--generation-database",
            "none",
            "--no-color",
            "--max-time",
            "90",
            "--report",
            "junit",
            "--report-dir",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    # Then no response is a server error
    assert fuzz.returncode == 0, fuzz.stdout[-4000:] + fuzz.stderr[-2000:]
    assert (
        re.search(r"(\d+) generated", fuzz.stdout)
        and int(re.search(r"(\d+) generated", fuzz.stdout).group(1)) > 100
    )
    fuzzed_4xx = wait_for(
        "fuzzing's 4xx answers in Prometheus",
        lambda: prom.value('sum(model_api_requests_total{status=~"4.."})'),
    )
    assert fuzzed_4xx > 50, "the fuzzer should have sent many malformed requests"
    # /ready's 503 before the model loaded is by design; nothing else may be a 5xx
    server_errors = prom.query('sum by (route, status) (model_api_requests_total{status=~"5.."})')
    assert {r["metric"]["route"] for r in server_errors} <= {"/ready"}, server_errors

    # And the recording rules evaluate on the scraped series
    for series in (
        "model_api:requests:rate5m",
        "model_api:request_duration_seconds:p99_5m",
        "model_api:request_duration_seconds:p50_5m",
        "model_api:predicted_rows:rate5m",
        "model_api:error_ratio:rate5m",
        "model_api:feature_drift_psi:max",
    ):
        wait_for(f"recording rule {series} to have a value", lambda s=series: prom.query(s), timeout=30)
    assert prom.value("max(model_api:error_ratio:rate5m)") == 0.0

    # And the dashboards' queries are valid PromQL that return data
    dashboard = json.loads((project / "monitoring/grafana/dashboards/model-api.json").read_text())
    exprs = [
        t["expr"].replace("$__rate_interval", "1m").replace("$__range", "5m")
        for p in dashboard["panels"]
        for t in p.get("targets", [])
    ]
    empty = [e for e in exprs if not prom.query(e)]
    assert not empty, f"dashboard queries without data: {empty}"

    # When the window holds rows like the training data again (the fuzzer's are extreme)
    window = (rows * 3)[:1000]
    for start in range(0, len(window), 100):
        status, body = post_json(f"{api}/predict/batch", {"rows": window[start : start + 100]})
        assert status == 200, body
    threshold = prom.value("model_api_drift_psi_threshold")
    assert threshold is not None and threshold > 0
    # Then no feature drifts
    stable = wait_for(
        "the drift gauges to settle below the threshold",
        lambda: (v := prom.value("model_api:feature_drift_psi:max")) is not None and v < threshold,
        timeout=30,
    )
    assert stable
    wait_for(
        "no feature drift alert pending or firing",
        lambda: not prom.alerts("ModelFeatureDrift", "pending") + prom.alerts("ModelFeatureDrift"),
        timeout=30,
    )

    # When the recent requests carry a feature shifted by three standard deviations
    name = next(iter(rows[0]))
    values = [r[name] for r in rows]
    mean = sum(values) / len(values)
    spread = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    shifted = [{**r, name: r[name] + 3 * spread} for r in (rows * 3)[:1000]]
    for start in range(0, len(shifted), 100):
        status, body = post_json(f"{api}/predict/batch", {"rows": shifted[start : start + 100]})
        assert status == 200, body

    # Then the drift gauge of that feature crosses the threshold in Prometheus
    psi = wait_for(
        f"PSI of {name} above {threshold}",
        lambda: (
            (v := prom.value(f'model_api_feature_drift_psi{{feature="{name}"}}')) is not None
            and v > threshold
            and v
        ),
        timeout=30,
    )
    assert psi > threshold
    # And the drift alert fires for that feature only
    firing = wait_for(
        f"ModelFeatureDrift to fire for {name} only",
        lambda: {a["labels"]["feature"] for a in prom.alerts("ModelFeatureDrift")} == {name},
        timeout=60,
    )
    assert firing
    # And Alertmanager receives it
    am = f"http://127.0.0.1:{stack['am_port']}/api/v2/alerts?active=true"
    received = wait_for(
        "Alertmanager to hold the drift alert",
        lambda: [
            a
            for a in get_json(am)
            if a["labels"].get("alertname") == "ModelFeatureDrift" and a["labels"].get("feature") == name
        ],
        timeout=60,
    )
    assert received[0]["status"]["state"] in {"active", "suppressed", "unprocessed"}, received
