"""A Docker daemon for the image tests: the running one, or one started here.

The testbed has the Debian ``docker.io`` package (scripts/bootstrap.sh installs it) but no
service manager to start its daemon: :func:`docker_daemon` starts ``dockerd`` without a
bridge and without iptables rules (containers get no network; builds use the host's), waits
until it answers, and stops it, by its PID, when the tests are done. The daemon's data root
is the default one, so built layers and the local base image survive between runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

STATE = Path(os.environ.get("ANDAMIO_DOCKER_STATE", "/var/tmp/andamio-docker"))


def docker_answers() -> bool:
    """True when a Docker daemon answers the docker CLI."""
    if shutil.which("docker") is None:
        return False
    proc = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False, timeout=30)
    return proc.returncode == 0


@contextlib.contextmanager
def docker_daemon(timeout: float = 60) -> Iterator[str]:
    """Yield ``docker`` once a daemon answers; one started here is stopped afterwards."""
    if docker_answers():
        yield "docker"
        return
    dockerd = shutil.which("dockerd")
    if dockerd is None or shutil.which("docker") is None:
        pytest.fail("no Docker daemon and no dockerd to start: run scripts/bootstrap.sh (docker.io)")
    if os.geteuid() != 0:
        pytest.fail("starting dockerd needs root (as .ci/run runs): start a Docker daemon first")
    STATE.mkdir(parents=True, exist_ok=True)
    with (STATE / "dockerd.log").open("ab") as log:
        proc = subprocess.Popen(
            [dockerd, "--bridge=none", "--iptables=false", "--ip-masq=false",
             "--pidfile", str(STATE / "dockerd.pid")],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while not docker_answers():
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (STATE / "dockerd.log").read_text(errors="replace")[-3000:]
                pytest.fail(f"dockerd did not come up (exit {proc.poll()}):\n{tail}")
            time.sleep(0.5)
        yield "docker"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
