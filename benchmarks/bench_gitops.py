"""Benchmark: the GitOps, supply-chain and air-gap checks of issue 5, timed.

Renders one project with Kubernetes and air-gapped mode on, then times (median of
``--repeat`` runs) what a developer or CI runs on it: ``kubectl kustomize`` per
kustomization, strict schema validation of the core kinds, the npm models' validation of
Argo CD / Prometheus-operator objects, ``promote-image`` (edit + branch + commit), and a
detect-secrets scan of every tracked file (with the number of findings).  No target: the
numbers are reported for the README/report.

    python benchmarks/bench_gitops.py [--repeat 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.k8s_tools import _kustomize as kustomize_cached  # noqa: E402
from support.k8s_tools import kustomize, validate_core, validate_custom  # noqa: E402
from support.matrix import MIRRORS  # noqa: E402
from support.project import copy_template, render_project  # noqa: E402


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    """Run ``fn`` ``repeat`` times; return the median duration in milliseconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 1)


def git(project: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)


def main() -> int:
    """Render, time every check, print (and optionally write) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as scratch:
        src = copy_template(Path(scratch) / "template")
        counter = iter(range(1_000_000))

        def render() -> Path:
            return render_project(src, Path(scratch) / f"p{next(counter)}", MIRRORS)

        results["render_k8s_airgapped_ms"] = median_ms(render, args.repeat)
        project = render()
        k8s = project / "deploy" / "k8s"
        targets = [k8s / "overlays" / "staging", k8s / "overlays" / "prod", k8s / "training"]
        argocd = project / "deploy" / "argocd"
        for target in [*targets, argocd]:

            def build(target: Path = target) -> None:
                kustomize_cached.cache_clear()
                kustomize(target)

            results[f"kustomize_{target.name}_ms"] = median_ms(build, args.repeat)
        objects = [obj for target in [*targets, argocd] for obj in kustomize(target)]
        results["objects"] = len(objects)
        results["validate_core_strict_ms"] = median_ms(lambda: validate_core(objects), args.repeat)
        assert validate_core(objects) == []
        results["validate_crds_npm_ms"] = median_ms(lambda: validate_custom(objects), args.repeat)
        assert validate_custom(objects)[0] == 0

        git(project, "init", "-q", "-b", "main")
        git(project, "add", "-A")
        git(project, "commit", "-q", "-m", "initial")
        tags = iter(range(1_000_000))

        def promote() -> None:
            tag = f"t{next(tags)}"
            subprocess.run(
                ["make", "-s", "promote-image", f"TAG={tag}", "MODEL_VERSION=2"],
                cwd=project,
                check=True,
                capture_output=True,
            )
            git(project, "switch", "-q", "main")

        results["promote_image_ms"] = median_ms(promote, args.repeat)
        hook = str(Path(sys.executable).parent / "detect-secrets-hook")
        files = subprocess.run(
            ["git", "ls-files"], cwd=project, capture_output=True, text=True, check=True
        ).stdout.split()

        def scan() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [hook, "--baseline", ".secrets.baseline", *files],
                cwd=project,
                capture_output=True,
                text=True,
            )

        results["detect_secrets_files"] = len(files)
        results["detect_secrets_ms"] = median_ms(scan, args.repeat)
        results["detect_secrets_findings_exit"] = scan().returncode
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
