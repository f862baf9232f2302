"""Server processes for tests and benchmarks: started in their own session, stopped by PID.

A server (``make serve``, ``mlflow models serve``) is started with the project's venv first
on PATH, polled on a readiness path until it answers 200, and stopped by sending SIGTERM to
its process group (``make`` and its uvicorn child, or MLflow's gunicorn and its workers),
then SIGKILL when it is still there after a grace period.  Used by
tests/template/execute/ and benchmarks/bench_serving.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(method: str, url: str, body: Any = None, timeout: float = 10) -> tuple[int, Any]:
    """One request to 127.0.0.1; returns (status, decoded JSON or text)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


class ServerNotReadyError(RuntimeError):
    """The server exited or did not answer its readiness path in time (message: log tail)."""


class Server:
    """A server process in its own session, on 127.0.0.1:``port``, stopped by PID."""

    def __init__(
        self,
        name: str,
        cmd: list[str],
        cwd: Path,
        port: int,
        ready: str,
        log_path: Path,
        env: dict[str, str] | None = None,
        timeout: float = 240,
    ) -> None:
        """Start ``cmd`` in ``cwd`` and wait until ``GET ready`` answers 200.

        ``env`` is added to the environment, after ``MLFLOW_MODELS_WORKERS=1``; the
        project's ``.venv/bin`` goes first on PATH.  Raises :class:`ServerNotReadyError`
        (after stopping the process) when it exits or is not ready within ``timeout`` s.
        """
        self.name, self.port, self.log_path = name, port, log_path
        full_env = {**os.environ, "MLFLOW_MODELS_WORKERS": "1", **(env or {})}
        # `make serve` and `mlflow models serve` run uvicorn from PATH: the project's venv first
        full_env["PATH"] = f"{cwd / '.venv' / 'bin'}{os.pathsep}{full_env.get('PATH', '')}"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=full_env, start_new_session=True
            )
        started = time.perf_counter()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{ready}", timeout=2) as answer:
                    if answer.status == 200:
                        self.startup = time.perf_counter() - started
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        tail = log_path.read_text(errors="replace")[-3000:]
        raise ServerNotReadyError(f"{name} did not become ready ({log_path}):\n{tail}")

    def stop(self, grace: float = 15) -> None:
        """SIGTERM the process group; SIGKILL it when still running after ``grace`` s."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
