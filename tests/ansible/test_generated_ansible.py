"""The generated project's deploy/ansible/: a real inventory and playbook over andamio.mlops.

Installs the collection offline from this checkout (as `make provision-deps
ANDAMIO_COLLECTION=...` does), then asks Ansible itself: the inventory groups, the
playbook's syntax, every group variable is an argument of an andamio.mlops role, and
ansible-lint (production profile) passes.  Converging real hosts with it is
test_provision_generated.py (and the collection's own playbooks, test_ansible.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import ROOT, unavailable

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent


def ansible(project: Path, tool: str, *args: str) -> str:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(project / "deploy/ansible/ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
    }
    proc = subprocess.run(
        [str(BIN / tool), *args],
        cwd=project / "deploy/ansible",
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, (
        f"{tool} {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


def role_arguments() -> set[str]:
    names: set[str] = set()
    for spec in (ROOT / "ansible" / "roles").glob("*/meta/argument_specs.yml"):
        for entry in yaml.safe_load(spec.read_text())["argument_specs"].values():
            names |= set(entry.get("options", {}))
    return names


@pytest.mark.parametrize("serving", [True, False], ids=["with-serving", "no-serving"])
def test_generated_playbook_is_valid_against_the_collection(render, serving):
    if not (BIN / "ansible-playbook").exists():
        reason = "ansible-core is not installed: run scripts/bootstrap.sh / make bootstrap"
        unavailable(reason)
    project = render({"serving": serving})
    ansible(
        project,
        "ansible-galaxy",
        "collection",
        "install",
        "--force",
        "-p",
        "collections",
        str(ROOT / "ansible"),
    )

    graph = ansible(project, "ansible-inventory", "--graph")
    for group in ("training", "inference", "monitoring"):
        assert f"@{group}:" in graph, f"inventory lacks the {group} group:\n{graph}"
    ansible(project, "ansible-playbook", "--syntax-check", "playbook.yml")

    known = role_arguments()
    for path in sorted((project / "deploy/ansible/group_vars").rglob("*.yml")):
        variables = set(yaml.safe_load(path.read_text()) or {})
        unknown = {v for v in variables if not v.startswith("vault_")} - known
        assert not unknown, f"{path.name}: not an argument of any andamio.mlops role: {sorted(unknown)}"

    lint = subprocess.run(
        [str(BIN / "ansible-lint"), "--offline", "--profile", "production", "playbook.yml", "group_vars"],
        cwd=project / "deploy/ansible", capture_output=True, text=True, timeout=300,
        env={**os.environ, "ANSIBLE_CONFIG": str(project / "deploy/ansible/ansible.cfg")},
    )  # fmt: skip
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr[-3000:]
