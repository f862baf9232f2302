"""Tier 4: a generated project pointed at a real MLflow tracking server (tracking_uri answer).

Starts ``mlflow server`` on 127.0.0.1 from the project's own environment, runs the
pipeline and the promotion, then asks the server's REST API what it recorded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from support.process import commit_all, git, sh
from support.servers import free_port

pytestmark = pytest.mark.integration


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def server_project(render, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    project = render({"tracking_uri": uri}, name="with-server")
    commit_all(project)
    sh(project, "make", "setup")
    store = tmp_path / "server"
    store.mkdir()
    log = (store / "server.log").open("w")
    server = subprocess.Popen(
        [
            str(project / ".venv" / "bin" / "mlflow"), "server",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}",
            "--artifacts-destination", str(store / "artifacts"),
        ],
        cwd=store, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"mlflow server did not start:\n{(store / 'server.log').read_text()[-3000:]}"
                    ) from None
                time.sleep(0.5)
        yield project, uri
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        log.close()


def test_pipeline_logs_registers_and_promotes_on_a_tracking_server(server_project):
    project, uri = server_project
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    tracking = sh(project, ".venv/bin/python", "-m", answers["package_name"], "tracking-uri").stdout
    assert tracking.strip() == uri

    sh(project, "make", "pipeline", "promote")

    name = urllib.parse.quote(answers["model_name"])
    alias = _get(f"{uri}/api/2.0/mlflow/registered-models/alias?name={name}&alias=champion")
    version = alias["model_version"]
    assert version["version"] == "1"
    run = _get(f"{uri}/api/2.0/mlflow/runs/get?run_id={version['run_id']}")["run"]
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    metrics = {m["key"] for m in run["data"]["metrics"]}
    params = {p["key"] for p in run["data"]["params"]}
    assert tags["git_commit"] == git(project, "rev-parse", "HEAD").strip()
    assert tags["data_hash"].endswith(".dir")
    assert {"test_accuracy", "train_accuracy"} <= metrics
    assert "estimator" in params
    assert not (project / "mlflow.db").exists(), "the project wrote a local store instead of using the server"
