"""Kubernetes tooling shared by the GitOps tests: kubectl kustomize and two validators.

``kubectl`` comes from PATH or build/tools/kubectl; the npm models of Argo CD and
Prometheus-operator objects from build/tools/k8s-models (both from scripts/bootstrap.sh).
A missing tool skips the test with the reason, except under CI=true where it fails.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from support import ROOT, unavailable

TOOLS = ROOT / "build" / "tools"
NODE_MODELS = TOOLS / "k8s-models"
CRD_SCRIPT = Path(__file__).with_name("validate_crds.mjs")
# Kinds the Kubernetes API itself serves (checked by kubernetes-validate --strict); the
# others are custom resources (checked by the npm models).
CRD_GROUPS = ("argoproj.io/", "monitoring.coreos.com/")


def _missing(what: str) -> None:
    message = f"{what} not installed: run `bash scripts/bootstrap.sh`"
    unavailable(message)


def kubectl() -> str:
    """Return the kubectl to use (PATH first, then the one bootstrap installed)."""
    found = shutil.which("kubectl") or str(TOOLS / "kubectl" / "bin" / "kubectl")
    if not Path(found).is_file():
        _missing("kubectl")
    return found


@functools.cache
def _kustomize(directory: Path) -> str:
    proc = subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, f"kubectl kustomize {directory} failed:\n{proc.stderr}"
    return proc.stdout


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """Render ``directory`` with ``kubectl kustomize`` (once per session); return the objects."""
    return [doc for doc in yaml.safe_load_all(_kustomize(directory)) if doc]


def is_custom(obj: dict[str, Any]) -> bool:
    """Whether ``obj`` is a custom resource (Argo CD, Prometheus operator)."""
    return obj["apiVersion"].startswith(CRD_GROUPS)


def validate_core(objects: list[dict[str, Any]]) -> list[str]:
    """Validate core kinds with kubernetes-validate in strict mode; return the errors."""
    import kubernetes_validate

    errors = []
    for obj in objects:
        if is_custom(obj):
            continue
        try:
            kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {error.message}")
    return errors


def validate_custom(objects: list[dict[str, Any]]) -> tuple[int, str]:
    """Validate custom resources with the npm kubernetes-models; return (exit code, report)."""
    node = shutil.which("node")
    if node is None or not (NODE_MODELS / "node_modules" / "@kubernetes-models" / "argo-cd").is_dir():
        _missing("node and the npm kubernetes-models")
    # ESM imports resolve next to the script: run a copy inside the models folder.
    script = NODE_MODELS / CRD_SCRIPT.name
    shutil.copy2(CRD_SCRIPT, script)
    custom = [obj for obj in objects if is_custom(obj)]
    proc = subprocess.run(
        [str(node), str(script)], input=json.dumps(custom), capture_output=True, text=True, check=False
    )
    return proc.returncode, proc.stdout + proc.stderr
