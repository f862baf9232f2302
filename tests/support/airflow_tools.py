"""Apache Airflow for the tests and the benchmark: its own venv and a throwaway AIRFLOW_HOME.

Airflow never enters a generated project's environment: it lives in build/tools/airflow,
installed with uv from the generated project's pins (template/.../airflow/requirements.txt),
created on first use (about 5 s with a warm uv cache) and reused while the pins stay the same.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support import ROOT
from support.ci import timed
from support.servers import Server, free_port

AIRFLOW_TEMPLATE = (
    ROOT
    / "template"
    / "{% if orchestrator != 'none' %}orchestration{% endif %}"
    / "{% if orchestrator == 'airflow' %}airflow{% endif %}"
)
REQUIREMENTS = AIRFLOW_TEMPLATE / "requirements.txt"
AIRFLOW_VENV = ROOT / "build" / "tools" / "airflow"


def airflow_venv() -> Path:
    """Return build/tools/airflow with the pinned Airflow installed (created once, then reused)."""
    pins = REQUIREMENTS.read_bytes()
    marker = AIRFLOW_VENV / f".installed-{hashlib.sha256(pins).hexdigest()[:16]}"
    AIRFLOW_VENV.parent.mkdir(parents=True, exist_ok=True)
    # two xdist workers may ask at once: one installs, the other waits
    with (AIRFLOW_VENV.parent / ".airflow.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file():
            return AIRFLOW_VENV
        shutil.rmtree(AIRFLOW_VENV, ignore_errors=True)
        uv = shutil.which("uv", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        assert uv, "uv not found (it comes with andamio's .venv: make bootstrap)"
        started = time.monotonic()
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
        python = str(AIRFLOW_VENV / "bin" / "python")
        subprocess.run(
            [uv, "venv", "--quiet", "--python", sys.executable, str(AIRFLOW_VENV)], check=True, env=env
        )
        subprocess.run(
            [uv, "pip", "install", "--quiet", "--python", python, "-r", str(REQUIREMENTS)],
            check=True,
            env=env,
        )
        timed("airflow venv install", time.monotonic() - started)
        marker.touch()
    return AIRFLOW_VENV


def airflow_env(home: Path, dags: Path) -> dict[str, str]:
    """Environment of an Airflow with its SQLite metadata in ``home``, reading ``dags``."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "OMP_NUM_THREADS": "1",
    }


@contextmanager
def airflow_services(airflow: Path, env: dict[str, str], logs: Path) -> Iterator[dict[str, str]]:
    """Run Airflow's API server and scheduler (LocalExecutor) for the block, on loopback ports.

    The scheduler queues the runs' tasks to its LocalExecutor, whose worker processes run
    them and report to the API server's execution API, as on an Airflow host with the project
    checked out.  Both are stopped (their process groups) when the block ends; yields their
    environment, with the logs in ``logs``.
    """
    api, health = free_port(), free_port()
    env = {
        **env,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api}/execution/",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(health),
    }
    logs.mkdir(parents=True, exist_ok=True)
    started: list[Server] = []
    try:
        for name, port, ready in (("api-server", api, "/api/v2/version"), ("scheduler", health, "/health")):
            server = Server(
                f"airflow {name}", [str(airflow), name], logs, port, ready, logs / f"{name}.log", env=env
            )
            started.append(server)
            timed(f"airflow {name} start", server.startup)
        yield env
    finally:
        for server in reversed(started):
            server.stop()
