"""Benchmark: wall time of the generated CI jobs run by act and gitlab-ci-local.

Renders a project with the three providers (serving off, as in the integration tests), then
times, once each:
* act, pull_request event: check + test + pipeline (GitHub Actions, host executor);
* gitlab-ci-local, standalone and shared style: check + test + pipeline (shell executor);
* the library self-tests (act and gitlab-ci-local against the fixture project).
Prints one line per run and, with --json, writes the numbers.  No target is asserted: the
times depend on the machine (2 cores) and on a warm uv cache.

    python benchmarks/bench_ci.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"

from support.ci import (  # noqa: E402
    EXEC_ANSWERS,
    LIBRARY,
    act,
    runner_env,
    use_local_library,
    uv_cache_dir,
)
from support.process import commit_all  # noqa: E402
from support.project import copy_template  # noqa: E402


def render(template: Path, dest: Path, data: dict) -> Path:
    import copier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copier.run_copy(str(template), str(dest), data=data, defaults=True, unsafe=True, quiet=True)
    commit_all(dest)
    return dest


def gitlab(project: Path, *args: str) -> int:
    command = ["gitlab-ci-local", "--force-shell-executor", "--shell-isolation"]
    command += ["--variable", f"UV_CACHE_DIR={uv_cache_dir()}", *args]
    return subprocess.run(command, cwd=project, env=runner_env(), capture_output=True, check=False).returncode


def timed(results: dict, label: str, run) -> None:
    started = time.monotonic()
    code = run()
    results[label] = {"seconds": round(time.monotonic() - started, 1), "exit_code": code}
    print(f"{label}: {results[label]['seconds']} s (exit {code})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ci-"))
    results: dict = {}
    try:
        template = copy_template(work / "template")
        standalone = render(template, work / "standalone", EXEC_ANSWERS)
        subprocess.run(["git", "update-ref", "refs/remotes/origin/main", "HEAD"], cwd=standalone, check=True)
        timed(results, "act check+test+pipeline", lambda: act(standalone, work / "act")[0])
        timed(
            results,
            "gitlab-ci-local standalone check+test+pipeline",
            lambda: gitlab(standalone, "check", "test", "pipeline"),
        )

        shared = render(template, work / "shared", {**EXEC_ANSWERS, "ci_style": "shared"})
        use_local_library(shared)
        timed(
            results,
            "gitlab-ci-local shared check+test+pipeline",
            lambda: gitlab(shared, "check", "test", "pipeline"),
        )

        library = work / "library"
        shutil.copytree(LIBRARY, library)
        commit_all(library)
        timed(
            results,
            "act library self-test",
            lambda: act(library, work / "act-lib", "-W", ".github/workflows/self-test.yml")[0],
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
