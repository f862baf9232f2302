"""kfp (Kubeflow Pipelines SDK) for the tests, and the pre-compiled pipeline the template ships.

kfp never enters a generated project's environment: it lives in build/tools/kfp (pinned like
the generated Makefile's KFP_PIN), created here on first use and reused after.

The template ships the compiled IR YAML of its pipeline module (template/.../kubeflow/
pipeline.yaml.jinja), so a new project has it before anyone installs kfp.  It is kfp's output
for the default answers with the project slug put back as ``{{ project_slug }}`` and kfp's own
placeholders (``{{$}}``) kept raw.  After changing pipeline.py.jinja, regenerate it:

    PYTHONPATH=tests .venv/bin/python -m support.kfp_tools

tests/template/execute/test_orchestrator_kubeflow.py proves the shipped file equals a fresh compile
(`make kfp-check` in a rendered project).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from support import ROOT
from support.project import copy_template, render_project

KFP_VENV = ROOT / "build" / "tools" / "kfp"
KUBEFLOW_DIR = (
    ROOT
    / "template"
    / "{% if orchestrator != 'none' %}orchestration{% endif %}"
    / ("{% if orchestrator == 'kubeflow' %}kubeflow{% endif %}")
)
IR_TEMPLATE = KUBEFLOW_DIR / "pipeline.yaml.jinja"
# kfp's runtime placeholders in the IR: {{$}}, {{$.inputs.parameters['x']}}, ...
KFP_PLACEHOLDER = re.compile(r"\{\{[^{}]*\}\}")


def makefile_pin(makefile: Path) -> str:
    """The kfp pin a generated project compiles with (``KFP_PIN := kfp==X`` in its Makefile)."""
    found = re.search(r"^KFP_PIN := (kfp==\S+)$", makefile.read_text(encoding="utf-8"), re.M)
    if not found:
        raise AssertionError(f"{makefile} has no KFP_PIN line")
    return found.group(1)


def kfp_venv(pin: str) -> Path:
    """Return build/tools/kfp with ``pin`` installed (created once, then reused)."""
    marker = KFP_VENV / f".installed-{pin}"
    if marker.is_file():
        return KFP_VENV
    shutil.rmtree(KFP_VENV, ignore_errors=True)
    uv = _uv()
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    if uv:
        subprocess.run(
            [uv, "venv", "--quiet", "--python", sys.executable, str(KFP_VENV)], check=True, env=env
        )
        subprocess.run(
            [uv, "pip", "install", "--quiet", "--python", str(KFP_VENV / "bin" / "python"), pin],
            check=True,
            env=env,
        )
    else:
        subprocess.run([sys.executable, "-m", "venv", str(KFP_VENV)], check=True)
        subprocess.run([str(KFP_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", pin], check=True)
    marker.touch()
    return KFP_VENV


def kfp_runtime(pin: str) -> Path:
    """Return build/tools/kfp-runtime: ``pin`` alone, without its dependencies (a --target dir).

    What the pipeline image adds to the project's environment for the components: kfp's
    executor needs none of kfp's dependencies (its runtime imports only kfp), so the image
    keeps the project's own pins (protobuf, requests) that kfp's would downgrade.
    """
    target = ROOT / "build" / "tools" / "kfp-runtime"
    marker = target / f".installed-{pin}"
    if marker.is_file():
        return target
    shutil.rmtree(target, ignore_errors=True)
    uv = _uv()
    if uv:
        cmd = [uv, "pip", "install", "--quiet", "--no-deps", "--target", str(target), pin]
    else:
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), pin]
    subprocess.run(cmd, check=True, env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"})
    marker.touch()
    return target


def _uv() -> str | None:
    return shutil.which("uv", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


def ir_template(ir_text: str, slug: str) -> str:
    """Turn kfp's IR for project ``slug`` into the template file that renders it back."""
    assert not re.search(r"\{%|%\}|\{#|#\}", ir_text), "the IR has Jinja-like tags: escape them here"
    raw = KFP_PLACEHOLDER.sub(lambda m: "{% raw %}" + m.group(0) + "{% endraw %}", ir_text)
    return raw.replace(slug, "{{ project_slug }}")


def regenerate() -> Path:
    """Compile the default project's pipeline with kfp and write IR_TEMPLATE from it."""
    import tomllib

    with tempfile.TemporaryDirectory() as tmp:
        src = copy_template(Path(tmp) / "template")
        project = render_project(src, Path(tmp) / "project", {"orchestrator": "kubeflow"})
        slug = tomllib.loads((project / "pyproject.toml").read_text())["project"]["name"]
        python = kfp_venv(makefile_pin(project / "Makefile")) / "bin" / "python"
        out = Path(tmp) / "pipeline.yaml"
        env = {k: v for k, v in os.environ.items() if k != "PIPELINE_IMAGE"}
        subprocess.run(
            [str(python), "orchestration/kubeflow/pipeline.py", str(out)], cwd=project, env=env, check=True
        )
        IR_TEMPLATE.write_text(ir_template(out.read_text(encoding="utf-8"), slug), encoding="utf-8")
    return IR_TEMPLATE


if __name__ == "__main__":
    print(regenerate())
