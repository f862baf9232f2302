"""The render matrix, generated from copier.yml.

Axes that interact (``ml_task``, ``ci_providers`` and ``ci_style``) form a product; independent
axes (``python_version``, the tracking back-end) are cycled over it so every value
still appears.  An explicit validity filter runs *before* parametrisation.
"""

from __future__ import annotations

import itertools
import re
from functools import cache
from typing import Any

import jinja2
import yaml

from andamio import config
from support import ROOT

# Free-text answers that change what is generated: one value per back-end kind.
TRACKING_URIS = {"sqlite": "sqlite:///mlflow.db", "server": "http://127.0.0.1:5000"}
# Each data source with the answers it asks for (file: CSV and Parquet paths).
DATA_SOURCES = [
    {"data_source": "demo"},
    {"data_source": "file", "data_path": "data/raw/customers.csv", "target": "churned"},
    {"data_source": "sql", "target": "label", "sql_url_env": "WAREHOUSE_URL"},
    {"data_source": "file", "data_path": "data/raw/table.parquet", "target": "y"},
    {"data_source": "demo"},
    {"data_source": "sql", "target": "label", "sql_query": "WITH t AS (SELECT 1 AS x) SELECT * FROM t"},
    {"data_source": "file", "data_path": "data/raw/sales.pq", "target": "amount"},
]
# What the project deploys: the serving stack (API, drift, monitoring, images), its Kubernetes
# manifests (asked only with serving) and the Ansible provisioning. All six groups, in a cycle
# of 11 (prime to the other cycles' lengths) so no group is tied to one value of another axis.
_T, _F = True, False
DEPLOYS = [
    {"serving": s, **({"kubernetes": k} if s else {}), "ansible": a}
    for s, k, a in [
        (_T, _T, _T), (_T, _F, _T), (_F, None, _T), (_T, _T, _F), (_F, None, _F), (_T, _F, _F),
        (_T, _T, _T), (_F, None, _T), (_T, _F, _T), (_F, None, _F), (_T, _T, _F),
    ]
]  # fmt: skip

# An air-gapped project with every mirror answered (".invalid" hosts: none of them resolves).
MIRRORS = {
    "airgapped": True,
    "package_index_url": "https://pypi-mirror.corp.invalid/simple",
    "apt_mirror_url": "https://apt.corp.invalid/debian",
    "registry_mirror": "registry.corp.invalid/hub",
    "template_source": "https://git.corp.invalid/platform/andamio.git",
    "tracking_uri": "https://mlflow.corp.invalid",
    "dvc_remote_url": "s3://dvc.corp.invalid/bcc",
    "image_repository": "registry.corp.invalid/ml/bcc",
    "gitops_repo_url": "https://git.corp.invalid/ml/bcc.git",
    "ci_providers": ["github", "gitlab", "jenkins"],
}


@cache
def questions() -> dict[str, dict[str, Any]]:
    """Questions of copier.yml (settings, whose keys start with ``_``, excluded)."""
    return config.questions(ROOT)


def choice_values(name: str) -> list[Any]:
    """The values (not labels) of a question with choices."""
    choices = questions()[name]["choices"]
    return list(choices.values()) if isinstance(choices, dict) else list(choices)


def _subsets(values: list[str]) -> list[list[str]]:
    return [list(c) for r in range(len(values) + 1) for c in itertools.combinations(values, r)]


def _is_valid(combo: dict[str, Any]) -> bool:
    """Whether the template accepts this combination.

    Every question is independent today, so every combination is valid except the
    ones the template refuses: none yet.  When a rule appears (for example a
    switch that needs another one), it goes here, never as an early ``return``
    inside a test.
    """
    if not combo["ci_providers"] and combo.get("ci_style") == "shared":
        return False  # ci_style is asked only when a CI provider is chosen
    return combo["ml_task"] in choice_values("ml_task")


def combo_id(combo: dict[str, Any]) -> str:
    """A readable test id such as ``classification-github+gitlab-py3.12-server``."""
    ci = "+".join(combo["ci_providers"]) or "noci"
    backend = next(k for k, v in TRACKING_URIS.items() if v == combo["tracking_uri"])
    style = "-shared" if combo.get("ci_style") == "shared" else ""
    airgap = "-airgap" if combo.get("airgapped") else ""
    data = combo.get("data_source", "demo")
    deploy = (
        ("" if combo.get("kubernetes", True) else "-nok8s") if combo.get("serving", True) else "-noserving"
    ) + ("" if combo.get("ansible", True) else "-noansible")
    return (
        f"{combo['ml_task']}-{ci}{style}-py{combo['python_version']}-{backend}{airgap}"
        f"-{data}-{combo.get('model_family', 'default')}"
        f"{'' if combo.get('orchestrator', 'none') == 'none' else '-' + combo['orchestrator']}{deploy}"
    )


def render_matrix() -> list[dict[str, Any]]:
    """All valid combinations to render."""
    # ci_style interacts with ci_providers (it shapes every CI file), so it joins the product.
    product = itertools.product(
        choice_values("ml_task"), _subsets(choice_values("ci_providers")), choice_values("ci_style")
    )
    independent = zip(
        itertools.cycle(choice_values("python_version")),
        itertools.cycle(TRACKING_URIS.values()),
        # air-gapped mode rewrites CI, container and package settings: on in half the
        # combinations, phased against the tracking back-end so all four pairs occur
        itertools.cycle([False, False, True, True]),
        # the data source changes stages, params and the contract; the model family the
        # dependencies: every value of each appears (7 and 5 do not divide the product's 32)
        itertools.cycle(DATA_SOURCES),
        itertools.cycle(choice_values("model_family")),
        # the orchestrator adds its DAG or pipeline module (every value appears)
        itertools.cycle(choice_values("orchestrator")),
        itertools.cycle(DEPLOYS),
        strict=False,
    )
    combos = []
    for (ml_task, ci, ci_style), independent_values in zip(product, independent, strict=False):
        python_version, tracking_uri, airgapped, source, family, orchestrator, deploy = independent_values
        combo = {
            "ml_task": ml_task,
            "ci_providers": ci,
            "python_version": python_version,
            "tracking_uri": tracking_uri,
            "airgapped": airgapped,
            "model_family": family,
            **source,
            **deploy,
        }
        if ci or ci_style == "shared":
            combo["ci_style"] = ci_style  # recorded in the answers only when asked
        if deploy["serving"]:
            combo["orchestrator"] = orchestrator  # asked only with serving
        if _is_valid(combo):
            combos.append(combo)
    return combos


# A condition in a file or folder name of template/: it decides whether files exist.
_PATH_CONDITION = re.compile(r"\{%-?\s*if\s+(.+?)\s*-?%\}")


def path_conditions() -> set[str]:
    """The conditions in the names of template/'s files and folders."""
    return {c for p in (ROOT / "template").rglob("*") for c in _PATH_CONDITION.findall(p.name)}


def full_answers(combo: dict[str, Any]) -> dict[str, Any]:
    """``combo`` with every other question at its default, derived defaults evaluated in order.

    Defaults that need the template's own filters (names, slugs) are left out: no file name
    depends on them.
    """
    env = jinja2.Environment()
    answers: dict[str, Any] = {}
    for name, question in questions().items():
        if name in combo:
            answers[name] = combo[name]
            continue
        default = question.get("default")
        if isinstance(default, str) and "{{" in default:
            try:
                default = env.from_string(default).render(**answers)
            except (jinja2.TemplateError, TypeError):
                continue
            if question.get("type") == "bool":
                default = yaml.safe_load(default)
        answers[name] = default
    return answers
