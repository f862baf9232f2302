"""The files a rendering must produce, as a function of the answers.

Each entry is a path pattern (``{pkg}`` is the package name) and the condition
under which it is generated.  A rendering must produce these files and no other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Answers = dict[str, Any]
ALWAYS: Callable[[Answers], bool] = lambda _a: True  # noqa: E731
SERVING: Callable[[Answers], bool] = lambda a: bool(a.get("serving", True))  # noqa: E731
# kubernetes is asked only when serving is on (unasked: not recorded in the answers file)
KUBERNETES: Callable[[Answers], bool] = lambda a: SERVING(a) and bool(a.get("kubernetes"))  # noqa: E731
AIRGAPPED: Callable[[Answers], bool] = lambda a: bool(a.get("airgapped"))  # noqa: E731
ANSIBLE: Callable[[Answers], bool] = lambda a: bool(a.get("ansible", True))  # noqa: E731
DEMO: Callable[[Answers], bool] = lambda a: a.get("data_source", "demo") == "demo"  # noqa: E731
SQL: Callable[[Answers], bool] = lambda a: a.get("data_source") == "sql"  # noqa: E731
# orchestrator is asked only when serving is on (unasked: none)
AIRFLOW: Callable[[Answers], bool] = lambda a: SERVING(a) and a.get("orchestrator") == "airflow"  # noqa: E731
KUBEFLOW: Callable[[Answers], bool] = lambda a: SERVING(a) and a.get("orchestrator") == "kubeflow"  # noqa: E731


def _standalone(answers: Answers) -> bool:
    # ci_style is asked only when a provider is chosen; unasked means standalone
    return answers.get("ci_style", "standalone") == "standalone"


MANIFEST: list[tuple[str, Callable[[Answers], bool]]] = [
    (".copier-answers.yml", ALWAYS),
    (".gitignore", ALWAYS),
    (".dvcignore", ALWAYS),
    (".dvc/.gitignore", ALWAYS),
    (".dvc/config", ALWAYS),
    (".pre-commit-config.yaml", ALWAYS),
    ("Makefile", ALWAYS),
    # the library's forge and GitOps code, vendored when standalone (shared: fetched at its tag)
    (".andamio-ci/resources/andamio/forge.py", _standalone),
    (".andamio-ci/resources/andamio/promote_image.py", _standalone),
    ("README.md", ALWAYS),
    ("dvc.yaml", ALWAYS),
    ("params.yaml", ALWAYS),
    ("pyproject.toml", ALWAYS),
    ("src/{pkg}/__init__.py", ALWAYS),
    ("src/{pkg}/__main__.py", ALWAYS),
    ("src/{pkg}/bundle.py", ALWAYS),
    ("src/{pkg}/cli.py", ALWAYS),
    ("src/{pkg}/config.py", ALWAYS),
    ("src/{pkg}/data.py", ALWAYS),
    ("src/{pkg}/features.py", ALWAYS),
    ("src/{pkg}/gate.py", ALWAYS),
    ("src/{pkg}/settings.py", ALWAYS),
    ("src/{pkg}/jobs/__init__.py", ALWAYS),
    ("src/{pkg}/jobs/prepare.py", ALWAYS),
    ("src/{pkg}/jobs/train.py", ALWAYS),
    ("src/{pkg}/jobs/evaluate.py", ALWAYS),
    ("src/{pkg}/jobs/register.py", ALWAYS),
    ("src/{pkg}/jobs/promote.py", ALWAYS),
    ("src/{pkg}/services/__init__.py", ALWAYS),
    ("src/{pkg}/services/lineage.py", ALWAYS),
    ("src/{pkg}/services/tracking.py", ALWAYS),
    # batch scoring (issue 14): streaming and Spark engines; models by URI for it and serving
    *[
        (f"src/{{pkg}}/batch/{name}.py", ALWAYS)
        for name in ("__init__", "cli", "daemon", "local", "scorer", "spark", "submit")
    ],
    ("src/{pkg}/services/registry.py", ALWAYS),
    ("tests/conftest.py", ALWAYS),
    ("tests/test_data.py", ALWAYS),
    ("tests/test_gate.py", ALWAYS),
    ("tests/test_model_quality.py", ALWAYS),
    ("tests/test_settings.py", ALWAYS),
    # a team's own data (issue 11): the data contract, sources, model families, tuning
    ("data/contract.yaml", DEMO),  # file/sql: `make schema` infers it from the data
    ("src/{pkg}/contract.py", ALWAYS),
    ("src/{pkg}/labels.py", ALWAYS),
    ("src/{pkg}/jobs/schema.py", ALWAYS),
    ("src/{pkg}/jobs/ingest.py", ALWAYS),
    ("src/{pkg}/jobs/tune.py", ALWAYS),
    ("tests/test_tune.py", ALWAYS),
    # serving: model API, drift check, monitoring and container files (issue 6)
    *[
        (f"src/{{pkg}}/drift/{name}.py", SERVING)
        for name in ("__init__", "__main__", "cli", "detector", "profiles", "report", "statistics")
    ],
    ("src/{pkg}/serving/__init__.py", SERVING),
    ("src/{pkg}/serving/app.py", SERVING),
    ("src/{pkg}/serving/config.py", SERVING),
    ("src/{pkg}/serving/metrics.py", SERVING),
    ("src/{pkg}/serving/predictor.py", SERVING),
    *[
        (f"src/{{pkg}}/serving/{name}.py", SERVING)
        for name in (
            "encoding",
            "inputs",
            "invocations",
            "middleware",
            "requests",
            "routes",
            "state",
            "trees",
        )
    ],
    ("tests/serving_helpers.py", SERVING),
    ("tests/test_serving.py", SERVING),
    ("tests/test_drift.py", SERVING),
    ("tests/test_batch_score.py", SERVING),
    ("Dockerfile", SERVING),
    (".dockerignore", SERVING),
    ("compose.yaml", SERVING),
    # the image built and run for real (issue 12): a local base image, the smoke test
    ("scripts/base_image.sh", SERVING),
    ("scripts/image_smoke.py", SERVING),
    ("monitoring/prometheus.yml", SERVING),
    ("monitoring/recording_rules.yml", SERVING),
    ("monitoring/alert_rules.yml", SERVING),
    ("monitoring/alert_rules_test.yml", SERVING),
    ("monitoring/alertmanager.yml", SERVING),
    ("monitoring/grafana/provisioning/datasources/prometheus.yml", SERVING),
    ("monitoring/grafana/provisioning/dashboards/dashboards.yml", SERVING),
    ("monitoring/grafana/dashboards/model-api.json", SERVING),
    # governance and supply chain (issue 5)
    (".secrets.baseline", ALWAYS),
    ("docs/model_card.yml", ALWAYS),
    ("src/{pkg}/jobs/model_card.py", ALWAYS),
    # Kubernetes + GitOps (issue 5)
    *[
        (path, KUBERNETES)
        for path in (
            "deploy/k8s/base/kustomization.yaml",
            "deploy/k8s/base/deployment.yaml",
            "deploy/k8s/base/service.yaml",
            "deploy/k8s/base/serviceaccount.yaml",
            "deploy/k8s/base/hpa.yaml",
            "deploy/k8s/base/pdb.yaml",
            "deploy/k8s/base/networkpolicy.yaml",
            "deploy/k8s/components/prometheus-operator/kustomization.yaml",
            "deploy/k8s/components/prometheus-operator/servicemonitor.yaml",
            "deploy/k8s/components/prometheus-operator/recording-rules.yaml",
            "deploy/k8s/components/prometheus-operator/alert-rules.yaml",
            "deploy/k8s/overlays/staging/kustomization.yaml",
            "deploy/k8s/overlays/prod/kustomization.yaml",
            "deploy/k8s/training/kustomization.yaml",
            "deploy/k8s/training/job.yaml",
            "deploy/argocd/kustomization.yaml",
            "deploy/argocd/project.yaml",
            "deploy/argocd/staging.yaml",
            "deploy/argocd/prod.yaml",
        )
    ],
    # orchestrators (issue 14): the Airflow DAGs and the Airflow they are tested with
    ("orchestration/airflow/dags/{pkg}_dags.py", AIRFLOW),
    ("orchestration/airflow/requirements.txt", AIRFLOW),
    # Kubeflow Pipelines: the pipeline module and its compiled IR YAML (shipped pre-compiled)
    ("orchestration/kubeflow/pipeline.py", KUBEFLOW),
    ("orchestration/kubeflow/pipeline.yaml", KUBEFLOW),
    # air-gapped mode: package index mirror for uv and pip (issue 5)
    ("uv.toml", AIRGAPPED),
    ("pip.conf", AIRGAPPED),
    ("deploy/mirrors.yml", AIRGAPPED),
    # CI/CD (issue 3): one file set per provider; GitHub's setup action in both styles (the
    # library's workflows call it in the caller's checkout), its workflows vendored standalone
    (".github/workflows/ci.yml", lambda a: "github" in a["ci_providers"]),
    (".github/actions/andamio-setup/action.yml", lambda a: "github" in a["ci_providers"]),
    *[
        (f".github/workflows/andamio-{name}.yml", lambda a: "github" in a["ci_providers"] and _standalone(a))
        for name in ("make", "pipeline", "deploy", "deploy-gitops", "drift", "template-update")
    ],
    (".gitlab-ci.yml", lambda a: "gitlab" in a["ci_providers"]),
    ("Jenkinsfile", lambda a: "jenkins" in a["ci_providers"]),
    # the library's GitLab jobs and Jenkins steps, vendored standalone beside its forge code
    *[
        (f".andamio-ci/templates/{name}.yml", lambda a: "gitlab" in a["ci_providers"] and _standalone(a))
        for name in ("setup", "make", "pipeline", "deploy", "drift", "template-update")
    ],
    *[
        (
            f".andamio-ci/vars/andamio{name}.groovy",
            lambda a: "jenkins" in a["ci_providers"] and _standalone(a),
        )
        for name in ("Setup", "Make", "Pipeline", "Deploy", "Drift", "TemplateUpdate", "ForgeCode")
    ],
    # On-prem hosts (issue 4): inventory + playbook using the andamio.mlops collection
    *[
        (f"deploy/ansible/{name}", ANSIBLE)
        for name in (
            "ansible.cfg",
            "inventory.yml",
            "playbook.yml",
            "requirements.yml",
            "group_vars/all/main.yml",
            "group_vars/all/vault.example.yml",
            "group_vars/inference.yml",
            "group_vars/training.yml",
            "group_vars/monitoring.yml",
        )
    ],
]


def expected_files(answers: Answers) -> set[str]:
    """Relative paths a rendering with ``answers`` must contain, and nothing else."""
    pkg = answers["package_name"]
    return {pattern.format(pkg=pkg) for pattern, when in MANIFEST if when(answers)}
