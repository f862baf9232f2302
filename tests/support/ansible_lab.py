"""Fixtures of tests/ansible/ (imported by its test modules, not a conftest.py).

`testbed` gives a workdir with ansible.cfg, the collection on the collections path, a
generated project (serving and Ansible on) that ran its pipeline, with its wheel, its
release (build/release/) and its pinned serving requirements, the wheelhouse those need
(bind-mounted read-only into every host at /srv/serving-wheelhouse), and a factory for
throwaway systemd hosts that are torn down (and checked for leftovers) when the module
finishes.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import ansible_helpers as h
from support import unavailable

# Where the hosts see the wheelhouse of the project's serving dependencies.
SERVING_WHEELHOUSE = "/srv/serving-wheelhouse"
# Database drivers the MLflow server may need (PostgreSQL backend store), staged as well.
DRIVERS = ("psycopg[binary]==3.3.9",)

# Debian packages and tools the throwaway hosts need on the machine running the tests.
REQUIRED_TOOLS = (
    "debootstrap",
    "dpkg-scanpackages",
    "systemd-nspawn",
    "ip",
    "ssh",
    "ssh-keygen",
    "mountpoint",
    "flock",
)


def require_testbed() -> None:
    """Skip (outside CI) or fail (in CI) when this machine cannot run throwaway hosts."""
    problems = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if h.ansible_bin("ansible-playbook") is None:
        problems.append("ansible-playbook")
    if os.geteuid() != 0:
        problems.append("root")
    if problems:
        reason = f"throwaway hosts need {', '.join(problems)}: run scripts/bootstrap.sh as root"
        unavailable(reason)


@dataclasses.dataclass
class Lab:
    workdir: Path
    rootfs: Path
    collections: Path
    project: Path
    wheelhouse: Path
    hosts: list[h.Host] = dataclasses.field(default_factory=list)
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    _claims: dict[str, int] = dataclasses.field(default_factory=dict)

    def _claim_index(self) -> tuple[int, int]:
        """Lock a free host index (its subnet and interface names) for this run.

        Concurrent runs on one machine (xdist workers, a CI clone next to a checkout)
        each hold their own indexes, so they never take down each other's hosts.
        """
        locks = h.CACHE / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        # 101-250: the first hundred are left to ad-hoc use of nspawn-host.sh.
        for index in range(101, 251):
            fd = os.open(locks / f"host-{index}.lock", os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return index, fd
        raise RuntimeError("all 150 throwaway host indexes are in use")

    def fresh_hosts(self, *specs: tuple[str, str]) -> list[h.Host]:
        """Start hosts (label, inventory group) from a clean overlay on free indexes."""
        started = []
        for label, group in specs:
            index, fd = self._claim_index()
            name = f"{label}-{index}"
            host = h.Host(name=name, index=index, group=group, state=self.workdir / "hosts" / name)
            host.state.mkdir(parents=True, exist_ok=True)
            self.hosts.append(host)
            self._claims[name] = fd
            host.address = h.host_script("up", host, self.rootfs, binds=self.binds)
            started.append(host)
        return started

    @property
    def binds(self) -> str:
        return f"{self.wheelhouse}:{SERVING_WHEELHOUSE}"

    @property
    def package(self) -> str:
        return h.project_wheel(self.project).name.split("-")[0]

    def stop(self, host: h.Host) -> None:
        try:
            h.host_script("down", host, self.rootfs)
        finally:
            fd = self._claims.pop(host.name, None)
            if fd is not None and not h.leftovers([host]):
                os.close(fd)  # releases the index lock

    def stop_all(self) -> list[str]:
        """Stop every host at once (a clean poweroff takes seconds); report leftovers."""
        running = [host for host in self.hosts if host.name in self._claims]
        errors = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            for host, future in [(host, pool.submit(self.stop, host)) for host in running]:
                try:
                    future.result()
                except Exception as exc:  # keep tearing the others down
                    errors.append(f"{host.name}: {exc}")
        return errors + h.leftovers(self.hosts)

    def group_vars(self, **overrides) -> dict:
        """Variables every test inventory uses: the host's own mirrors, its own address."""
        values = {
            # Air-gapped: apt and pip only see what the rootfs staged.
            "base_apt_sources": ["deb [trusted=yes] file:/srv/localrepo ./"],
            "base_ssh_hardening": True,
            "python_runtime_python_version": "3.11",
            "python_runtime_pip_no_index": True,
            "python_runtime_project_wheel": str(h.project_wheel(self.project)),
            "python_runtime_requirements_file": str(h.serving_requirements(self.project)),
            "python_runtime_pip_find_links": ["/srv/wheelhouse", SERVING_WHEELHOUSE],
            "mlflow_server_pip_no_index": True,
            "mlflow_server_pip_find_links": ["/srv/wheelhouse"],
            # Services listen on the host's address inside its own network namespace.
            "mlflow_server_bind_address": "{{ ansible_host }}",
            "mlflow_server_workers": 1,  # two cores shared with the rest of the suite
            # The project's own API, as its Makefile's `serve` target runs it.
            "model_service_command": (
                "{{ python_runtime_venv }}/bin/uvicorn --factory "
                f"{self.package}.serving:create_app --host {{{{ model_service_bind_address }}}}"
                " --port {{ model_service_port }} --no-access-log --loop asyncio"
            ),
            "model_service_environment": {
                "MODEL_BUNDLE": "{{ model_service_bundle_dir }}/models/bundle",
                "OMP_NUM_THREADS": "1",
            },
            "model_service_bind_address": "{{ ansible_host }}",
            "model_service_bundle_src": str(self.project / "build" / "release"),
            "dvc_storage_members": ["andamio"],
            "monitoring_node_exporter_listen_address": "{{ ansible_host }}:9100",
            "monitoring_prometheus_listen_address": "{{ ansible_host }}:9090",
            "monitoring_scrape_interval": "5s",
        }
        values.update(overrides)
        return values

    def inventory(self, hosts: list[h.Host], name: str, **overrides) -> Path:
        return h.write_inventory(self.workdir / f"{name}.inventory.json", hosts, self.group_vars(**overrides))

    def playbook(self, playbook: str | Path, inventory: Path, *args: str, timeout: float = 900) -> h.Run:
        path = Path(playbook) if Path(playbook).is_absolute() else h.COLLECTION / "playbooks" / playbook
        return h.run_playbook(self.workdir, path, inventory, *args, timeout=timeout)


@pytest.fixture(scope="module")
def ansible_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ansible.cfg and the collection linked as andamio.mlops."""
    if h.ansible_bin("ansible-playbook") is None:
        reason = "ansible-core is not installed: run scripts/bootstrap.sh"
        unavailable(reason)
    workdir = tmp_path_factory.mktemp("ansible")
    h.write_ansible_cfg(workdir, h.link_collection(workdir))
    return workdir


@pytest.fixture(scope="module")
def testbed(ansible_workdir: Path) -> Iterator[Lab]:
    """Throwaway hosts on the cached rootfs; all torn down and checked at module end."""
    require_testbed()
    workdir = ansible_workdir
    collections = workdir / "collections"
    project = h.render_served_project(workdir / "project")
    h.sh(project, "make", "pipeline")
    h.provision_deps(project)
    bed = Lab(
        workdir=workdir,
        rootfs=h.build_rootfs(),
        collections=collections,
        project=project,
        wheelhouse=h.build_wheelhouse(h.serving_requirements(project), extra=DRIVERS),
    )
    yield bed
    problems = bed.stop_all()
    h.CACHE.mkdir(parents=True, exist_ok=True)
    # One file per xdist worker (or "main"), so that parallel workers keep their numbers.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    (h.CACHE / f"ansible-timings-{worker}.json").write_text(json.dumps(bed.timings, indent=2, sort_keys=True))
    assert not problems, f"tear-down left things behind: {problems}"
