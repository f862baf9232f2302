"""Tier 4: the generated API's /invocations against `mlflow models serve`, same model.

A project made with ``andamio new --data-file`` from a generated mixed-type table (numeric
with missing values, categorical with a rare level, boolean, three string classes) runs
its pipeline; then ``mlflow models serve --env-manager local`` and ``make serve`` serve
the bundle's model on 127.0.0.1 and get the same payloads in every format of MLflow's
scoring protocol: the predictions must be equal, so that a client switches by changing
the URL.  Then schemathesis fuzzes the mixed-type API: no response may be a 5xx.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import datagen, unavailable
from support.process import sh
from support.servers import Server, ServerNotReadyError, free_port
from typer.testing import CliRunner

from andamio.cli import app

pytestmark = pytest.mark.integration

ROWS = 1500  # rows of the generated table: a few seconds of training


def post(port: int, path: str, body: bytes, content_type: str = "application/json") -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        text = error.read()
        try:
            return error.code, json.loads(text)
        except ValueError:
            return error.code, text.decode(errors="replace")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project made from a mixed CSV with `andamio new --data-file`, its pipeline run."""
    work = tmp_path_factory.mktemp("invocations")
    python = datagen.data_python(tmp_path_factory.mktemp("data-python") / "venv")
    data = datagen.generate(python, work / "customers.csv", ROWS, seed=11)
    dest = work / "customers"
    result = CliRunner().invoke(
        app, ["new", str(dest), "--data-file", str(data), "--target", datagen.TARGET, "--defaults"]
    )
    assert result.exit_code == 0, result.output
    sh(dest, "make", "pipeline")
    return dest


@pytest.fixture(scope="module")
def servers(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    logs = tmp_path_factory.mktemp("servers")
    venv = project / ".venv" / "bin"
    started: dict[str, Server] = {}
    try:
        port = free_port()
        started["mlflow"] = Server(
            "mlflow",
            [
                str(venv / "mlflow"), "models", "serve", "-m", "models/bundle/model",
                "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port),
                "--workers", "1",
            ],
            project, port, "/ping", logs / "mlflow.log",
        )  # fmt: skip
        port = free_port()
        started["api"] = Server(
            "api",
            ["make", "serve", f"PORT={port}", "HOST=127.0.0.1"],
            project, port, "/ready", logs / "api.log",
        )  # fmt: skip
        yield started
    except ServerNotReadyError as error:
        pytest.fail(str(error))
    finally:
        for server in started.values():
            server.stop()


def _rows(project: Path, schema: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """``n`` rows of the raw table as a client of ``mlflow models serve`` sends them.

    Missing values are null; booleans are 1.0 / 0.0 (the model's MLflow signature says
    double); categorical values are text.
    """
    kinds = {f["name"]: f["kind"] for f in schema["features"]}
    with (project / "data" / "raw" / "customers.csv").open(newline="") as handle:
        raw = [row for _, row in zip(range(n), csv.DictReader(handle), strict=False)]
    rows = []
    for record in raw:
        row: dict[str, Any] = {}
        for name, kind in kinds.items():
            value = record[name]
            if value == "":
                row[name] = None
            elif kind == "numeric":
                row[name] = float(value)
            elif kind == "boolean":
                row[name] = 1.0 if value.strip().lower() == "true" else 0.0
            else:
                row[name] = value
        rows.append(row)
    return rows


def _payloads(rows: list[dict[str, Any]], names: list[str]) -> dict[str, tuple[bytes, str]]:
    as_json = "application/json"
    split = {"columns": names, "data": [[r[n] for n in names] for r in rows]}
    columns = {n: [r[n] for r in rows] for n in names}
    header = ",".join(names)
    lines = [",".join("" if r[n] is None else str(r[n]) for n in names) for r in rows]
    return {
        "dataframe_split": (json.dumps({"dataframe_split": split}).encode(), as_json),
        "dataframe_records": (json.dumps({"dataframe_records": rows}).encode(), as_json),
        "instances": (json.dumps({"instances": rows}).encode(), as_json),
        "inputs-columns": (json.dumps({"inputs": columns}).encode(), as_json),
        "inputs-one-row": (json.dumps({"inputs": rows[0]}).encode(), as_json),
        "csv": ("\n".join([header, *lines]).encode(), "text/csv"),
    }


def test_invocations_answer_what_mlflow_models_serve_answers(project: Path, servers: dict[str, Server]):
    schema = json.loads((project / "models" / "bundle" / "schema.json").read_text())
    names = [f["name"] for f in schema["features"]]
    categorical = [f["name"] for f in schema["features"] if f["kind"] == "categorical"]
    nullable = [f["name"] for f in schema["features"] if f["nullable"]]
    assert categorical and nullable, f"the generated table should have both: {schema}"
    rows = _rows(project, schema, 60)
    # Given rows with an unseen category, nulls in nullable columns, null in every column
    rows[1] = {**rows[1], categorical[0]: "a category nobody has seen"}
    rows[2] = {**rows[2], **dict.fromkeys(nullable)}
    rows[3] = dict.fromkeys(names)

    # When both servers get the same payloads in every format of the protocol
    answers: dict[str, dict[str, Any]] = {}
    for fmt, (body, content_type) in _payloads(rows, names).items():
        for name, server in servers.items():
            status, answer = post(server.port, "/invocations", body, content_type)
            assert status == 200, (name, fmt, answer)
            answers.setdefault(fmt, {})[name] = answer

    # Then the predictions are the same, label for label, and are the contract's classes
    for fmt, pair in answers.items():
        assert pair["api"] == pair["mlflow"], fmt
    predictions = answers["dataframe_split"]["api"]["predictions"]
    assert len(predictions) == len(rows)
    assert set(predictions) <= set(schema["classes"]), predictions
    ready = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{servers['api'].port}/ready").read())
    assert ready["runtime"] == "numpy-trees", "the default real-data model should run compiled"


def test_schemathesis_finds_no_server_error_in_the_mixed_type_api(servers: dict[str, Server], tmp_path: Path):
    st = Path(sys.executable).parent / "st"
    if not st.exists():
        message = "schemathesis (root dev extra) is missing: run scripts/bootstrap.sh"
        unavailable(message)
    base = f"http://127.0.0.1:{servers['api'].port}"
    # When schemathesis fuzzes every operation of the OpenAPI schema (mixed-type fields)
    fuzz = subprocess.run(
        [
            str(st), "run", f"{base}/openapi.json", "--checks", "not_a_server_error",
            "--max-examples", "60", "--seed", "11", "--generation-database", "none",
            "--no-color", "--max-time", "120", "--report", "junit", "--report-dir", str(tmp_path),
        ],
        capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    # Then no response is a server error, and it sent many requests
    assert fuzz.returncode == 0, fuzz.stdout[-4000:] + fuzz.stderr[-2000:]
    generated = re.search(r"(\d+) generated", fuzz.stdout)
    assert generated and int(generated.group(1)) > 100, fuzz.stdout[-2000:]
    # And the API's own counters agree: no 5xx on any route (/ready's 503 before the model
    # loaded is by design)
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    errors = [
        line
        for line in metrics.splitlines()
        if line.startswith("model_api_requests_total{")
        and re.search(r'status="5\d\d"', line)
        and 'route="/ready"' not in line
        and not line.endswith(" 0.0")
    ]
    assert not errors, errors
