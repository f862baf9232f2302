"""The andamio.mlops collection against real throwaway hosts.

The playbooks converge fresh systemd-nspawn hosts (scripts/testbed/): monitoring_host.yml
and inference_host.yml on hosts of their own, site.yml (which imports those two and
training_host.yml) on a training, an inference and a monitoring host at once. Each time
a second run must report changed=0 and a `--check --diff` run no change either; after that the
services are asked for real over HTTP: MLflow's REST API, the generated project's own model
API (/ready, /version, /predict with a row of its held-out data), node exporter and
Prometheus /metrics and Prometheus' own view of its targets. The hosts have no network:
packages come from a file: apt repository and a wheelhouse staged in the rootfs.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import uuid
from pathlib import Path

import pytest
from support import ansible_helpers as h
from support import ansible_lab, unavailable
from support.ansible_lab import Lab

# The fixtures live in tests/support/ansible_lab.py (shared with test_provision_generated.py).
ansible_workdir = ansible_lab.ansible_workdir
testbed = ansible_lab.testbed

pytestmark = pytest.mark.integration

PLAYBOOKS = ["site.yml", "training_host.yml", "inference_host.yml", "monitoring_host.yml"]


def no_nvidia_gpu_here() -> bool:
    devices = Path("/sys/bus/pci/devices")
    vendors = [p.read_text().strip() for p in devices.glob("*/vendor")] if devices.exists() else []
    return "0x10de" not in vendors


# --- helpers shared by the playbook tests --------------------------------------


def converge_twice_and_check(lab: Lab, playbook: str, inventory: Path, hosts: list[h.Host]) -> h.Run:
    """Converge, rerun expecting no change, then --check --diff expecting no change."""
    label = Path(playbook).stem
    names = {host.name for host in hosts}

    first = lab.playbook(playbook, inventory)
    lab.timings[f"{label}: converge"] = round(first.seconds, 1)
    assert first.returncode == 0, f"converging {playbook} failed:\n{first.tail()}"
    recap = first.recap()
    assert set(recap) == names, f"{playbook} ran on {sorted(recap)}, expected {sorted(names)}"
    assert all(r["changed"] > 0 for r in recap.values()), f"a fresh host reported no change: {recap}"

    second = lab.playbook(playbook, inventory)
    lab.timings[f"{label}: second run"] = round(second.seconds, 1)
    assert second.returncode == 0, f"second run of {playbook} failed:\n{second.tail()}"
    changed = {host: r["changed"] for host, r in second.recap().items()}
    assert set(changed) == names and not any(changed.values()), (
        f"second run of {playbook} is not idempotent: {changed}; changed tasks: {second.changed_tasks()}"
    )

    check = lab.playbook(playbook, inventory, "--check", "--diff")
    lab.timings[f"{label}: check --diff"] = round(check.seconds, 1)
    assert check.returncode == 0, f"--check --diff of {playbook} failed:\n{check.tail()}"
    changed = {host: r["changed"] for host, r in check.recap().items()}
    assert set(changed) == names and not any(changed.values()), (
        f"--check --diff of {playbook} predicts changes: {changed}; tasks: {check.changed_tasks()}"
    )
    return first


def assert_enabled(host: h.Host, *units: str) -> None:
    result = h.ssh(host, "systemctl is-enabled " + " ".join(units))
    states = result.stdout.split()
    assert result.returncode == 0 and states == ["enabled"] * len(units), (
        f"{host.name}: units {units} should be enabled, systemctl says {states} {result.stderr}"
    )


def verify_monitoring(host: h.Host, prometheus: bool) -> None:
    status, body = h.http(f"http://{host.address}:9100/metrics")
    assert status == 200 and b"node_exporter_build_info" in body, f"node exporter on {host.name}: {status}"
    assert_enabled(host, "prometheus-node-exporter")
    if not prometheus:
        return
    assert_enabled(host, "prometheus")
    status, body = h.http(f"http://{host.address}:9090/metrics")
    assert status == 200 and b"prometheus_build_info" in body, f"Prometheus /metrics on {host.name}: {status}"

    def both_targets_up():
        status, body = h.http(f"http://{host.address}:9090/api/v1/query?query=up")
        if status != 200:
            raise ValueError(f"query answered {status}: {body[:200]!r}")
        # By instance: the Debian package first runs Prometheus on its own default
        # configuration, whose localhost targets stay in the database until they go stale.
        up = {r["metric"]["instance"]: r["value"][1] for r in json.loads(body)["data"]["result"]}
        wanted = {f"{host.address}:9090": "1", f"{host.address}:9100": "1"}
        if {instance: up.get(instance) for instance in wanted} != wanted:
            raise ValueError(f"up by instance: {up}")
        return up

    # The test inventory scrapes every 5 s; 120 s leaves room for a busy machine.
    h.wait_for(both_targets_up, timeout=120, interval=2)


def verify_mlflow(host: h.Host) -> None:
    api = f"http://{host.address}:5000/api/2.0/mlflow"
    status, body = h.http(f"{api}/experiments/get-by-name?experiment_name=Default")
    assert status == 200, f"MLflow on {host.name} answered {status}: {body[:300]!r}"

    def post(path: str, payload: dict) -> dict:
        status, body = h.http(f"{api}/{path}", json.dumps(payload).encode())
        assert status == 200, f"MLflow {path} answered {status}: {body[:300]!r}"
        return json.loads(body)

    # A round trip through the backend store: experiment, run, metric, read back.
    experiment = post("experiments/create", {"name": f"andamio-test-{uuid.uuid4().hex[:8]}"})["experiment_id"]
    run = post("runs/create", {"experiment_id": experiment, "start_time": 0})["run"]["info"]["run_id"]
    post("runs/log-metric", {"run_id": run, "key": "rmse", "value": 0.25, "timestamp": 0, "step": 0})
    status, body = h.http(f"{api}/runs/get?run_id={run}")
    metrics = {m["key"]: m["value"] for m in json.loads(body)["run"]["data"]["metrics"]}
    assert metrics == {"rmse": 0.25}, f"MLflow did not keep the metric: {metrics}"
    assert_enabled(host, "mlflow-server")


def verify_model_service(lab: Lab, host: h.Host, model_version: str | None = "1") -> dict:
    """The project's own API on `host`: ready, its /version, one real prediction."""
    base = f"http://{host.address}:8000"
    status, body = h.http(f"{base}/ready")
    assert status == 200, f"model service /ready on {host.name} answered {status}: {body[:300]!r}"
    status, body = h.http(f"{base}/version")
    version = json.loads(body)
    assert status == 200 and version["model_version"] == model_version, f"/version: {status} {version}"
    row = h.first_test_row(lab.project)
    status, body = h.http(f"{base}/predict", json.dumps(row).encode())
    assert status == 200 and json.loads(body)["prediction"] in (0, 1), f"/predict: {status} {body!r}"
    assert_enabled(host, "model-service")
    return version


def verify_training_host(lab: Lab, host: h.Host, converge: h.Run) -> None:
    verify_mlflow(host)
    verify_monitoring(host, prometheus=False)
    result = h.ssh(host, "stat -c '%a %G' /srv/dvc/cache /srv/dvc/remote; id -nG andamio")
    lines = result.stdout.splitlines()
    assert lines[:2] == ["2770 dvc", "2770 dvc"], f"DVC storage permissions: {lines}"
    assert "dvc" in lines[2].split(), f"andamio is not in the dvc group: {lines[2]}"
    probe = f"import {lab.package}, sys; print({lab.package}.__version__, sys.version_info[:2])"
    result = h.ssh(host, f"/opt/andamio/venv/bin/python -c '{probe}'")
    assert result.stdout.strip() == "0.1.0 (3, 11)", f"project in the venv: {result.stdout} {result.stderr}"
    if no_nvidia_gpu_here():
        assert f"No NVIDIA GPU on {host.name}" in converge.output, "nvidia_gpu did not say why it skipped"


# --- static checks --------------------------------------------------------------


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_playbook_passes_syntax_check(ansible_workdir: Path, playbook: str) -> None:
    inventory = ansible_workdir / "empty.ini"
    inventory.write_text("[training]\n[inference]\n[monitoring]\n")
    run = h.run_playbook(
        ansible_workdir, h.COLLECTION / "playbooks" / playbook, inventory, "--syntax-check", timeout=120
    )
    assert run.returncode == 0, f"--syntax-check {playbook}:\n{run.tail()}"


def test_collection_passes_ansible_lint_production_profile(ansible_workdir: Path) -> None:
    lint = h.ansible_bin("ansible-lint")
    if lint is None:
        reason = "ansible-lint is not installed: run scripts/bootstrap.sh"
        unavailable(reason)
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(ansible_workdir / "collections"),
        NO_COLOR="1",
        ANSIBLE_HOME=str(ansible_workdir / "ansible-home"),
    )
    result = h.subprocess.run(
        [lint, "--offline", "--profile", "production", "--nocolor"],
        cwd=h.COLLECTION,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"ansible-lint:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"


def _load_yaml(path: Path):
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
    return yaml.load(path.read_text(), Loader=Loader)


ROLES = sorted(p.name for p in (h.COLLECTION / "roles").iterdir())


@pytest.mark.parametrize("role", ROLES)
def test_role_defaults_argument_spec_and_readme_agree(role: str) -> None:
    """Every default is declared with the same value, every option is documented."""
    root = h.COLLECTION / "roles" / role
    defaults = _load_yaml(root / "defaults" / "main.yml") or {}
    options = _load_yaml(root / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    optional = {name for name, spec in options.items() if not spec.get("required")}
    assert set(defaults) == optional, (
        f"{role}: defaults without a spec {sorted(set(defaults) - optional)}, "
        f"optional options without a default {sorted(optional - set(defaults))}"
    )
    for name, spec in options.items():
        assert name.startswith(f"{role}_"), f"{role}: {name} lacks the role prefix"
        if "default" in spec:
            assert spec["default"] == defaults[name], (
                f"{role}: {name} defaults to {defaults[name]!r}, spec says {spec['default']!r}"
            )
    readme = (root / "README.md").read_text()
    undocumented = [name for name in options if f"`{name}`" not in readme]
    assert not undocumented, f"{role}/README.md does not list {undocumented}"


# --- argument specs ----------------------------------------------------------------

ARGSPEC_CASES = {
    "wrong-type": (
        "andamio.mlops.mlflow_server",
        {"mlflow_server_port": "five thousand"},
        r"mlflow_server_port.*int",
    ),
    "wrong-choice": (
        "andamio.mlops.base",
        {"base_ssh_permit_root_login": "sometimes"},
        r"base_ssh_permit_root_login.*one of",
    ),
    "missing": ("andamio.mlops.model_service", {}, r"missing required arguments: model_service_command"),
}


@pytest.fixture(scope="module")
def argspec_host(testbed: Lab) -> h.Host:
    return testbed.fresh_hosts(("argspec", "monitoring"))[0]


@pytest.mark.parametrize("case", list(ARGSPEC_CASES))
def test_argument_spec_refuses_bad_variable(testbed: Lab, argspec_host: h.Host, case: str) -> None:
    role, role_vars, message = ARGSPEC_CASES[case]
    playbook = testbed.workdir / f"argspec-{case}.yml"
    task = {"name": "Include the role", "ansible.builtin.include_role": {"name": role}, "vars": role_vars}
    play = [
        {"name": f"Run {role} with a bad variable", "hosts": "all", "gather_facts": False, "tasks": [task]}
    ]
    playbook.write_text(json.dumps(play))
    inventory = h.write_inventory(testbed.workdir / "argspec.inventory.json", [argspec_host], {})
    run = testbed.playbook(playbook, inventory, timeout=120)
    assert run.returncode != 0, f"{case}: {role} accepted {role_vars}"
    assert "Validating arguments against arg spec" in run.output, (
        f"{case}: failed, but not in validation:\n{run.tail()}"
    )
    assert re.search(message, run.output), f"{case}: no clear message /{message}/ in:\n{run.tail()}"
    assert run.recap()[argspec_host.name]["changed"] == 0, (
        f"{case}: the host was changed before validation failed"
    )


# --- playbooks on real hosts ----------------------------------------------------


def test_monitoring_host_playbook(testbed: Lab) -> None:
    hosts = testbed.fresh_hosts(("mon", "monitoring"))
    converge_twice_and_check(testbed, "monitoring_host.yml", testbed.inventory(hosts, "monitoring"), hosts)
    verify_monitoring(hosts[0], prometheus=True)


def test_inference_host_playbook(testbed: Lab) -> None:
    hosts = testbed.fresh_hosts(("inf", "inference"))
    converge_twice_and_check(testbed, "inference_host.yml", testbed.inventory(hosts, "inference"), hosts)
    first = verify_model_service(testbed, hosts[0])
    verify_monitoring(hosts[0], prometheus=False)

    # A new release (another registration) switches the symlink and restarts the service,
    # gated on /ready, and changes nothing else.
    release = testbed.workdir / "release-v2"
    h.shutil.copytree(testbed.project / "build" / "release", release)
    registration = json.loads((release / "reports" / "registration.json").read_text())
    (release / "reports" / "registration.json").write_text(json.dumps(registration | {"version": "2"}))
    inventory = testbed.inventory(hosts, "inference-v2", model_service_bundle_src=str(release))
    update = testbed.playbook("inference_host.yml", inventory)
    testbed.timings["inference_host: release update"] = round(update.seconds, 1)
    assert update.returncode == 0, f"updating the release failed:\n{update.tail()}"
    assert sorted(update.changed_tasks()) == sorted(
        f"andamio.mlops.model_service : {task} ({hosts[0].name})"
        for task in ("Copy the release", "Point the service at the release", "Restart the model service")
    ), f"a release update changed more than the release: {update.changed_tasks()}"
    second = verify_model_service(testbed, hosts[0], model_version="2")
    assert second["run_id"] == first["run_id"], "the same model should be served under version 2"


def test_site_playbook_provisions_every_group(testbed: Lab) -> None:
    """site.yml on fresh training, inference and monitoring hosts at once.

    site.yml imports the three group playbooks, so this converges training_host.yml's
    play from scratch too; to keep the module well inside its CI budget that play is not
    converged a second time on a host of its own. Instead training_host.yml alone must
    then find nothing to change on the training host, in a real run and in check mode.
    """
    training, inference, monitoring = testbed.fresh_hosts(
        ("site-train", "training"), ("site-inf", "inference"), ("site-mon", "monitoring")
    )
    hosts = [training, inference, monitoring]
    converge = converge_twice_and_check(testbed, "site.yml", testbed.inventory(hosts, "site"), hosts)

    only_training = testbed.inventory([training], "training")
    for args in ((), ("--check", "--diff")):
        run = testbed.playbook("training_host.yml", only_training, *args)
        testbed.timings[f"training_host alone after site: {' '.join(args) or 'run'}"] = round(run.seconds, 1)
        assert run.returncode == 0, f"training_host.yml {' '.join(args)} failed:\n{run.tail()}"
        assert set(run.recap()) == {training.name}, f"training_host.yml ran on {sorted(run.recap())}"
        assert run.recap()[training.name]["changed"] == 0, (
            f"training_host.yml {' '.join(args)} disagrees with site.yml: {run.changed_tasks()}"
        )

    verify_training_host(testbed, training, converge)
    verify_model_service(testbed, inference)
    verify_monitoring(inference, prometheus=False)
    verify_monitoring(monitoring, prometheus=True)


def test_teardown_leaves_no_namespace_mount_or_process(testbed: Lab) -> None:
    [host] = testbed.fresh_hosts(("gone", "monitoring"))
    # Let the boot settle so that the poweroff has running units to stop.
    assert h.ssh(host, "timeout 30 systemctl is-system-running --wait || true").returncode == 0
    testbed.stop(host)
    assert h.leftovers([host]) == [], "nspawn-host.sh down left things behind"
    assert not (host.state / "upper").exists(), "the overlay's upper layer is still there"


# --- nvidia_gpu without a GPU in the machine -----------------------------------

NVIDIA_PLAY = [
    {
        "name": "Run nvidia_gpu",
        "hosts": "all",
        "gather_facts": True,
        "roles": [{"role": "andamio.mlops.nvidia_gpu"}],
    }
]


def run_nvidia_gpu(lab: Lab, host: h.Host, name: str, *extra: str) -> h.Run:
    playbook = lab.workdir / "nvidia-gpu.yml"
    playbook.write_text(json.dumps(NVIDIA_PLAY))
    inventory = h.write_inventory(lab.workdir / f"{name}.inventory.json", [host], {})
    return lab.playbook(playbook, inventory, *extra, timeout=180)


def fake_gpu(host: h.Host, smi_script: str) -> list[str]:
    """Give the host a fake PCI bus with one NVIDIA 3D controller and a fake nvidia-smi.

    The machines that run these tests have no GPU, so this exercises the role's
    detection and verification logic; a real driver on real hardware is not tested.
    """
    # An NVIDIA 3D controller and an Intel VGA controller that the role must ignore.
    devices = {"0000:41:00.0": ("0x10de", "0x030200"), "0000:00:02.0": ("0x8086", "0x030000")}
    commands = [
        f"mkdir -p /tmp/fake-pci/{dev} && echo {vendor} > /tmp/fake-pci/{dev}/vendor"
        f" && echo {cls} > /tmp/fake-pci/{dev}/class"
        for dev, (vendor, cls) in devices.items()
    ]
    commands.append(f"printf '%s\\n' '#!/bin/sh' {shlex.quote(smi_script)} > /tmp/fake-nvidia-smi")
    commands.append("chmod 755 /tmp/fake-nvidia-smi")
    setup = " && ".join(commands)
    result = h.ssh(host, setup)
    assert result.returncode == 0, f"setting up the fake GPU failed: {result.stderr}"
    overrides = {
        "__nvidia_gpu_pci_devices": "/tmp/fake-pci",
        "__nvidia_gpu_smi": "/tmp/fake-nvidia-smi",
        "nvidia_gpu_install_driver": False,
    }
    return ["-e", json.dumps(overrides)]


def test_nvidia_gpu_required_fails_without_gpu(testbed: Lab, argspec_host: h.Host) -> None:
    if not no_nvidia_gpu_here():
        pytest.skip("this machine has an NVIDIA GPU, so the host sees one")
    run = run_nvidia_gpu(testbed, argspec_host, "gpu-required", "-e", '{"nvidia_gpu_required": true}')
    assert run.returncode != 0, "nvidia_gpu_required passed on a host without a GPU"
    assert "has no NVIDIA display or 3D" in run.output, f"no clear message:\n{run.tail()}"


def test_nvidia_gpu_verifies_with_nvidia_smi(testbed: Lab, argspec_host: h.Host) -> None:
    good = fake_gpu(argspec_host, "echo '00000000:41:00.0, NVIDIA Test GPU, 550.54, 24576 MiB'")
    run = run_nvidia_gpu(testbed, argspec_host, "gpu-good", *good)
    assert run.returncode == 0, f"a GPU that nvidia-smi lists was refused:\n{run.tail()}"
    assert "NVIDIA Test GPU" in run.output, "the verification did not report what nvidia-smi saw"
    assert run.recap()[argspec_host.name]["changed"] == 0, (
        f"verification changed the host: {run.changed_tasks()}"
    )

    broken = fake_gpu(argspec_host, "echo 'NVIDIA-SMI has failed' >&2; exit 9")
    run = run_nvidia_gpu(testbed, argspec_host, "gpu-broken", *broken)
    assert run.returncode != 0, "a failing nvidia-smi was accepted"
    assert "saw 0 of the 1 GPUs" in run.output, f"no clear message:\n{run.tail()}"
