"""The generated project's deploy/ansible/, converged for real, and a rolling model update.

One set of throwaway hosts for the module (scripts/testbed/): a training host, two inference
hosts and a monitoring host, reached through an inventory override (PROVISION_ARGS) of the
generated project's own `make provision`. The MLflow server on the training host keeps its
backend store in a real PostgreSQL on this machine, listening only on the test network's
address next to the training host: the role's contract is "give me a PostgreSQL URI" (a
shared database is usually a server of its own), tests/support/postgres.py is the one way the suite
runs PostgreSQL, and the cached rootfs stays as it is.

The project's pipeline runs here with MLFLOW_TRACKING_URI at that server and registers its
model there; the inference hosts serve it through the project's own API; Prometheus on the
monitoring host scrapes that API across the test network and loads the project's alert
rules. Then a retrained model rolls out with `make deploy-hosts` under load, and a broken
one is stopped on the first host and rolled back there.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import ansible_helpers as h
from support import ansible_lab, loadgen, postgres, unavailable
from support.ansible_lab import Lab

ansible_workdir = ansible_lab.ansible_workdir

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Requests a load may send at most: far more than a rollout lasts, so the rollout's end stops it.
LOAD_BOUND = 5_000_000
# Seconds a restarted API gets to report /ready (model loading on a busy 2-core machine).
READY_TIMEOUT = 40


class Deployment:
    """The provisioned project: hosts, the database, and what the converge runs reported."""

    def __init__(self, lab: Lab, db: postgres.PostgresServer) -> None:
        self.lab = lab
        self.db = db
        self.project = lab.project
        self.training, self.inference_a, self.inference_b, self.monitoring = lab.hosts
        # Next to the project's group_vars/: Ansible reads group_vars beside the inventory
        # (the collection's imported playbooks do not see those beside playbook.yml).
        self.inventory = self.project / "deploy" / "ansible" / "test-hosts.json"
        self.runs: dict[str, h.Run] = {}
        self.observed: dict[str, object] = {}

    @property
    def inference(self) -> list[h.Host]:
        return [self.inference_a, self.inference_b]

    @property
    def tracking_uri(self) -> str:
        return f"http://{self.training.address}:5000"

    def write_inventory(self) -> None:
        groups = {"training": [self.training], "inference": self.inference, "monitoring": [self.monitoring]}
        children = {
            group: {
                "hosts": {
                    host.address: {"ansible_user": "root", "ansible_ssh_private_key_file": str(host.key)}
                    for host in hosts
                }
            }
            for group, hosts in groups.items()
        }
        # The test network only: air-gapped mirrors, the database, quicker scrapes and gates.
        test_vars = {
            "base_apt_sources": ["deb [trusted=yes] file:/srv/localrepo ./"],
            "python_runtime_python_version": "3.11",
            "python_runtime_pip_no_index": True,
            "python_runtime_pip_find_links": ["/srv/wheelhouse", ansible_lab.SERVING_WHEELHOUSE],
            "mlflow_server_pip_no_index": True,
            "mlflow_server_pip_find_links": ["/srv/wheelhouse", ansible_lab.SERVING_WHEELHOUSE],
            "mlflow_server_backend_store_uri": self.db.url,
            "mlflow_server_workers": 1,
            "mlflow_server_start_timeout": 300,  # a first start creates the schema, on a busy machine
            "model_service_health_timeout": READY_TIMEOUT,
            "monitoring_prometheus_listen_address": "{{ ansible_default_ipv4.address }}:9090",
            "monitoring_scrape_interval": "5s",
        }
        self.inventory.write_text(json.dumps({"all": {"vars": test_vars, "children": children}}, indent=2))

    def provision_args(self, *more: str) -> str:
        args = [f"-i {self.inventory}", *more]
        if not (self.project / "requirements" / "serve.txt").is_file():
            # Until the project exports its own lock for pip (make lock), the pinned list is
            # compiled by the test; group_vars/all would find requirements/serve.txt itself.
            args.append(f"-e python_runtime_requirements_file={h.serving_requirements(self.project)}")
        return " ".join(args)

    def make(self, label: str, target: str, *args: str, check: bool = True) -> h.Run:
        env = dict(
            os.environ,
            OMP_NUM_THREADS="1",
            ANSIBLE_HOST_KEY_CHECKING="False",
            ANSIBLE_SSH_ARGS=(
                "-o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=/dev/null"
                " -o StrictHostKeyChecking=no -o LogLevel=ERROR -o ConnectTimeout=10"
            ),
            ANSIBLE_SSH_CONTROL_PATH_DIR=str(self.lab.workdir / "cp"),
            ANSIBLE_LOCAL_TEMP=str(self.lab.workdir / "local-tmp"),
            ANSIBLE_HOME=str(self.lab.workdir / "ansible-home"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
        )
        started = time.monotonic()
        command = ["make", target, f"ANDAMIO_COLLECTION={h.COLLECTION}"]
        command.append(f"PROVISION_ARGS={self.provision_args(*args)}")
        result = h.subprocess.run(
            command, cwd=self.project, env=env, capture_output=True, text=True, timeout=1200, check=False
        )
        run = h.Run(result.returncode, result.stdout + result.stderr, time.monotonic() - started)
        (self.lab.workdir / "logs").mkdir(exist_ok=True)
        (self.lab.workdir / "logs" / f"{label}.log").write_text(run.output)
        self.runs[label] = run
        self.lab.timings[label] = round(run.seconds, 1)
        if check:
            assert run.returncode == 0, f"make {target} ({label}) failed:\n{run.tail(60)}\n{self.journals()}"
        return run

    def journals(self) -> str:
        """The services' last log lines on every host, for a failure message."""
        units = "-u mlflow-server -u model-service -u prometheus"
        return "\n".join(
            f"--- {host.name}:\n" + h.ssh(host, f"journalctl {units} --no-pager -n 25 -o cat").stdout
            for host in self.lab.hosts
        )

    def version(self, host: h.Host) -> dict:
        status, body = h.http(f"http://{host.address}:8000/version")
        assert status == 200, f"/version on {host.name}: {status} {body[:200]!r}"
        return json.loads(body)

    def main_pid(self, host: h.Host) -> str:
        return h.ssh(host, "systemctl show -p MainPID --value model-service").stdout.strip()


def registered_versions(tracking_uri: str, name: str) -> list[str]:
    query = urllib.parse.urlencode({"filter": f"name='{name}'"})
    status, body = h.http(f"{tracking_uri}/api/2.0/mlflow/model-versions/search?{query}")
    assert status == 200, f"versions of {name}: {status} {body[:300]!r}"
    return sorted(v["version"] for v in json.loads(body).get("model_versions", []))


def model_name(project: Path) -> str:
    return json.loads((project / "reports" / "registration.json").read_text())["name"]


@pytest.fixture(scope="module")
def deployment(ansible_workdir: Path) -> Iterator[Deployment]:
    """Render, provision the training host, run the pipeline against it, provision all."""
    ansible_lab.require_testbed()
    if postgres.find_bin_dir() is None:
        reason = "PostgreSQL server binaries are missing: run scripts/bootstrap.sh"
        unavailable(reason)
    project = h.render_served_project(ansible_workdir / "project")
    lab = Lab(
        workdir=ansible_workdir,
        rootfs=h.build_rootfs(),
        collections=ansible_workdir / "collections",
        project=project,
        wheelhouse=h.build_wheelhouse(h.serving_requirements(project), extra=ansible_lab.DRIVERS),
    )
    db = None
    try:
        lab.fresh_hosts(
            ("pg-train", "training"),
            ("pg-inf-a", "inference"),
            ("pg-inf-b", "inference"),
            ("pg-mon", "monitoring"),
        )
        # The database listens on this machine's side of the training host's link only.
        training = lab.hosts[0]
        db = postgres.start_server(
            database="mlflow", listen=training.address.rsplit(".", 1)[0] + ".1", clients="10.231.0.0/16"
        )
        deployment = Deployment(lab, db)
        deployment.write_inventory()

        # Given the training host (MLflow on PostgreSQL) ...
        deployment.make("provision training host", "provision", "--limit training")
        # ... the pipeline registers its model on that server ...
        h.sh(project, "make", "pipeline", env={"MLFLOW_TRACKING_URI": deployment.tracking_uri})
        # ... and every host is provisioned, then again, then checked.
        deployment.make("converge", "provision")
        deployment.make("second run", "provision")
        deployment.make("check", "provision-check")
        deployment.observed["versions"] = {
            host.name: deployment.version(host) for host in deployment.inference
        }
        yield deployment
    finally:
        problems = lab.stop_all()
        if db is not None:
            db.stop()
        h.CACHE.mkdir(parents=True, exist_ok=True)
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        (h.CACHE / f"provision-timings-{worker}.json").write_text(json.dumps(lab.timings, indent=2))
        assert not problems, f"tear-down left things behind: {problems}"


def test_make_provision_converges_the_generated_deploy(deployment: Deployment) -> None:
    d = deployment
    hosts = {host.address for host in d.lab.hosts}
    converge = d.runs["converge"].recap()
    assert set(converge) == hosts, f"make provision ran on {sorted(converge)}, expected {sorted(hosts)}"
    for label in ("second run", "check"):
        recap = d.runs[label].recap()
        changed = {host: r["changed"] for host, r in recap.items()}
        assert set(changed) == hosts and not any(changed.values()), (
            f"{label} of make provision is not clean: {changed}; tasks: {d.runs[label].changed_tasks()}"
        )

    # The MLflow server keeps its runs and registry in PostgreSQL, and the model is there.
    name = model_name(d.project)
    assert registered_versions(d.tracking_uri, name) == ["1"], "the pipeline did not register version 1"
    runs = int(d.db.psql("SELECT count(*) FROM runs").strip())
    versions = int(d.db.psql("SELECT count(*) FROM model_versions").strip())
    assert runs >= 1 and versions == 1, f"PostgreSQL holds {runs} runs and {versions} model versions"

    # Both inference hosts serve that version through the project's own API.
    registration = json.loads((d.project / "reports" / "registration.json").read_text())
    for host in d.inference:
        served = d.observed["versions"][host.name]
        assert served["model_version"] == "1" and served["run_id"] == registration["run_id"], (
            f"{host.name} serves {served}, expected {registration}"
        )
    status, body = h.http(
        f"http://{d.inference_a.address}:8000/predict", json.dumps(h.first_test_row(d.project)).encode()
    )
    assert status == 200 and json.loads(body)["prediction"] in (0, 1), f"/predict: {status} {body!r}"

    # Prometheus on the monitoring host scrapes both APIs and loaded the project's alert rules.
    prometheus = f"http://{d.monitoring.address}:9090/api/v1"

    def model_api_up():
        _, body = h.http(f"{prometheus}/query?query=up%7Bjob%3D%22model-api%22%7D")
        up = {r["metric"]["instance"]: r["value"][1] for r in json.loads(body)["data"]["result"]}
        wanted = {f"{host.address}:8000": "1" for host in d.inference}
        if up != wanted:
            raise ValueError(f"up by instance: {up}")
        return up

    h.wait_for(model_api_up, timeout=90, interval=2)
    status, body = h.http(f"{prometheus}/rules")
    groups = {group["name"] for group in json.loads(body)["data"]["groups"]}
    import yaml

    rules = yaml.safe_load((d.project / "monitoring" / "alert_rules.yml").read_text())
    own = {group["name"] for group in rules["groups"]}
    assert own and own <= groups, f"Prometheus loaded {sorted(groups)}, the project has {sorted(own)}"


def test_deploy_hosts_rolls_a_new_model_without_a_failed_request(deployment: Deployment) -> None:
    d = deployment
    body = json.dumps(h.first_test_row(d.project)).encode()
    targets = [(host.address, 8000) for host in d.inference]

    # Given a retrained model, registered as version 2
    params = d.project / "params.yaml"
    params.write_text(params.read_text().replace("    C: 1.0\n", "    C: 0.5\n", 1))
    h.sh(d.project, "make", "pipeline", env={"MLFLOW_TRACKING_URI": d.tracking_uri})
    assert json.loads((d.project / "reports" / "registration.json").read_text())["version"] == "2"

    # When make deploy-hosts rolls it out while a bounded load runs against both hosts
    stop = threading.Event()
    results: list[loadgen.LoadResult] = []
    load = threading.Thread(
        target=lambda: results.append(
            loadgen.run_pool_load(
                targets, "/predict", body, total=LOAD_BOUND, concurrency=4, timeout=600, stop=stop.is_set
            )
        )
    )
    load.start()
    try:
        time.sleep(2)
        d.make("rollout", "deploy-hosts")
        time.sleep(2)
    finally:
        stop.set()
        load.join()
    [result] = results
    d.lab.timings["rollout requests"] = result.count
    d.lab.timings["rollout failed requests"] = result.errors
    d.lab.timings["rollout retries on the other host"] = result.retries

    # Then no request failed, both hosts answered, and each serves version 2
    assert result.errors == 0, f"{result.errors} of {result.count} requests failed: {result.failures[:5]}"
    assert result.count < LOAD_BOUND, "the load ended before the rollout did"
    assert result.count > 50 and set(result.by_target) == {a for a, _ in targets}, (
        f"the load did not reach both hosts: {result.by_target}"
    )
    for host in d.inference:
        assert d.version(host)["model_version"] == "2", f"{host.name} does not serve version 2"

    # When a broken model (it fails /ready) is rolled out
    bundle = d.project / "models" / "bundle"
    backup = d.lab.workdir / "bundle-v2"
    shutil.copytree(bundle, backup)
    model_files = [p for p in (bundle / "model").iterdir() if p.suffix in (".skops", ".pkl")]
    assert model_files, f"no model file in {bundle / 'model'}"
    for path in model_files:
        path.write_bytes(b"not a model")
    pid_b = d.main_pid(d.inference_b)
    load = threading.Thread(
        target=lambda: results.append(
            # The second host alone: no failover to hide a gap in its service.
            loadgen.run_pool_load(
                targets[1:], "/predict", body, total=LOAD_BOUND, concurrency=2, timeout=600, stop=stop.is_set
            )
        )
    )
    stop.clear()
    load.start()
    try:
        broken = d.make("broken rollout", "deploy-hosts", check=False)
    finally:
        stop.set()
        load.join()
        shutil.rmtree(bundle)
        shutil.copytree(backup, bundle)

    # Then the rollout stops on the first host, which is back on version 2, and the other
    # host never stopped serving version 2
    assert broken.returncode != 0, "a model that fails /ready was rolled out"
    assert "did not answer 200 on /ready" in broken.output, f"no clear message:\n{broken.tail(40)}"
    recap = broken.recap()
    assert d.inference_b.address not in recap or recap[d.inference_b.address]["changed"] == 0, (
        f"the rollout went on to the second host: {recap}"
    )
    assert d.version(d.inference_a)["model_version"] == "2", "the first host is not back on version 2"
    assert h.http(f"http://{d.inference_a.address}:8000/ready")[0] == 200, "the first host is not ready"
    assert d.main_pid(d.inference_b) == pid_b, "the second host's service was restarted"
    assert d.version(d.inference_b)["model_version"] == "2"
    second = results[-1]
    d.lab.timings["broken rollout: requests to the other host"] = second.count
    assert 0 < second.count < LOAD_BOUND, "the load on the other host did not span the rollout"
    assert second.errors == 0 and second.retries == 0 and second.count > 0, (
        f"the other host failed {second.errors} (retried {second.retries}) of {second.count} requests"
    )
