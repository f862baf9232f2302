"""Tier 2 (render): the option matrix from copier.yml, expected files only, no leftover Jinja."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import jinja2
import pytest
import yaml
from support.expected_files import expected_files
from support.matrix import choice_values, combo_id, full_answers, path_conditions, questions, render_matrix
from support.project import render_project

pytestmark = pytest.mark.render

MATRIX = render_matrix()
JINJA_LEFTOVER = re.compile(r"{{|}}|{%|%}|{#|#}")
# GitHub Actions expressions, ${{ ... }}, are meant to survive in .github/ files (and only there);
# one may hold format() placeholders: ${{ format('origin/{0}', github.base_ref) }}.
GITHUB_EXPRESSION = re.compile(r"\$\{\{(?:[^{}]|\{\d+\})*\}\}")
# Ansible's own Jinja, {{ ... }}, is meant to survive in deploy/ansible/, unless it names a
# copier question (then it is a template expression that was not rendered).
ANSIBLE_EXPRESSION = re.compile(r"\{\{\s*\(?\s*([A-Za-z_]\w*)[^{}]*\}\}")
# kfp's runtime placeholders, {{$}} and {{$.inputs...}}, are meant to survive in the compiled
# Kubeflow pipeline (and only there).
KFP_PLACEHOLDER = re.compile(r"\{\{\$[^{}]*\}\}")
KFP_IR = "orchestration/kubeflow/pipeline.yaml"


def _strip_ansible(text: str) -> str:
    return ANSIBLE_EXPRESSION.sub(lambda m: m.group(0) if m.group(1) in questions() else "", text)


def _files(project: Path) -> set[str]:
    return {str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()}


def _answers(project: Path) -> dict:
    return yaml.safe_load((project / ".copier-answers.yml").read_text())


def _check_project(project: Path) -> None:
    answers = _answers(project)
    actual, expected = _files(project), expected_files(answers)
    assert actual == expected, (
        f"unexpected files: {sorted(actual - expected)}; missing files: {sorted(expected - actual)}"
    )
    for rel in sorted(actual):
        text = (project / rel).read_text(encoding="utf-8")
        scanned = GITHUB_EXPRESSION.sub("", text) if rel.startswith(".github/") else text
        scanned = _strip_ansible(scanned) if rel.startswith("deploy/ansible/") else scanned
        scanned = KFP_PLACEHOLDER.sub("", scanned) if rel == KFP_IR else scanned
        leftover = JINJA_LEFTOVER.search(scanned)
        assert not leftover, (
            f"{rel}: Jinja syntax survived rendering near "
            f"{scanned[leftover.start() - 30 : leftover.end() + 30]!r}"
        )
        if rel.endswith((".yml", ".yaml")) or rel == ".copier-answers.yml":
            list(yaml.safe_load_all(text))  # a GitLab component is two documents: spec, then jobs
        elif rel.endswith(".toml"):
            tomllib.loads(text)
        elif rel.endswith(".json"):
            json.loads(text)
        elif rel.endswith(".py"):
            compile(text, rel, "exec")


def _ruff(project: Path, *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", *args, "src", "tests"], cwd=project, capture_output=True, text=True
    )
    assert proc.returncode == 0, (
        f"ruff {' '.join(args)} failed on the rendered project:\n{proc.stdout}{proc.stderr}"
    )


@pytest.mark.parametrize("condition", sorted(path_conditions()))
def test_the_matrix_renders_every_file_condition_true_and_false(condition):
    # Every answer that decides whether files exist is rendered both ways by the matrix
    holds = jinja2.Environment().compile_expression(condition)
    seen = {bool(holds(**full_answers(combo))) for combo in MATRIX}
    assert seen == {True, False}, f"the render matrix never renders `{condition}` as {not seen.pop()}"


@pytest.mark.parametrize("combo", MATRIX, ids=[combo_id(c) for c in MATRIX])
def test_matrix_renders_expected_files_only(render, combo):
    project = render(combo)
    answers = _answers(project)
    for key, value in combo.items():
        assert answers[key] == value, f"answer {key} was not recorded"
    _check_project(project)
    _ruff(project, "check", "--no-cache")
    _ruff(project, "format", "--check", "--no-cache")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (n, v)
        for n, q in questions().items()
        if "choices" in q and not q.get("multiselect")
        for v in choice_values(n)
    ],
)
def test_every_choice_renders(render, name, value):
    project = render({name: value})
    assert _answers(project)[name] == value
    _check_project(project)


def test_regression_task_wires_the_diabetes_dataset_and_regression_gate(render):
    project = render({"ml_task": "regression"})
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["data"]["dataset"] == "diabetes"
    assert "r2" in params["gate"]["min"] and params["train"]["estimator"] == "ridge"
    dvc = yaml.safe_load((project / "dvc.yaml").read_text())
    assert list(dvc["stages"]) == ["prepare", "train", "evaluate", "register"]


def test_custom_names_flow_into_every_place(render):
    project = render({"project_name": "Churn Radar", "package_name": "churn", "model_name": "churn-radar-v2"})
    assert (project / "src" / "churn" / "cli.py").is_file()
    config = (project / "src" / "churn" / "config.py").read_text()
    assert 'MODEL_NAME = "churn-radar-v2"' in config
    assert "python -m churn prepare" in (project / "dvc.yaml").read_text()
    assert tomllib.loads((project / "pyproject.toml").read_text())["project"]["name"] == "churn-radar"


def test_folder_remote_is_stored_relative_to_the_dvc_folder(render):
    project = render({"dvc_remote_url": "../shared-remote"})
    assert "url = ../../shared-remote" in (project / ".dvc" / "config").read_text()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("project_name", "   ", "must not be empty"),
        ("package_name", "import", "is a Python keyword"),
        ("package_name", "Has-Dash", "not a valid Python identifier"),
        ("author_email", "not-an-email", "not an e-mail address"),
        ("model_name", "bad name", "must start with a letter or digit"),
        ("tracking_uri", "localhost:5000", "not an MLflow tracking URI"),
        ("dvc_remote_url", "ftp://host/dir", "unsupported scheme"),
        ("python_version", "3.9", "'3.9' is not in"),
        ("ml_task", "ranking", "'ranking' is not in"),
        ("ci_providers", "[github, travis]", "'travis' is not in"),
    ],
)
def test_invalid_answers_are_refused_with_a_message(template_src, tmp_path, name, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        render_project(template_src, tmp_path / "refused", {name: value})
    assert not (tmp_path / "refused" / "Makefile").exists()
