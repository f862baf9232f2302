"""Helpers for the andamio.mlops integration tests: throwaway hosts, inventories, runs.

The hosts are systemd-nspawn machines on an overlay of a cached Debian rootfs, each in
a network namespace of its own (scripts/testbed/). Nothing here talks to any address
but those hosts' own, inside namespaces these helpers create.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
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


def host_script(action: str, host: Host, rootfs: Path, timeout: float = 120) -> str:
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


# --- the stand-in project -----------------------------------------------------

STANDIN_NAME = "andamio_standin"
STANDIN_VERSION = "0.1.0"

# Until the serving bundle lands, the model service runs this stdlib-only app: it loads
# a linear model from the bundle folder and answers /health and /predict.
STANDIN_SERVE = '''\
"""Stand-in model API used by the andamio.mlops tests."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main() -> None:
    bundle = Path(os.environ["ANDAMIO_BUNDLE_DIR"])
    model = json.loads((bundle / "model.json").read_text())

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status, payload):
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/health":
                self._send(200, {"status": "ok", "model": model["name"], "version": model["version"]})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self):
            if self.path != "/predict":
                self._send(404, {"error": "not found"})
                return
            rows = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["instances"]
            preds = [sum(w * x for w, x in zip(model["coef"], row)) + model["intercept"] for row in rows]
            self._send(200, {"predictions": preds})

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((os.environ["ANDAMIO_HOST"], int(os.environ["ANDAMIO_PORT"])), Handler)
    server.serve_forever()
'''


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def build_standin_wheel(dest: Path) -> Path:
    """Write the stand-in project as a wheel, byte for byte the same on every call."""
    dist = f"{STANDIN_NAME}-{STANDIN_VERSION}.dist-info"
    files = {
        f"{STANDIN_NAME}/__init__.py": f'__version__ = "{STANDIN_VERSION}"\n',
        f"{STANDIN_NAME}/serve.py": STANDIN_SERVE,
        f"{dist}/METADATA": (
            f"Metadata-Version: 2.1\nName: {STANDIN_NAME.replace('_', '-')}\nVersion: {STANDIN_VERSION}\n"
            "Summary: Stand-in model API for the andamio.mlops tests\nRequires-Python: >=3.9\n"
        ),
        f"{dist}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: andamio-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
        f"{dist}/entry_points.txt": f"[console_scripts]\nandamio-standin-serve = {STANDIN_NAME}.serve:main\n",
    }
    record = "".join(
        f"{name},{_record_hash(text.encode())},{len(text.encode())}\n" for name, text in files.items()
    )
    files[f"{dist}/RECORD"] = record + f"{dist}/RECORD,,\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, text in files.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            wheel.writestr(info, text)
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{STANDIN_NAME}-{STANDIN_VERSION}-py3-none-any.whl"
    path.write_bytes(buffer.getvalue())
    return path


def write_standin_bundle(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "model.json").write_text(
        json.dumps({"name": "standin-linear", "version": "1", "coef": [2.0, -1.0], "intercept": 0.5})
    )
    return dest


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
