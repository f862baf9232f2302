"""Airflow (issue 14): the generated DAGs parse, run the pipeline, and fail where it fails.

Render tier: the DAG file exists only for ``orchestrator=airflow`` and compiles.
Slow + integration: Airflow itself, in build/tools/airflow (pinned by the generated
orchestration/airflow/requirements.txt; created once, then reused), with a SQLite metadata
database in a temporary AIRFLOW_HOME.  ``airflow dags test`` runs the DAGs of a rendered
project after ``make setup`` (tasks in-process), then Airflow's own scheduler with a
LocalExecutor and its API server run the retrain the drift DAG queued; the Kubernetes
mode is checked by building the pods its KubernetesPodOperator tasks would create (the
provider's own ``build_pod_request_obj``) and validating them with kubernetes-validate.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.ci import timed
from support.airflow_tools import airflow_env, airflow_services, airflow_venv
from support.k8s_tools import validate_core
from support.process import commit_all, sh

PACKAGE = "breast_cancer_classifier"  # the default answers
SLUG = "breast-cancer-classifier"
STAGES = ["prepare", "train", "evaluate", "register"]
PIPELINE, DRIFT = f"{SLUG}_pipeline", f"{SLUG}_drift"
DAG_FILE = f"orchestration/airflow/dags/{PACKAGE}_dags.py"

# Builds the pods of every KubernetesPodOperator task of the DAG file argv[1] (imported as
# Airflow's DAG processor would) and writes them, with each task's retries, to argv[2].
POD_SCRIPT = """
import json, runpy, sys
from kubernetes.client import ApiClient

module = runpy.run_path(sys.argv[1])
out = dict(pods=dict(), retries=dict(), schedules=dict())
for dag in (module["pipeline_dag"], module["drift_dag"]):
    out["schedules"][dag.dag_id] = module["SCHEDULE" if dag is module["pipeline_dag"] else "DRIFT_SCHEDULE"]
    for task in dag.tasks:
        out["retries"][task.task_id] = task.retries
        if hasattr(task, "build_pod_request_obj"):
            pod = task.build_pod_request_obj()
            out["pods"][task.task_id] = ApiClient().sanitize_for_serialization(pod)
with open(sys.argv[2], "w") as handle:
    json.dump(out, handle)
"""
# The hook behind build_pod_request_obj loads a kube config (it never connects here).
KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: offline, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: offline, user: {token: unused}}]
contexts: [{name: offline, context: {cluster: offline, user: offline}}]
current-context: offline
"""


# --- render tier --------------------------------------------------------------------------


def test_the_dag_file_compiles_and_a_sql_project_ingests_first(render):
    # Given a project rendered for Airflow on a SQL source (the render matrix checks that
    # the other orchestrator answers get no Airflow folder)
    project = render(
        {"orchestrator": "airflow", "data_source": "sql", "sql_query": "SELECT * FROM t", "target": "y"},
        name="af-sql",
    )
    # Then the DAG file compiles and runs ingest before the stages of every project
    source = (project / DAG_FILE).read_text()
    compile(source, DAG_FILE, "exec")
    stages = ", ".join(f'"{stage}"' for stage in ["ingest", *STAGES])
    assert f"STAGES = ({stages})" in source, "a sql project snapshots its query first"
    # ...and params.yaml carries the schedule and retries it reads
    orchestration = yaml.safe_load((project / "params.yaml").read_text())["orchestration"]
    assert orchestration["drift_schedule"] and orchestration["retries"] >= 0, orchestration
    assert (project / "orchestration" / "airflow" / "requirements.txt").read_text().count("==") == 3


# --- slow + integration: the real Airflow -------------------------------------------------


def _check(proc: subprocess.CompletedProcess[str], what: str) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, (
        f"{what} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc


def _runs(home: Path, dag_id: str) -> list[tuple[str, str]]:
    """(run_id, state) of every run of ``dag_id`` in the metadata database, oldest first."""
    with sqlite3.connect(home / "airflow.db") as db:
        return db.execute(
            "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id", (dag_id,)
        ).fetchall()


def _task_states(home: Path, dag_id: str) -> dict[str, str | None]:
    """Task id -> state in the last run of ``dag_id``."""
    run_id = _runs(home, dag_id)[-1][0]
    with sqlite3.connect(home / "airflow.db") as db:
        rows = db.execute(
            "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", (dag_id, run_id)
        ).fetchall()
    return dict(rows)


def _registered_versions(project: Path) -> int:
    """Versions of the project's model in its own MLflow registry (asked with its own mlflow)."""
    code = (
        f"from {PACKAGE}.settings import load_settings\n"
        "from mlflow import MlflowClient\n"
        "s = load_settings()\n"
        "print(len(MlflowClient(s.tracking_uri).search_model_versions(f\"name = '{s.model_name}'\")))\n"
    )
    proc = _check(sh(project, ".venv/bin/python", "-c", code, check=False), "the MLflow registry query")
    return int(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.integration
def test_airflow_runs_the_pipeline_gates_it_and_retrains_on_drift(render, tmp_path):
    # Given Airflow (own venv, SQLite metadata) and a rendered project after `make setup`
    airflow = str(airflow_venv() / "bin" / "airflow")
    project = render({"orchestrator": "airflow"}, name="project")  # tmp_path / "project"
    commit_all(project)
    started = time.monotonic()
    _check(sh(project, "make", "setup", check=False), "make setup")
    timed("make setup", time.monotonic() - started)
    home = tmp_path / "airflow-home"
    env = airflow_env(home, project / "orchestration" / "airflow" / "dags")

    def airflow_cli(*args: str) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        proc = sh(project, airflow, *args, check=False, env=env)
        timed(f"airflow {' '.join(args)}", time.monotonic() - started)  # the test's budget
        return proc

    _check(airflow_cli("db", "migrate"), "airflow db migrate")
    _check(airflow_cli("dags", "reserialize"), "airflow dags reserialize")

    # Then the DAG folder imports cleanly and holds both DAGs
    errors = _check(airflow_cli("dags", "list-import-errors", "-o", "json"), "list-import-errors").stdout
    # (Airflow logs its warnings to stdout too: the answer is the last line)
    assert errors.strip().splitlines()[-1] in ("[]", "No data found"), f"import errors: {errors}"
    with sqlite3.connect(home / "airflow.db") as db:
        dag_ids = {row[0] for row in db.execute("SELECT dag_id FROM dag")}
    assert dag_ids == {PIPELINE, DRIFT}, dag_ids

    # When the pipeline DAG runs
    proc = airflow_cli("dags", "test", PIPELINE)
    # Then every stage succeeded and the registry got a version
    _check(proc, f"airflow dags test {PIPELINE}")
    assert _runs(home, PIPELINE)[-1][1] == "success"
    assert _task_states(home, PIPELINE) == dict.fromkeys(STAGES, "success")
    assert json.loads((project / "reports" / "gate.json").read_text())["passed"] is True
    assert _registered_versions(project) == 1

    # When the quality gate cannot be met
    params_path = project / "params.yaml"
    params_text = params_path.read_text()
    params = yaml.safe_load(params_text)
    params["gate"]["min"]["accuracy"] = 1.01
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        # prepare and train have nothing to redo (DVC would skip them): marked done, not run
        proc = airflow_cli("dags", "test", PIPELINE, "--mark-success-pattern", "^(prepare|train)$")
    finally:
        params_path.write_text(params_text)
    # Then the run fails at evaluate, nothing is registered
    assert proc.returncode != 0, f"a failing gate must fail the DAG run:\n{proc.stdout[-3000:]}"
    assert _runs(home, PIPELINE)[-1][1] == "failed"
    states = _task_states(home, PIPELINE)
    assert states["evaluate"] == "failed" and states["register"] == "upstream_failed", states
    assert _registered_versions(project) == 1

    # When the drift DAG checks a batch like the training data
    batches = project / "data" / "incoming"
    batches.mkdir(parents=True)
    shutil.copy(project / "data" / "prepared" / "test.parquet", batches / "batch-1.parquet")
    runs_before = len(_runs(home, PIPELINE))
    _check(airflow_cli("dags", "test", DRIFT), f"airflow dags test {DRIFT} (no drift)")
    # Then no retraining is triggered
    assert _task_states(home, DRIFT) == {"detect_drift": "skipped", "retrain": "skipped"}
    assert len(_runs(home, PIPELINE)) == runs_before

    # When the newest batch has drifted (one feature tripled)
    shift = (
        "import sys, pandas as pd\n"
        "f = pd.read_parquet(sys.argv[1]); f['mean_radius'] = f['mean_radius'] * 3\n"
        "f.to_parquet(sys.argv[2])\n"
    )
    _check(
        sh(
            project,
            ".venv/bin/python",
            "-c",
            shift,
            str(batches / "batch-1.parquet"),
            str(batches / "batch-2.parquet"),
            check=False,
        ),
        "writing the drifted batch",
    )
    os.utime(batches / "batch-2.parquet", (time.time() + 60, time.time() + 60))  # newest
    _check(airflow_cli("dags", "test", DRIFT), f"airflow dags test {DRIFT} (drift)")
    # Then the drift check passes the word on and a pipeline run is queued
    assert _task_states(home, DRIFT) == {"detect_drift": "success", "retrain": "success"}
    runs = _runs(home, PIPELINE)
    assert len(runs) == runs_before + 1 and runs[-1][1] == "queued", runs
    drift_report = json.loads((project / "reports" / "drift" / "drift.json").read_text())
    assert "mean_radius" in json.dumps(drift_report), "the drift report must name the shifted feature"

    # When Airflow's scheduler runs, with a LocalExecutor on this worker (the project checked out
    # and set up), and the retrain has something to learn (here a training setting; in life, data)
    params["gate"]["min"]["accuracy"] = yaml.safe_load(params_text)["gate"]["min"]["accuracy"]
    params["train"]["logistic_regression"]["C"] = 0.5
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    _check(airflow_cli("dags", "unpause", PIPELINE), "airflow dags unpause")
    with airflow_services(Path(airflow), env, tmp_path / "airflow-logs") as services:
        started = time.monotonic()
        deadline = started + 600
        while _runs(home, PIPELINE)[-1][1] not in ("success", "failed") and time.monotonic() < deadline:
            time.sleep(2)
        timed("the queued retrain run (LocalExecutor)", time.monotonic() - started)
    # Then the queued retrain run ran to success, each task queued by the scheduler to its
    # LocalExecutor, and the registry got the retrained model's version
    assert services["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert runs[-1][0] == _runs(home, PIPELINE)[-1][0], "the run the drift DAG queued"
    scheduler_log = (tmp_path / "airflow-logs" / "scheduler.log").read_text()
    assert _runs(home, PIPELINE)[-1][1] == "success", scheduler_log[-3000:]
    assert _task_states(home, PIPELINE) == dict.fromkeys(STAGES, "success")
    assert "Loaded executor: :LocalExecutor:" in scheduler_log
    with sqlite3.connect(home / "airflow.db") as db:
        queued_by = db.execute(
            "SELECT DISTINCT job.job_type FROM task_instance AS ti JOIN job ON job.id = ti.queued_by_job_id"
            " WHERE ti.dag_id = ? AND ti.run_id = ?",
            (PIPELINE, runs[-1][0]),
        ).fetchall()
    assert queued_by == [("SchedulerJob",)], queued_by
    assert _registered_versions(project) == 2


def _pods(project_factory, tmp_path: Path, **env: str) -> dict[str, Any]:
    """Build the pods of the kubernetes mode from a DAG file deployed alone (no params.yaml)."""
    project = tmp_path / "project"
    if not project.exists():
        project_factory.new(project, {"orchestrator": "airflow"})
    deployed = tmp_path / "airflow-dags" / "dags"  # a real Airflow's DAG folder: the file alone
    deployed.mkdir(parents=True, exist_ok=True)
    shutil.copy(project / DAG_FILE, deployed)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    out = tmp_path / "pods.json"
    base = {k: v for k, v in os.environ.items() if k not in ("PIPELINE_IMAGE", "ANDAMIO_AIRFLOW_MODE")}
    proc = subprocess.run(
        [
            str(airflow_venv() / "bin" / "python"),
            "-c",
            POD_SCRIPT,
            str(deployed / Path(DAG_FILE).name),
            str(out),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={
            **base,
            **airflow_env(tmp_path / "airflow-home", deployed),
            "KUBECONFIG": str(kubeconfig),
            **env,
        },
        timeout=300,
    )
    _check(proc, "building the KubernetesPodOperator pods")
    return json.loads(out.read_text())


@pytest.mark.slow
@pytest.mark.integration
def test_kubernetes_mode_builds_valid_pods_of_the_pipeline_image(project_factory, tmp_path):
    # Given the DAG file deployed alone, switched to kubernetes by one variable
    built = _pods(
        project_factory,
        tmp_path,
        ANDAMIO_AIRFLOW_MODE="kubernetes",
        PIPELINE_IMAGE="registry.example.org/ml/p-pipeline:1",
    )
    pods = built["pods"]
    # Then every stage and the drift check is a pod of the pipeline image, running the stage
    assert list(pods) == [*STAGES, "detect_drift"], list(pods)
    for task_id, pod in pods.items():
        (container,) = pod["spec"]["containers"]
        assert container["image"] == "registry.example.org/ml/p-pipeline:1", task_id
        command = " ".join(container["command"] + container["args"])
        expected = (
            f"python -m {PACKAGE} drift" if task_id == "detect_drift" else f"dvc repro --pull {task_id}"
        )
        assert expected in command, command
        assert pod["metadata"]["namespace"] == f"{SLUG}-training"
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    # ...and Kubernetes' own schemas accept them (strict: no unknown field)
    assert validate_core(list(pods.values())) == []
    broken = json.loads(json.dumps(pods["train"]))
    broken["spec"]["containers"][0]["resource"] = broken["spec"]["containers"][0].pop("resources")
    assert validate_core([broken]), "kubernetes-validate must refuse an unknown field"
    # ...with the defaults when no params.yaml is there: retries 1, evaluate never retried
    assert built["retries"] == {**dict.fromkeys(STAGES, 1), "evaluate": 0, "detect_drift": 0, "retrain": 1}
    assert built["schedules"] == {PIPELINE: None, DRIFT: "@daily"}

    # When Airflow Variables are set (here through AIRFLOW_VAR_*), they win over the environment
    built = _pods(
        project_factory,
        tmp_path,
        AIRFLOW_VAR_ANDAMIO_AIRFLOW_MODE="kubernetes",
        AIRFLOW_VAR_PIPELINE_IMAGE="registry.example.org/ml/p-pipeline:2",
        PIPELINE_IMAGE="ignored:0",
        AIRFLOW_VAR_ANDAMIO_RETRIES="3",
        AIRFLOW_VAR_ANDAMIO_SCHEDULE="@weekly",
    )
    # Then the pods use the Variable's image, and the retries and schedule follow them
    assert {pod["spec"]["containers"][0]["image"] for pod in built["pods"].values()} == {
        "registry.example.org/ml/p-pipeline:2"
    }
    assert built["retries"]["train"] == 3 and built["retries"]["evaluate"] == 0
    assert built["schedules"][PIPELINE] == "@weekly"
