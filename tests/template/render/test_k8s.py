"""Tier 2 (render): the Kubernetes + GitOps manifests render with kustomize and validate.

Core kinds are checked by kubernetes-validate in strict mode (unknown fields are errors);
Argo CD and Prometheus-operator objects by the typed npm kubernetes-models.  Beyond schema
validity: the pods are locked down and sized, probes hit the API's /health and /ready on the
port the Dockerfile exposes, and the cluster's rules are the promtool-tested ones.
"""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.k8s_tools import is_custom, kustomize, validate_core, validate_custom

pytestmark = pytest.mark.render

OVERLAYS = ["staging", "prod"]


@pytest.fixture(scope="module")
def project(project_factory, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return project_factory.new(tmp_path_factory.mktemp("k8s") / "project")


def _answers(project: Path) -> dict[str, Any]:
    return yaml.safe_load((project / ".copier-answers.yml").read_text())


def _by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


@pytest.mark.parametrize("target", [*(f"overlays/{o}" for o in OVERLAYS), "training"])
def test_kustomization_renders_and_validates(project, target):
    # Given the rendered kustomization, when kustomize builds it
    objects = kustomize(project / "deploy" / "k8s" / target)
    kinds = sorted({o["kind"] for o in objects})
    if target == "training":
        assert kinds == ["ConfigMap", "Job"], kinds
    else:
        assert kinds == sorted(
            [
                "ConfigMap",
                "Deployment",
                "HorizontalPodAutoscaler",
                "NetworkPolicy",
                "PodDisruptionBudget",
                "PrometheusRule",
                "Service",
                "ServiceAccount",
                "ServiceMonitor",
            ]
        ), kinds
    # Then every core object passes strict schema validation
    assert validate_core(objects) == []
    # And every custom resource validates against its typed model
    custom = [o for o in objects if is_custom(o)]
    if custom:
        code, report = validate_custom(objects)
        assert code == 0, report
        assert report.count("OK ") == len(custom), report


def test_argocd_applications_follow_the_overlays(project):
    objects = kustomize(project / "deploy" / "argocd")
    code, report = validate_custom(objects)
    assert code == 0, report
    assert sorted(o["kind"] for o in objects) == ["AppProject", "Application", "Application"]
    answers = _answers(project)
    (app_project,) = _by_kind(objects, "AppProject")
    assert app_project["spec"]["sourceRepos"] == [answers["gitops_repo_url"]]
    for app in _by_kind(objects, "Application"):
        source, dest = app["spec"]["source"], app["spec"]["destination"]
        overlay = project / source["path"]
        assert (overlay / "kustomization.yaml").is_file(), f"{app['metadata']['name']}: no {overlay}"
        assert source["repoURL"] == answers["gitops_repo_url"]
        namespace = yaml.safe_load((overlay / "kustomization.yaml").read_text())["namespace"]
        assert dest["namespace"] == namespace, "Argo CD must deploy where the overlay says"
        assert app["spec"]["project"] == app_project["metadata"]["name"]
        assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
        assert any(d["namespace"] == namespace for d in app_project["spec"]["destinations"])


def _containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


@pytest.mark.parametrize("target", [*(f"overlays/{o}" for o in OVERLAYS), "training"])
def test_pods_run_locked_down_with_requests_and_limits(project, target):
    objects = kustomize(project / "deploy" / "k8s" / target)
    workloads = _by_kind(objects, "Deployment") + _by_kind(objects, "Job")
    assert workloads, "no workload rendered"
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        name = workload["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in _containers(pod):
            where = f"{name}/{container['name']}"
            ctx = container["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True, where
            assert ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["capabilities"]["drop"] == ["ALL"], where
            for kind in ("requests", "limits"):
                assert set(container["resources"][kind]) == {"cpu", "memory"}, f"{where} {kind}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_hit_health_and_ready_on_the_exposed_port(project, overlay):
    objects = kustomize(project / "deploy" / "k8s" / "overlays" / overlay)
    (deployment,) = _by_kind(objects, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    exposed = re.search(r"^EXPOSE (\d+)", (project / "Dockerfile").read_text(), re.MULTILINE)
    assert exposed, "the Dockerfile exposes no port"
    assert ports["http"] == int(exposed.group(1)), "the probes must target the port the image serves"
    answers = _answers(project)
    assert container["image"] == f"{answers['image_repository']}:latest"
    (config,) = _by_kind(objects, "ConfigMap")
    ref = container["envFrom"][0]["configMapRef"]["name"]
    assert ref == config["metadata"]["name"], "kustomize must point the pods at the hashed ConfigMap"
    assert config["data"]["MODEL_VERSION"] == "unset"


def test_prod_runs_more_pods_than_staging(project):
    scale = {}
    for overlay in OVERLAYS:
        objects = kustomize(project / "deploy" / "k8s" / "overlays" / overlay)
        (hpa,) = _by_kind(objects, "HorizontalPodAutoscaler")
        (pdb,) = _by_kind(objects, "PodDisruptionBudget")
        assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"], f"{overlay}: PDB blocks drains"
        scale[overlay] = (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"])
    assert scale["prod"][0] > scale["staging"][0] and scale["prod"][1] > scale["staging"][1], scale


def test_cluster_rules_and_scrape_match_the_monitoring_folder(project):
    objects = kustomize(project / "deploy" / "k8s" / "overlays" / "prod")
    rules = {r["metadata"]["name"]: r["spec"] for r in _by_kind(objects, "PrometheusRule")}
    monitoring = project / "monitoring"
    assert rules["model-api-recording"] == yaml.safe_load((monitoring / "recording_rules.yml").read_text())
    assert rules["model-api-alerts"] == yaml.safe_load((monitoring / "alert_rules.yml").read_text())
    (service,) = _by_kind(objects, "Service")
    (monitor,) = _by_kind(objects, "ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items(), "ServiceMonitor selects nothing"
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    # The operator names the job after the Service: the rules' job label must match it.
    jobs = set(re.findall(r'job="([^"]+)"', (monitoring / "alert_rules.yml").read_text()))
    assert jobs == {service["metadata"]["name"]}, jobs


def test_make_manifests_writes_every_kustomization(project):
    from support.k8s_tools import kubectl

    kubectl_dir = str(Path(kubectl()).parent)
    env = {"PATH": f"{kubectl_dir}:/usr/bin:/bin"}
    proc = subprocess.run(["make", "manifests"], cwd=project, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rendered = sorted(p.name for p in (project / "build" / "k8s").iterdir())
    assert rendered == ["prod.yaml", "staging.yaml", "training.yaml"], rendered
    listed = subprocess.run(["make", "help"], cwd=project, capture_output=True, text=True).stdout
    assert "manifests" in listed and "promote-image" in listed, "make help must list the GitOps targets"


def test_validators_reject_broken_manifests(project):
    # Given valid objects with one mistake each, the validators must say no
    objects = kustomize(project / "deploy" / "k8s" / "overlays" / "staging")
    (deployment,) = copy.deepcopy(_by_kind(objects, "Deployment"))
    deployment["spec"]["replica"] = 2  # typo of replicas: only strict validation catches it
    assert validate_core([deployment]), "kubernetes-validate --strict accepted an unknown field"
    apps = kustomize(project / "deploy" / "argocd")
    broken = copy.deepcopy(_by_kind(apps, "Application")[0])
    broken["spec"]["source"]["repoURL"] = 42  # wrong type
    code, report = validate_custom([broken])
    assert code == 1 and "FAIL" in report, report
    (monitor,) = copy.deepcopy(_by_kind(objects, "ServiceMonitor"))
    del monitor["spec"]["selector"]  # required
    code, report = validate_custom([monitor])
    assert code == 1 and "FAIL" in report, report


@pytest.mark.parametrize("answers", [{"kubernetes": False}, {"serving": False}], ids=["off", "no-serving"])
def test_no_kubernetes_files_without_the_answer(render, answers):
    project = render(answers)
    # (copier leaves the shared deploy/ folder empty; git does not track empty folders)
    leftovers = [
        p
        for p in project.glob("*/**/*")
        if p.is_file()
        and p.parts[len(project.parts)] in {"deploy", "scripts"}
        # deploy/ansible belongs to the `ansible` answer, not to `kubernetes`
        and p.parts[len(project.parts) : len(project.parts) + 2] != ("deploy", "ansible")
        # scripts/change_request.py opens every CI PR/MR (template updates too), not only GitOps ones
        and p.relative_to(project).as_posix() != "scripts/change_request.py"
        # the image's base and smoke test belong to the `serving` answer
        and p.relative_to(project).as_posix() not in {"scripts/base_image.sh", "scripts/image_smoke.py"}
    ]
    assert leftovers == [], leftovers
    assert "promote-image" not in (project / "Makefile").read_text()
