"""Tier 3 (execute): projects on a team's own data, from a file and from a real database.

Each project (``andamio new --data-file`` for a file, ``data_source=sql`` for a database) runs
``make setup check test pipeline register promote`` on a mixed-type table that tests/support/datagen.py
makes (numeric with missing values, categorical with a rare level, boolean, a 3-class string
label or a float target), serves its bundle and answers a prediction with a known category,
an unseen one and nulls. Then the same project is fed bad
data: the pipeline stops with a clear error and exit != 0, and the model bundle, the
registration report and the MLflow registry stay as they were.

* CSV, classification: a numeric column turning to text; a missing target column.
* Parquet, regression: a numeric column stored as strings.
* SQL (``data_source=sql``) against a real PostgreSQL server (tests/support/postgres.py): an empty
  query result; an unreachable database whose URL holds the password: the message names the
  environment variable, and the password is in no output and no file of the project.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import datagen
from support.postgres import PostgresServer, postgres_server
from support.process import commit_all, sh
from support.scoring_data import facts, score
from support.servers import free_port, http

pytestmark = pytest.mark.slow
__all__ = ["postgres_server"]  # the fixture, imported for this module's tests

ROWS = 3000
LIFECYCLE = ("setup", "check", "test", "pipeline", "register", "promote")
UNSEEN = "category-never-seen-in-training"


@pytest.fixture(scope="module")
def data_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python with pandas and pyarrow to run tests/support/datagen.py (the root venv has neither)."""
    return datagen.data_python(tmp_path_factory.mktemp("datagen") / "venv")


def new_file_project(dest: Path, data_file: Path, task: str) -> Path:
    """Create a project on ``data_file`` the way a team does: ``andamio new --data-file``
    (copies the file under DVC, infers data/contract.yaml, runs make setup, commits).
    """
    sh(
        dest.parent,
        "andamio",
        "new",
        str(dest),
        "--data-file",
        str(data_file),
        "--target",
        datagen.TARGET,
        "--defaults",
        "-d",
        f"ml_task={task}",
    )
    assert (dest / "data" / "contract.yaml").is_file(), "andamio new --data-file wrote no contract"
    assert sh(dest, "git", "status", "--porcelain").stdout == "", "andamio new left changes uncommitted"
    return dest


def registry_state(project: Path, model_name: str) -> dict[str, Any]:
    """The registered versions of ``model_name`` and the champion, from the project's MLflow."""
    code = f"""
import json, subprocess, sys
from mlflow.tracking import MlflowClient
uri = subprocess.run([sys.executable, "-m", {package(project)!r}, "tracking-uri"],
                     capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
c = MlflowClient(uri)
found = c.search_model_versions("name = '{model_name}'")
versions = sorted((int(v.version), v.run_id, v.status) for v in found)
try:
    champion = str(c.get_model_version_by_alias({model_name!r}, "champion").version)
except Exception:
    champion = None
print(json.dumps({{"versions": versions, "champion": champion}}))
"""
    out = sh(project, ".venv/bin/python", "-c", code).stdout
    return json.loads(out.strip().splitlines()[-1])


def package(project: Path) -> str:
    return str(yaml.safe_load((project / ".copier-answers.yml").read_text())["package_name"])


def answers(project: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((project / ".copier-answers.yml").read_text()))


def digest(path: Path) -> str:
    """SHA-256 of a file, or of every file under a folder (names and contents); "(missing)"."""
    if not path.exists():
        return "(missing)"
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        h.update(str(file.relative_to(path if path.is_dir() else path.parent)).encode())
        h.update(file.read_bytes())
    return h.hexdigest()


def outputs_state(project: Path, *extra: str) -> dict[str, Any]:
    """What bad data must not touch: the bundle, the registration report, the registry."""
    state: dict[str, Any] = {
        rel: digest(project / rel) for rel in ("models/bundle", "reports/registration.json", *extra)
    }
    state["registry"] = registry_state(project, answers(project)["model_name"])
    return state


def assert_refused(
    proc: subprocess.CompletedProcess[str], before: dict[str, Any], project: Path, *expected: str
) -> str:
    """The run failed (exit != 0) naming each ``expected`` text, and left the outputs alone."""
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"bad data was accepted:\n{output[-3000:]}"
    for text in expected:
        assert text in output, f"the error does not name {text!r}:\n{output[-3000:]}"
    assert "Traceback" not in output, f"a traceback instead of a clear error:\n{output[-3000:]}"
    after = outputs_state(project, *(k for k in before if k not in ("registry",)))
    changed = [k for k in before if before[k] != after[k]]
    assert not changed, f"bad data changed {changed}: before {before}, after {after}"
    return output


def lifecycle(
    project: Path, env: Mapping[str, str] | None = None, targets: tuple[str, ...] = LIFECYCLE
) -> str:
    """Run the day-one targets; check the gate passed and version 1 is the champion; return
    the output.
    """
    proc = sh(project, "make", *targets, env=env)
    gate = json.loads((project / "reports" / "gate.json").read_text())
    assert gate["passed"] is True, gate
    state = registry_state(project, answers(project)["model_name"])
    assert state["champion"] == "1" and len(state["versions"]) == 1, state
    return proc.stdout + proc.stderr


# --- serving ------------------------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[Any]:
    """Start ``make serve`` of a project on a free 127.0.0.1 port; stop it after the test."""
    procs: list[subprocess.Popen[str]] = []
    logs: list[Any] = []

    def start(project: Path) -> str:
        port = free_port()
        log = (project.parent / f"{project.name}-serve.log").open("w")
        logs.append(log)
        proc = subprocess.Popen(
            ["make", "serve", "HOST=127.0.0.1", f"PORT={port}"],
            cwd=project,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: make, uvicorn and workers stop together
        )
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(
                    f"make serve exited {proc.returncode}:\n{Path(log.name).read_text()[-3000:]}"
                )
            try:
                if http("GET", f"{base}/ready", timeout=2)[0] == 200:
                    return base
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"{base}/ready never answered 200:\n{Path(log.name).read_text()[-3000:]}")

    yield start
    for proc in procs:
        with_group = proc.pid
        try:
            os.killpg(with_group, signal.SIGTERM)
            proc.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(with_group, signal.SIGKILL)
            proc.wait(timeout=30)
    for log in logs:
        log.close()


def example_rows(project: Path) -> dict[str, dict[str, Any]]:
    """Rows built from the bundle's schema: a typical one, one with an unseen category, one
    with a null in each kind of nullable column.
    """
    schema = json.loads((project / "models" / "bundle" / "schema.json").read_text())
    typical: dict[str, Any] = {}
    for feature in schema["features"]:
        if feature["kind"] == "numeric":
            typical[feature["name"]] = round((feature["min"] + feature["max"]) / 2, 3)
        elif feature["kind"] == "categorical":
            typical[feature["name"]] = feature["categories"][0]
        else:
            typical[feature["name"]] = True
    first_categorical = next(f["name"] for f in schema["features"] if f["kind"] == "categorical")
    nulls = {
        kind: next(f["name"] for f in schema["features"] if f["kind"] == kind and f["nullable"])
        for kind in ("numeric", "categorical", "boolean")
    }
    return {
        "known": typical,
        "unseen": {**typical, first_categorical: UNSEEN},
        "null": {**typical, **dict.fromkeys(nulls.values())},
    }


def assert_predicts(base: str, project: Path, task: str) -> None:
    schema = json.loads((project / "models" / "bundle" / "schema.json").read_text())
    for case, row in example_rows(project).items():
        status, body = http("POST", f"{base}/predict", row)
        assert status == 200, f"{case} row {row} -> {status} {body}"
        if task == "classification":
            assert body["prediction"] in schema["classes"], f"{case}: {body} not one of {schema['classes']}"
        else:
            assert isinstance(body["prediction"], float) and math.isfinite(body["prediction"]), body


# --- bad data -----------------------------------------------------------------------------


def rewrite_csv(path: Path, change: Any) -> None:
    """Rewrite a CSV file through ``change(header, rows) -> (header, rows)`` (stdlib only)."""
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header, rows = next(reader), list(reader)
    header, rows = change(header, rows)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def numeric_to_text(column: str, every: int = 7) -> Any:
    def change(header: list[str], rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
        i = header.index(column)
        for n, row in enumerate(rows):
            if n % every == 0:
                row[i] = f"about {n}"
        return header, rows

    return change


def drop_column(column: str) -> Any:
    def change(header: list[str], rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
        i = header.index(column)
        return header[:i] + header[i + 1 :], [row[:i] + row[i + 1 :] for row in rows]

    return change


# --- the tests ----------------------------------------------------------------------------


def test_csv_classification_project_runs_serves_and_refuses_bad_data(data_python, tmp_path, served):
    # Given a team's CSV: mixed types, missing values, a rare level, a 3-class text label
    data_file = datagen.generate(data_python, tmp_path / "customers.csv", ROWS, seed=11)
    project = new_file_project(tmp_path / "csv-project", data_file, "classification")
    contract = yaml.safe_load((project / "data" / "contract.yaml").read_text())
    assert sorted(contract["target"]["classes"]) == sorted(datagen.CLASSES), contract["target"]
    kinds = {name: column["kind"] for name, column in contract["columns"].items()}
    assert kinds == {k: v for k, v in datagen.column_kinds().items() if k != datagen.TARGET}, kinds

    # When it runs the day-one lifecycle
    lifecycle(project)

    # Then the model learned the label, and the API answers known, unseen and null values
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    assert metrics["accuracy"] > 0.6, metrics
    assert_predicts(served(project), project, "classification")

    # When the team scores its own table in batch: as CSV and as Parquet, with the streaming
    # engine and on Spark (CSV through Spark's reader, Parquet read by the Python workers)
    scores = tmp_path / "scores"
    as_parquet = "import sys, pandas as pd; pd.read_csv(sys.argv[1]).to_parquet(sys.argv[2])"
    sh(project, ".venv/bin/python", "-c", as_parquet, str(data_file), str(tmp_path / "customers.parquet"))
    spark = {"SCORE_ENGINE": "spark", "SPARK_MASTER": "local[2]"}
    for source in (data_file, tmp_path / "customers.parquet"):
        local, on_spark = scores / f"local-{source.suffix[1:]}.parquet", scores / f"spark-{source.suffix[1:]}"
        score(project, source, local)
        score(project, source, on_spark, **spark)
        # Then both engines give the same rows: the text labels, the model input, the lineage
        found = facts(project, local, on_spark)
        assert found["rows"] == [ROWS, ROWS] and found["row_ids_are_positions"], found
        assert found["equal"], f"{source.name}: columns differing between the engines: {found['differing']}"
        assert set(found["predictions"]) <= set(datagen.CLASSES) and found["versions"] == ["1"], found
    # And the drift check reads the Spark output
    drift = sh(project, "make", "drift", f"CURRENT={scores / 'spark-csv'}", check=False)
    assert drift.returncode == 0 and "drift check passed" in drift.stdout, drift.stdout + drift.stderr

    data_path = project / yaml.safe_load((project / "params.yaml").read_text())["data"]["path"]
    original = data_path.read_bytes()
    before = outputs_state(project)

    # When a numeric column starts holding text, the pipeline stops and names the column
    rewrite_csv(data_path, numeric_to_text("num_1"))
    refused = sh(project, "make", "pipeline", check=False)
    assert_refused(refused, before, project, "num_1")
    report = json.loads((project / "reports" / "validation.json").read_text())
    assert report["passed"] is False and any(f["column"] == "num_1" for f in report["failures"]), report

    # When the target column is missing, the same
    data_path.write_bytes(original)
    rewrite_csv(data_path, drop_column(datagen.TARGET))
    refused = sh(project, "make", "pipeline", check=False)
    assert_refused(refused, before, project, datagen.TARGET)


def test_parquet_regression_project_runs_serves_and_refuses_a_type_change(data_python, tmp_path, served):
    # Given a team's Parquet file with a float target
    data_file = datagen.generate(data_python, tmp_path / "sales.parquet", ROWS, seed=12, task="regression")
    project = new_file_project(tmp_path / "parquet-project", data_file, "regression")
    contract = yaml.safe_load((project / "data" / "contract.yaml").read_text())
    assert contract["target"]["kind"] == "numeric", contract["target"]

    # When it runs the day-one lifecycle
    lifecycle(project)

    # Then the model explains the target and the API answers known, unseen and null values
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    assert metrics["r2"] > 0.5, metrics
    assert_predicts(served(project), project, "regression")

    # When a new version of the file stores a numeric column as text, the pipeline stops
    before = outputs_state(project)
    data_path = project / yaml.safe_load((project / "params.yaml").read_text())["data"]["path"]
    code = (
        "import sys, pandas as pd; f = pd.read_parquet(sys.argv[1]);"
        " f['num_2'] = f['num_2'].map(lambda v: 'n/a' if pd.isna(v) else f'{v:.0f} units');"
        " f.to_parquet(sys.argv[1], index=False)"
    )
    sh(project, ".venv/bin/python", "-c", code, str(data_path))
    refused = sh(project, "make", "pipeline", check=False)
    assert_refused(refused, before, project, "num_2")


def test_sql_project_runs_against_postgresql_and_keeps_the_password_secret(
    project_factory, data_python, tmp_path, served, postgres_server: PostgresServer
):
    # Given a training table in a real PostgreSQL database
    data_file = datagen.generate(data_python, tmp_path / "training.csv", ROWS, seed=13)
    assert postgres_server.load_csv("training_data", data_file, datagen.column_kinds()) == ROWS
    url_env = "TRAINING_DB_URL"
    env = {url_env: postgres_server.url}
    project = project_factory.new(
        tmp_path / "sql-project",
        {
            "project_name": "Orders SQL",
            "data_source": "sql",
            "target": datagen.TARGET,
            "ml_task": "classification",
            "sql_url_env": url_env,
        },
    )
    sh(project, "git", "init", "-q", "-b", "main")
    commit_all(project, "initial")

    # When the team infers the contract from a first snapshot and runs the lifecycle
    first = sh(project, "make", "setup", "schema", env=env)
    commit_all(project, "data contract")
    output = lifecycle(project, env, ("check", "test", "pipeline", "register", "promote"))
    assert postgres_server.password not in first.stdout + first.stderr + output, "the password leaked"

    # Then the snapshot holds the table, and the API answers known, unseen and null values
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert "ingest" in lock["stages"], lock
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    assert metrics["accuracy"] > 0.6, metrics
    assert_predicts(served(project), project, "classification")

    # When the team scores its own table in batch: as CSV and as Parquet, with the streaming
    # engine and on Spark (CSV through Spark's reader, Parquet read by the Python workers)
    scores = tmp_path / "scores"
    as_parquet = "import sys, pandas as pd; pd.read_csv(sys.argv[1]).to_parquet(sys.argv[2])"
    sh(project, ".venv/bin/python", "-c", as_parquet, str(data_file), str(tmp_path / "customers.parquet"))
    spark = {"SCORE_ENGINE": "spark", "SPARK_MASTER": "local[2]"}
    for source in (data_file, tmp_path / "customers.parquet"):
        local, on_spark = scores / f"local-{source.suffix[1:]}.parquet", scores / f"spark-{source.suffix[1:]}"
        score(project, source, local)
        score(project, source, on_spark, **spark)
        # Then both engines give the same rows: the text labels, the model input, the lineage
        found = facts(project, local, on_spark)
        assert found["rows"] == [ROWS, ROWS] and found["row_ids_are_positions"], found
        assert found["equal"], f"{source.name}: columns differing between the engines: {found['differing']}"
        assert set(found["predictions"]) <= set(datagen.CLASSES) and found["versions"] == ["1"], found
    # And the drift check reads the Spark output
    drift = sh(project, "make", "drift", f"CURRENT={scores / 'spark-csv'}", check=False)
    assert drift.returncode == 0 and "drift check passed" in drift.stdout, drift.stdout + drift.stderr
    before = outputs_state(project, "data/raw/snapshot.parquet")

    # When the query returns no rows, a new snapshot is refused and the old one kept
    postgres_server.psql("TRUNCATE training_data")
    refused = sh(project, "make", "ingest", check=False, env=env)
    assert_refused(refused, before, project, url_env, "no rows")

    # When the database is unreachable, the error names the variable, never the password
    unreachable = {url_env: postgres_server.url_for(port=free_port())}
    refused = sh(project, "make", "ingest", check=False, env=unreachable)
    output = assert_refused(refused, before, project, url_env)
    assert postgres_server.password not in output, "the password leaked into the output"

    # And no file of the project holds the password (its venv aside)
    secret = postgres_server.password.encode()
    leaks = [
        str(p.relative_to(project))
        for p in project.rglob("*")
        if p.is_file() and ".venv" not in p.relative_to(project).parts and secret in p.read_bytes()
    ]
    assert not leaks, f"the database password is written in {leaks}"
