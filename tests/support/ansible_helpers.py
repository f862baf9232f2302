"""Helpers for the andamio.mlops integration tests: throwaway hosts, inventories, runs.

The hosts are systemd-nspawn machines on an overlay of a cached Debian rootfs, each in
a network namespace of its own (scripts/testbed/). Nothing here talks to any address
but those hosts' own, inside namespaces these helpers create.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from support import ROOT
from support.process import commit_all, sh
from support.project import copy_template, render_project

__all__ = ["sh"]  # the tests run commands as h.sh (support.process)
REPO = ROOT
COLLECTION = REPO / "ansible"
TESTBED = REPO / "scripts" / "testbed"
CACHE = Path(os.environ.get("ANDAMIO_TESTBED_CACHE", "/var/tmp/andamio-testbed"))

RECAP = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)


def ansible_bin(name: str) -> str | None:
    """Find an Ansible executable next to this interpreter first, then on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name)


# --- throwaway hosts --------------------------------------------------------------


@dataclasses.dataclass
class Host:
    """One throwaway host; `address` is its only address, inside its own namespace."""

    name: str
    index: int
    group: str
    state: Path
    address: str = ""

    @property
    def key(self) -> Path:
        return self.state / "id_ed25519"

    @property
    def netns(self) -> str:
        return f"andamio-{self.name}"


def build_rootfs(timeout: float = 1200) -> Path:
    """Return the cached rootfs, building it when the recipe changed."""
    result = subprocess.run(
        ["bash", str(TESTBED / "rootfs.sh")],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"rootfs.sh failed:\n{result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def host_script(action: str, host: Host, rootfs: Path, timeout: float = 120, binds: str = "") -> str:
    """nspawn-host.sh ACTION for `host`; `binds` are SRC:DST folders mounted read-only."""
    result = subprocess.run(
        [
            "bash",
            str(TESTBED / "nspawn-host.sh"),
            action,
            host.name,
            str(host.index),
            str(rootfs),
            str(host.state),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "ANDAMIO_HOST_BIND_RO": binds},
    )
    if result.returncode != 0:
        raise RuntimeError(f"nspawn-host.sh {action} {host.name} failed:\n{result.stderr[-3000:]}")
    return result.stdout.strip()


def leftovers(hosts: list[Host]) -> list[str]:
    """Say what a host left behind after `down`: namespaces, mounts or processes."""
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    mounts = Path("/proc/self/mounts").read_text()
    for host in hosts:
        if re.search(rf"^{re.escape(host.netns)}\b", netns, re.MULTILINE):
            found.append(f"network namespace {host.netns}")
        if str(host.state / "merged") in mounts:
            found.append(f"mount {host.state / 'merged'}")
        pid_file = host.state / "nspawn.pid"
        if pid_file.exists():
            found.append(f"pid file {pid_file}")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "systemd-nspawn" in cmdline and any(str(h.state) in cmdline for h in hosts):
            found.append(f"process {proc.name}: {cmdline.strip()}")
    return found


# --- Ansible runs ----------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """Outcome of one ansible-playbook run."""

    returncode: int
    output: str
    seconds: float

    def recap(self) -> dict[str, dict[str, int]]:
        return {
            m["host"]: {k: int(m[k]) for k in ("ok", "changed", "unreachable", "failed")}
            for m in RECAP.finditer(self.output)
        }

    def changed_tasks(self) -> list[str]:
        """Names of tasks that reported a change, for assertion messages."""
        changed, task = [], None
        for line in self.output.splitlines():
            if line.startswith(("TASK [", "RUNNING HANDLER [")):
                task = line.split("[", 1)[1].rsplit("]", 1)[0]
            elif line.startswith("changed:") and task:
                changed.append(f"{task} ({line.split(']')[0].removeprefix('changed: [')})")
        return changed

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def write_ansible_cfg(workdir: Path, collections_root: Path) -> Path:
    cfg = workdir / "ansible.cfg"
    cfg.write_text(
        "[defaults]\n"
        f"collections_path = {collections_root}\n"
        "host_key_checking = False\n"
        "forks = 5\n"
        "timeout = 30\n"
        "interpreter_python = /usr/bin/python3\n"
        "retry_files_enabled = False\n"
        "nocows = True\n"
        f"local_tmp = {workdir / 'local-tmp'}\n"
        "[ssh_connection]\n"
        "pipelining = True\n"
        "ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=/dev/null"
        " -o StrictHostKeyChecking=no -o LogLevel=ERROR -o ConnectTimeout=10\n"
        f"control_path_dir = {workdir / 'cp'}\n"
    )
    return cfg


def link_collection(workdir: Path) -> Path:
    """Expose ansible/ as the installed collection andamio.mlops."""
    root = workdir / "collections"
    target = root / "ansible_collections" / "andamio" / "mlops"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        target.symlink_to(COLLECTION)
    return root


def run_playbook(
    workdir: Path,
    playbook: Path,
    inventory: Path,
    *args: str,
    timeout: float = 900,
    extra_env: dict[str, str] | None = None,
) -> Run:
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(workdir / "ansible.cfg"),
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCAL_TEMP=str(workdir / "local-tmp"),
        ANSIBLE_HOME=str(workdir / "ansible-home"),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra_env or {})
    started = time.monotonic()
    try:
        result = subprocess.run(
            [
                ansible_bin("ansible-playbook") or "ansible-playbook",
                "-i",
                str(inventory),
                str(playbook),
                *args,
            ],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = (
            (exc.stdout or b"").decode(errors="replace")
            if isinstance(exc.stdout, bytes)
            else (exc.stdout or "")
        )
        return Run(124, out + f"\n[timed out after {timeout} s]", time.monotonic() - started)
    (workdir / "logs").mkdir(exist_ok=True)
    log = workdir / "logs" / f"{int(time.time() * 1000)}-{playbook.stem}.log"
    log.write_text(result.stdout + result.stderr)
    return Run(result.returncode, result.stdout + result.stderr, time.monotonic() - started)


def write_inventory(path: Path, hosts: list[Host], group_vars: dict) -> Path:
    """An inventory in YAML (JSON is YAML) with one group per host."""
    groups: dict = {}
    for host in hosts:
        groups.setdefault(host.group, {"hosts": {}})["hosts"][host.name] = {
            "ansible_host": host.address,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(host.key),
        }
    path.write_text(json.dumps({"all": {"vars": group_vars, "children": groups}}, indent=2))
    return path


# --- HTTP checks against the hosts ---------------------------------------------


def http(url: str, data: bytes | None = None, timeout: float = 30) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"} if data else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for(check, timeout: float, interval: float = 1.0):
    """Call `check` until it returns a truthy value or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = check()
            if last:
                return last
        except (OSError, ValueError) as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(f"gave up after {timeout} s; last result: {last!r}")
        time.sleep(interval)


# --- the generated project the hosts serve ------------------------------------

# Serving-only dependencies until the project exports its own lock for pip: the pipeline's
# packages are left out and MLflow is the client part only (what loading a bundle needs).
_NOT_SERVING = {"dvc", "matplotlib", "optuna"}
_SERVING_SWAPS = {"mlflow": "mlflow-skinny"}


def serving_requirements(project: Path) -> Path:
    """The pinned list the hosts install the project's serving dependencies from.

    The project's own requirements/serve.txt (core + serve, exported by `make lock`) when it
    has one; otherwise the equivalent compiled here with uv from its pyproject.toml.
    """
    own = project / "requirements" / "serve.txt"
    if own.is_file():
        return own
    import tomllib

    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    deps = meta["dependencies"] + meta.get("optional-dependencies", {}).get("serve", [])
    wanted = []
    for spec in deps:
        name = re.split(r"[=<>\[ ;]", spec, maxsplit=1)[0].lower()
        if name in _NOT_SERVING:
            continue
        wanted.append(spec.replace(name, _SERVING_SWAPS[name], 1) if name in _SERVING_SWAPS else spec)
    if not any(s.startswith("skops") for s in wanted):
        wanted.append("skops==0.16.0")  # MLflow's scikit-learn format of the bundle's model
    out = project / "build" / "serve-requirements.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    source = out.with_suffix(".in")
    source.write_text("\n".join(wanted) + "\n")
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    result = subprocess.run(
        [uv, "pip", "compile", "--quiet", "--no-header", "--no-annotate", "--python-version", "3.11",
         "--python-platform", "x86_64-manylinux_2_28", str(source), "-o", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"uv pip compile failed:\n{result.stderr[-3000:]}")
    return out


def pip_python() -> str:
    """An interpreter with pip (a uv-made venv has none) to download wheels with."""
    for candidate in (sys.executable, "python3", "/usr/bin/python3"):
        probe = subprocess.run([candidate, "-m", "pip", "--version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return candidate
    raise RuntimeError("no python with pip found to download wheels")


def build_wheelhouse(*requirement_files: Path, extra: tuple[str, ...] = ()) -> Path:
    """Wheels of the given pinned lists for the hosts' Python (cp311, manylinux), cached.

    The cache key is the lists' content: an unchanged list reuses the folder.
    """
    lines = sorted(
        {
            line.strip()
            for path in requirement_files
            for line in path.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        }
        | set(extra)
    )
    key = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
    out = CACHE / f"wheelhouse-{key}"
    if (out / ".complete").exists():
        return out
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    requirements = partial / "requirements.txt"
    # Hashes (a lock's export) would make pip demand one for every line: plain pins suffice here.
    pins = [re.sub(r"\s*\\$|\s+--hash=\S+", "", line) for line in lines]
    requirements.write_text("\n".join(pin for pin in pins if pin.strip()) + "\n")
    platforms = [f"manylinux_2_{minor}_x86_64" for minor in range(36, 16, -1)]
    platforms += ["manylinux2014_x86_64", "manylinux1_x86_64", "linux_x86_64"]
    result = subprocess.run(
        [pip_python(), "-m", "pip", "download", "-q", "--disable-pip-version-check",
         "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
         *[arg for platform in platforms for arg in ("--platform", platform)],
         "-d", str(partial), "-r", str(requirements)],
        capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"pip download failed:\n{result.stderr[-3000:]}")
    (partial / ".complete").touch()
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    return out


def render_served_project(dest: Path, answers: dict | None = None) -> Path:
    """Render a project with serving and Ansible on, under git, its environment set up."""
    # A plain copy of the working tree, as the template tests render it (no git clone).
    template = copy_template(dest.with_name(dest.name + "-template"))
    project = render_project(template, dest, {"serving": True, "ansible": True, **(answers or {})})
    commit_all(project)
    sh(project, "make", "setup")
    return project


def provision_deps(project: Path) -> None:
    """`make provision-deps` with the collection from this checkout (offline)."""
    sh(project, "make", "provision-deps", f"ANDAMIO_COLLECTION={COLLECTION}")


def project_wheel(project: Path) -> Path:
    [wheel] = sorted((project / "build" / "wheel").glob("*.whl"))
    return wheel


def first_test_row(project: Path) -> dict:
    """One row of the project's held-out data as a /predict body (the schema's features)."""
    code = (
        "import json, pandas as pd; s = json.load(open('models/bundle/schema.json'));"
        " names = [f['name'] for f in s['features']];"
        " print(pd.read_parquet('data/prepared/test.parquet')[names].iloc[:1].to_json(orient='records'))"
    )
    return json.loads(sh(project, ".venv/bin/python", "-c", code).stdout.strip().splitlines()[-1])[0]


def ssh(host: Host, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a shell command on a throwaway host as root."""
    return subprocess.run(
        [
            "ssh",
            "-i",
            str(host.key),
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=10",
            f"root@{host.address}",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
