"""The project's own images, built and run for real (tiers 3 and 4).

One generated project (defaults: serving on) runs its setup and pipeline once; then
- its ``serve`` extra alone (no DVC, matplotlib, Optuna or MLflow server) installs and
  serves the bundle under uvicorn;
- ``make build`` builds the API image with a real Docker daemon (started here when none
  runs) on a base image that the project's own ``scripts/base_image.sh`` makes from Debian
  packages (no registry here), installing exactly the exported lock;
- ``make image-smoke`` runs it non-root on a read-only root filesystem and checks the
  HEALTHCHECK, ``/ready``, ``/version`` and a prediction;
- ``make build-pipeline`` builds the pipeline image, whose DVC reads the stages.
The build containers use the host's network (``BUILD_ARGS=--network host``): the daemon
here has no bridge. The image size and time to ready are printed (see support.ci.timed).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import tomllib
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from support.ci import timed
from support.container_engine import docker_daemon
from support.process import commit_all, sh
from support.servers import free_port, http

pytestmark = [pytest.mark.slow, pytest.mark.integration]

# The daemon here has no bridge: build steps reach the package index through the host's.
BUILD = ("ENGINE=docker", "BUILD_ARGS=--network host")
NOT_SERVING = {"dvc", "matplotlib", "optuna", "mlflow", "flask", "alembic", "sqlalchemy"}


@pytest.fixture(scope="module")
def trained(project_factory, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A default project under git that ran setup (which locked it) and its pipeline."""
    project = project_factory.new(tmp_path_factory.mktemp("image") / "project")
    commit_all(project, "initial")
    sh(project, "make", "setup", "COMPILE_BYTECODE=")
    commit_all(project, "lock")  # the team commits uv.lock and requirements/
    sh(project, "make", "pipeline")
    return project


@pytest.fixture(scope="module")
def base_image(trained: Path) -> Iterator[str]:
    """A running Docker daemon and the project's local Debian base image in it."""
    with docker_daemon():
        made = sh(trained, "bash", "scripts/base_image.sh", env={"ENGINE": "docker"})
        yield made.stdout.strip().splitlines()[-1]
        # the images of earlier runs, untagged by this one's: the data root stays bounded,
        # the layers the tagged images use stay as the next run's build cache
        sh(trained, "docker", "image", "prune", "--force")


def _package(project: Path) -> str:
    return yaml.safe_load((project / ".copier-answers.yml").read_text())["package_name"]


def _slug(project: Path) -> str:
    return tomllib.loads((project / "pyproject.toml").read_text())["project"]["name"]


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _pins(requirements: Path) -> tuple[dict[str, str], set[str]]:
    """name -> version of a compiled requirements file (`make lock`), and the names with markers."""
    pins, marked = {}, set()
    for line in requirements.read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            requirement, _, marker = line.rstrip(" \\").partition(";")
            name, version = requirement.strip().split("==")
            pins[_normal(name)] = version
            if marker.strip():
                marked.add(_normal(name))
    return pins, marked


def _example_row(base: str) -> dict[str, object]:
    status, openapi = http("GET", f"{base}/openapi.json")
    assert status == 200, openapi
    properties = openapi["components"]["schemas"]["Row"]["properties"]
    return {name: spec["examples"][0] for name, spec in properties.items()}


def test_the_serve_extra_alone_serves_the_bundle(trained: Path, tmp_path: Path):
    # Given an environment with the project and its serve extra only
    venv = tmp_path / "serve-only"
    python = venv / "bin" / "python"
    sh(trained, "uv", "venv", "--quiet", "--python", "3.11", str(venv))
    sh(trained, "uv", "pip", "install", "--quiet", "--python", str(python), ".[serve]")
    frozen = sh(trained, "uv", "pip", "freeze", "--python", str(python)).stdout
    names = {line.split("==")[0].split(" @ ")[0].lower() for line in frozen.splitlines()}

    # Then none of the pipeline's tools is there, and the MLflow client is
    assert not names & NOT_SERVING, f"the serve extra pulls in {sorted(names & NOT_SERVING)}"
    assert {"mlflow-skinny", "skops", "fastapi", "uvicorn"} <= names, sorted(names)

    # When uvicorn serves the bundle from that environment
    port = free_port()
    log = (tmp_path / "uvicorn.log").open("w")
    proc = subprocess.Popen(
        [str(venv / "bin" / "uvicorn"), "--factory", f"{_package(trained)}.serving:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
        cwd=trained, stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"uvicorn exited:\n{(tmp_path / 'uvicorn.log').read_text()[-3000:]}"
            try:
                if http("GET", f"{base}/ready", timeout=2)[0] == 200:
                    break
            except (OSError, urllib.error.URLError):
                pass
            assert time.monotonic() < deadline, (tmp_path / "uvicorn.log").read_text()[-3000:]
            time.sleep(0.5)

        # Then it is ready, names its model and predicts
        status, version = http("GET", f"{base}/version")
        assert status == 200 and version["model_name"], version
        status, answer = http("POST", f"{base}/predict", _example_row(base))
        assert status == 200 and "prediction" in answer, answer
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_make_build_without_an_engine_says_what_to_install(trained: Path):
    proc = sh(trained, "make", "build", "ENGINE=", check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no container engine: install docker (with its daemon running), podman or buildah" in proc.stderr


def test_the_api_image_builds_from_the_lock_and_passes_the_smoke_test(trained: Path, base_image: str):
    # When make build builds the API image on the local Debian base
    started = time.monotonic()
    sh(trained, "make", "build", *BUILD, f"BASE_IMAGE={base_image}")
    timed("image: make build", time.monotonic() - started)
    image = f"{_slug(trained)}:latest"

    # Then the image holds exactly the exported lock (core + serve), nothing of the pipeline
    listing = sh(
        trained, "docker", "run", "--rm", "--network", "none", image, "python", "-c",
        "import importlib.metadata as m; print('\\n'.join(sorted("
        "f\"{d.metadata['Name'].lower().replace('_', '-')}=={d.version}\" for d in m.distributions())))",
    ).stdout.split()  # fmt: skip
    installed = {_normal(name): version for name, version in (line.split("==") for line in listing)}
    pins, marked = _pins(trained / "requirements" / "serve.txt")
    assert installed.pop(_normal(_slug(trained))) == "0.1.0", "the project's wheel is not in the image"
    unlocked = {n: v for n, v in installed.items() if pins.get(n) != v}
    assert not unlocked, f"image packages that are not the lock's: {unlocked}"
    assert set(pins) - set(installed) <= marked, f"locked, not installed: {set(pins) - set(installed)}"
    assert not set(installed) & NOT_SERVING, sorted(set(installed) & NOT_SERVING)

    # When make image-smoke runs it
    smoke = sh(trained, "make", "image-smoke", "ENGINE=docker")
    out = smoke.stdout

    # Then each check passed, in order: non-root, read-only, healthy, ready, version, prediction
    steps = [line for line in out.splitlines() if line.startswith("image-smoke: ")]
    expected = (
        r"started image-smoke-\d+ from \S+: uid 10001, read-only root, tmpfs /tmp, no network",
        r"HEALTHCHECK healthy after [\d.]+ s",
        r"/ready 200 after [\d.]+ s",
        r"runs as uid 10001; root filesystem mounted read-only \(ro\)",
        r"/version 200: model \S+, runtime \S+",
        r"/predict 200: prediction \S+",
        r"stopped and removed image-smoke-\d+",
    )
    assert len(steps) == len(expected), out
    for step, pattern in zip(steps, expected, strict=True):
        assert re.fullmatch(f"image-smoke: {pattern}", step), f"{step!r} is not {pattern!r}:\n{out}"
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["seconds_to_ready"] > 0 and summary["size_mb"] > 100, summary
    timed(f"image: {summary['size_mb']} MB, time to ready", summary["seconds_to_ready"])
    leftover = sh(trained, "docker", "ps", "--all", "--quiet", "--filter", "name=image-smoke-").stdout
    assert leftover.strip() == "", "image-smoke left its container behind"


def test_the_pipeline_image_carries_the_stages_tools(trained: Path, base_image: str):
    # When make build-pipeline builds the pipeline target
    started = time.monotonic()
    sh(trained, "make", "build-pipeline", *BUILD, f"BASE_IMAGE={base_image}")
    timed("image: make build-pipeline", time.monotonic() - started)
    slug = _slug(trained)

    # Then, as uid 10001 and without git, DVC reads the stages and MLflow's server is there
    run = sh(
        trained, "docker", "run", "--rm", "--network", "none", f"{slug}-pipeline:latest", "sh", "-c",
        "id -u && dvc stage list && mlflow server --help >/dev/null && echo mlflow-server-ok",
    ).stdout  # fmt: skip
    assert run.splitlines()[0] == "10001", run
    for stage in ("prepare", "train", "evaluate", "register"):
        assert stage in run, f"stage {stage} missing from the image's dvc.yaml:\n{run}"
    assert "mlflow-server-ok" in run, run
