"""Shared by bench_serving.py and bench_drift.py: one generated project with a bundle.

Renders the template on the defaults into ``build/bench/project`` (once; reused while
the template has not changed), runs ``make setup`` and builds ``models/bundle`` with the
generated tests' helper (the same default model the pipeline trains).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "bench"
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")


def _template_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted((ROOT / "template").rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def run(cwd: Path, *cmd: str) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"`{' '.join(cmd)}` failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def project() -> Path:
    """Return the benchmark project (.venv, models/bundle); rebuild it when the template changed."""
    from conftest import copy_template, render_project

    dest = BUILD / "project"
    stamp = BUILD / "project.digest"
    digest = _template_digest()
    if stamp.is_file() and stamp.read_text() == digest and (dest / "models/bundle/schema.json").is_file():
        return dest
    import shutil
    import tempfile

    shutil.rmtree(dest, ignore_errors=True)
    BUILD.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        render_project(copy_template(Path(tmp) / "src"), dest)
    print(f"bench: rendered {dest}; make setup ...", flush=True)
    run(dest, "make", "setup")
    code = "import sys; sys.path.insert(0, 'tests'); from pathlib import Path; "
    code += "from serving_helpers import make_bundle; make_bundle(Path.cwd())"
    run(dest, ".venv/bin/python", "-c", code)
    stamp.write_text(digest)
    return dest


def package(dest: Path) -> str:
    import yaml

    return yaml.safe_load((dest / ".copier-answers.yml").read_text())["package_name"]


def in_project(dest: Path, code: str) -> dict:
    """Run ``code`` with the project's interpreter; it prints one JSON object last."""
    out = run(dest, str(dest / ".venv" / "bin" / "python"), "-c", code)
    return json.loads(out.strip().splitlines()[-1])
