"""Shared by bench_serving.py and bench_drift.py: generated projects with a serving bundle.

* :func:`project`: the template on its defaults (the demo data, a linear model), rendered
  into ``build/bench/project``; ``make setup``, then ``models/bundle`` built with the
  generated tests' helper (the same default model the pipeline trains).
* :func:`mixed_project`: ``andamio new --data-file`` on a generated mixed-type table
  (numeric with missing values, categorical with a rare level, boolean, three string
  classes; ``tests/support/datagen.py``) into ``build/bench/mixed``, then ``make pipeline``: the
  default real-data model (histogram gradient boosting), trained the way a team does.

Each is built once and reused while the template has not changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "bench"
sys.path.insert(0, str(ROOT / "tests"))

os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

MIXED_ROWS = 5000  # rows of the mixed table the benchmark model is trained on


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


def _fresh(dest: Path, stamp: Path, digest: str) -> bool:
    return stamp.is_file() and stamp.read_text() == digest and (dest / "models/bundle/schema.json").is_file()


def project() -> Path:
    """Return the default project (.venv, models/bundle); rebuild it when the template changed."""
    from support.project import copy_template, render_project

    dest, stamp, digest = BUILD / "project", BUILD / "project.digest", _template_digest()
    if _fresh(dest, stamp, digest):
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    BUILD.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        render_project(copy_template(Path(tmp) / "src"), dest)
    print(f"bench: rendered {dest}; make setup ...", flush=True)
    run(dest, "make", "setup")
    # the helper prepares and fits in a scratch root (it copies params.yaml and the contract)
    with tempfile.TemporaryDirectory(dir=BUILD) as scratch:
        code = "import sys; sys.path.insert(0, 'tests'); from pathlib import Path; "
        code += f"from serving_helpers import make_bundle; make_bundle(Path({scratch!r}))"
        run(dest, ".venv/bin/python", "-c", code)
        shutil.rmtree(dest / "models" / "bundle", ignore_errors=True)
        shutil.copytree(Path(scratch) / "models" / "bundle", dest / "models" / "bundle")
    stamp.write_text(digest)
    return dest


def mixed_project() -> Path:
    """Return the mixed-data project (its pipeline run); rebuild it when the template changed."""
    from support import datagen

    dest, stamp, digest = BUILD / "mixed", BUILD / "mixed.digest", _template_digest()
    if _fresh(dest, stamp, digest):
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    BUILD.mkdir(parents=True, exist_ok=True)
    python = datagen.data_python(BUILD / "data-python")
    data = datagen.generate(python, BUILD / "mixed.csv", MIXED_ROWS, seed=5)
    print(f"bench: andamio new {dest} --data-file {data.name}; make pipeline ...", flush=True)
    andamio = str(Path(sys.executable).parent / "andamio")
    run(BUILD, andamio, "new", str(dest), "--data-file", str(data), "--target", datagen.TARGET, "--defaults")
    run(dest, "make", "pipeline")
    stamp.write_text(digest)
    return dest


def package(dest: Path) -> str:
    import yaml

    return yaml.safe_load((dest / ".copier-answers.yml").read_text())["package_name"]


def in_project(dest: Path, code: str) -> dict:
    """Run ``code`` with the project's interpreter; it prints one JSON object last."""
    out = run(dest, str(dest / ".venv" / "bin" / "python"), "-c", code)
    return json.loads(out.strip().splitlines()[-1])
