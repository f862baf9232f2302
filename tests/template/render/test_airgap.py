"""Tier 2 (render): one group of answers makes the generated project air-gapped.

With the mirror answers set, no public host name may remain anywhere in the project, every
container image comes through the registry mirror, and the tools that download (uv, pip,
Docker builds, the training Job, Ansible hosts, template updates, DVC, MLflow) are pointed
at the internal endpoints.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import ROOT
from support.matrix import MIRRORS
from support.project import render_project

pytestmark = pytest.mark.render

# Public hosts a generated project could reach.  Built from pieces on purpose: this
# repository's rule is that no package-registry host name is written into any file, and the
# test must still know the names to look for them.
PUBLIC_HOSTS = [
    ".".join(parts)
    for parts in (
        ("pypi", "org"),
        ("files", "pythonhosted", "org"),
        ("docker", "io"),
        ("registry-1", "docker", "io"),
        ("hub", "docker", "com"),
        ("ghcr", "io"),
        ("quay", "io"),
        ("gcr", "io"),
        ("registry", "k8s", "io"),
        ("mcr", "microsoft", "com"),
        ("public", "ecr", "aws"),
        ("github", "com"),
        ("raw", "githubusercontent", "com"),
        ("objects", "githubusercontent", "com"),
        ("gitlab", "com"),
        ("deb", "debian", "org"),
        ("security", "debian", "org"),
        ("archive", "ubuntu", "com"),
        ("registry", "npmjs", "org"),
        ("huggingface", "co"),
        ("conda", "anaconda", "org"),
        ("repo", "anaconda", "com"),
        ("download", "pytorch", "org"),
        ("astral", "sh"),
    )
]
IMAGE_LINE = re.compile(r"^\s*(?:-\s+)?image:\s*['\"]?([^'\"\s#]+)", re.MULTILINE)
FROM_LINE = re.compile(r"^FROM\s+(?:--platform=\S+\s+)?(\S+)", re.MULTILINE)
ARG_DEFAULT = re.compile(r"^ARG\s+(\w+)=(\S+)", re.MULTILINE)
STAGE_NAME = re.compile(r"^FROM\s+\S+\s+AS\s+(\S+)", re.MULTILINE | re.IGNORECASE)
JENKINS_IMAGE = re.compile(r"""(?<![\w-])image\s*\(?\s*['"]([^'"]+)['"]""")


@pytest.fixture(scope="module")
def project(project_factory, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return project_factory.new(tmp_path_factory.mktemp("airgap") / "project", MIRRORS)


def _files(project: Path) -> list[Path]:
    return sorted(p for p in project.rglob("*") if p.is_file() and ".git" not in p.parts)


def test_no_public_host_name_remains_anywhere(project):
    hits = [
        f"{path.relative_to(project)}: {host}"
        for path in _files(project)
        for host in PUBLIC_HOSTS
        if host in path.read_text(encoding="utf-8", errors="replace").lower()
    ]
    assert hits == [], f"public hosts left in an air-gapped project: {hits}"


def _image_refs(project: Path) -> list[tuple[str, str]]:
    refs = []
    for path in _files(project):
        text = path.read_text(encoding="utf-8")
        rel = str(path.relative_to(project))
        if path.name == "Dockerfile":
            # FROM ${ARG} is the ARG's default; FROM <stage> is no image
            defaults, stages = dict(ARG_DEFAULT.findall(text)), set(STAGE_NAME.findall(text))
            for ref in FROM_LINE.findall(text):
                resolved = re.sub(r"\$\{(\w+)\}", lambda var, d=defaults: d.get(var[1], var[0]), ref)
                if resolved not in stages:
                    refs.append((rel, resolved))
        elif path.name == "Jenkinsfile":
            refs += [(rel, m) for m in JENKINS_IMAGE.findall(text)]
        elif path.name == ".gitlab-ci.yml":
            refs += [(rel, m) for m in IMAGE_LINE.findall(text)]
            refs += [(rel, m) for m in _gitlab_component_images(project, text)]
        elif path.suffix in {".yml", ".yaml"} and not rel.startswith(".andamio-ci/templates/"):
            refs += [(rel, m) for m in IMAGE_LINE.findall(text)]
    return refs


def _gitlab_component_images(project: Path, pipeline: str) -> list[str]:
    # A vendored GitLab component's image is `$[[ inputs.x ]]`-templated: resolve it with the
    # inputs the project's include passes (else the component's defaults), as GitLab does.
    images = []
    for entry in yaml.safe_load(pipeline).get("include", []):
        if not isinstance(entry, dict) or "local" not in entry:
            continue
        spec, body = (project / entry["local"].lstrip("/")).read_text().split("\n---\n", 1)
        inputs = yaml.safe_load(spec)["spec"]["inputs"]
        values = {name: str(field.get("default", "")) for name, field in inputs.items()}
        values.update({name: str(value) for name, value in (entry.get("inputs") or {}).items()})
        resolved = re.sub(r"\$\[\[\s*inputs\.([\w-]+)\s*\]\]", lambda m: values[m[1]], body)
        images += IMAGE_LINE.findall(resolved)
    return images


def test_every_container_image_comes_through_the_mirror(project):
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    slug = tomllib.loads((project / "pyproject.toml").read_text())["project"]["name"]
    own = (
        f"{answers['image_repository']}",  # the model API, pushed by CI
        f"{slug}:",  # built locally by compose
        f"{slug}-pipeline:",  # the pipeline image, built locally by compose too
        "model-api",  # kustomize placeholder, replaced by each overlay's images: entry
    )
    refs = _image_refs(project)
    assert any(path == "Dockerfile" for path, _ in refs), "found no FROM line: is the parser stale?"
    assert any(path == ".gitlab-ci.yml" for path, _ in refs), "found no GitLab image"
    outside = [
        f"{path}: {ref}"
        for path, ref in refs
        if not ref.startswith(f"{MIRRORS['registry_mirror']}/") and not ref.startswith(own)
    ]
    assert outside == [], f"images that bypass the registry mirror: {outside}"


def _clean_env() -> dict[str, str]:
    # Drop this machine's own index settings: only the project's config may speak.
    return {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_"))} | {
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_NO_CACHE": "1",
        "UV_HTTP_RETRIES": "0",  # a .invalid host never answers: no backoff between retries
    }


def test_make_setup_installs_from_the_package_mirror(project, tmp_path):
    # Given a copy (make setup writes .venv), when setup runs, uv asks the mirror and only it
    proc = subprocess.run(
        ["make", "setup"], cwd=project, capture_output=True, text=True, env=_clean_env(), timeout=300
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, "setup cannot succeed against a .invalid mirror"
    assert "pypi-mirror.corp.invalid" in output, output[-2000:]
    for host in PUBLIC_HOSTS:
        assert host not in output, f"setup reached for {host}"
    subprocess.run(["rm", "-rf", str(project / ".venv")], check=True)


def test_pip_reads_the_mirror_from_the_project(project):
    env = _clean_env() | {"PIP_CONFIG_FILE": str(project / "pip.conf")}
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, env=env
    )
    assert f"global.index-url='{MIRRORS['package_index_url']}'" in proc.stdout, proc.stdout + proc.stderr
    makefile = (project / "Makefile").read_text()
    assert "export PIP_CONFIG_FILE := $(CURDIR)/pip.conf" in makefile
    assert "export UV_CONFIG_FILE := $(CURDIR)/uv.toml" in makefile


def _kustomize_config(path: Path) -> dict[str, str]:
    spec: dict[str, Any] = yaml.safe_load(path.read_text())
    literals = spec["configMapGenerator"][0]["literals"]
    return dict(item.split("=", 1) for item in literals)


def test_every_place_that_reaches_out_uses_the_internal_endpoint(project):
    index, template = MIRRORS["package_index_url"], MIRRORS["template_source"]
    # Docker builds install from the mirror
    dockerfile = (project / "Dockerfile").read_text()
    assert f"PIP_INDEX_URL={index}" in dockerfile and f"UV_DEFAULT_INDEX={index}" in dockerfile
    # the training Job installs from the mirror and logs to the internal MLflow
    training = _kustomize_config(project / "deploy" / "k8s" / "training" / "kustomization.yaml")
    assert training["PIP_INDEX_URL"] == index
    assert training["MLFLOW_TRACKING_URI"] == MIRRORS["tracking_uri"]
    assert training["GIT_REPO_URL"] == MIRRORS["gitops_repo_url"]
    # the project's MLflow and DVC endpoints
    pkg = yaml.safe_load((project / ".copier-answers.yml").read_text())["package_name"]
    assert f'TRACKING_URI = "{MIRRORS["tracking_uri"]}"' in (project / "src" / pkg / "config.py").read_text()
    assert f"url = {MIRRORS['dvc_remote_url']}" in (project / ".dvc" / "config").read_text()
    # template updates come from the internal copy of the template
    assert f"export ANDAMIO_TEMPLATE := {template}" in (project / "Makefile").read_text()
    # uv's own config names the mirror as the default index
    uv = (project / "uv.toml").read_text()
    assert f'url = "{index}"' in uv and "default = true" in uv
    # Ansible hosts: the variables exist in the roles and carry the mirrors
    mirrors = yaml.safe_load((project / "deploy" / "mirrors.yml").read_text())
    assert mirrors["python_runtime_pip_index_url"] == index
    assert all(line.startswith(f"deb {MIRRORS['apt_mirror_url']} ") for line in mirrors["base_apt_sources"])
    roles = ROOT / "ansible" / "roles"
    for variable in mirrors:
        role = next(r for r in roles.iterdir() if variable.startswith(f"{r.name}_"))
        defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text())
        assert variable in defaults, f"{variable} is not a variable of the {role.name} role"


def test_default_project_has_no_mirror_files(render):
    project = render()
    assert not (project / "uv.toml").exists() and not (project / "pip.conf").exists()
    assert "PIP_CONFIG_FILE" not in (project / "Makefile").read_text()


@pytest.mark.parametrize(
    "missing", ["package_index_url", "apt_mirror_url", "registry_mirror", "template_source"]
)
def test_air_gapped_mode_refuses_an_empty_mirror(template_src, tmp_path, missing):
    answers = {**MIRRORS, missing: ""}
    with pytest.raises(ValueError, match="required in air-gapped mode"):
        render_project(template_src, tmp_path / "refused", answers)
    assert not (tmp_path / "refused").exists()


def test_shared_style_ci_images_come_through_the_mirror(render):
    # The shared style's images are set by the ci-templates library: it takes the mirror too
    from support.ci import gitlab_config

    project = render({**MIRRORS, "ci_style": "shared"})
    config = gitlab_config(project)
    images = {name: job["image"] for name, job in config.items() if isinstance(job, dict) and "image" in job}
    assert images, "the library's setup unit names no image"
    outside = {
        name: image for name, image in images.items() if not image.startswith("registry.corp.invalid/hub/")
    }
    assert not outside, f"images outside the mirror: {outside}"
    for path in project.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            text = path.read_text(errors="ignore")
            assert not [h for h in PUBLIC_HOSTS if h in text], path
