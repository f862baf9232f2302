"""The Kubeflow Pipelines form of the pipeline (issue 14): rendered, compiled, run by kfp.

Render tier: orchestration/kubeflow/ exists only for ``orchestrator=kubeflow``; its module
parses and runs each DVC stage once, in order; the shipped IR YAML names the project's
pipeline image.  Slow + integration: kfp itself (build/tools/kfp, pinned like the generated
Makefile) compiles the rendered module to exactly the shipped YAML (`make kfp-check`), and
kfp's local runner (SubprocessRunner) runs the four components, each on a fresh copy of what
the pipeline image carries (the committed files, no git) like a pod, to the registry result
of `make pipeline`; a failing quality gate fails the run and registers nothing.

kfp's pins (protobuf, requests, urllib3, kubernetes) never meet the project's: the components'
Python runs in kfp's venv, and the stages they start (`dvc repro`, `python -m <pkg>`) come
from the project's own .venv on PATH, as they come from the pipeline image on a cluster.
"""

from __future__ import annotations

import ast
import io
import itertools
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from support.kfp_tools import kfp_runtime, kfp_venv, makefile_pin
from support.matrix import choice_values
from support.process import commit_all, sh

KUBEFLOW = {"orchestrator": "kubeflow"}
STAGES = ["prepare", "train", "evaluate", "register"]
SLUG = "breast-cancer-classifier"  # the default project's


# --- render tier -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered(project_factory, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default project with orchestrator=kubeflow, for the render tests."""
    return project_factory.new(tmp_path_factory.mktemp("kubeflow") / "project", KUBEFLOW)


@pytest.mark.render
@pytest.mark.parametrize("orchestrator", choice_values("orchestrator"))
def test_kubeflow_folder_and_targets_only_for_kubeflow(render, rendered, orchestrator):
    project = rendered if orchestrator == "kubeflow" else render({"orchestrator": orchestrator})
    makefile = (project / "Makefile").read_text()
    if orchestrator == "kubeflow":
        assert sorted(p.name for p in (project / "orchestration" / "kubeflow").iterdir()) == [
            "pipeline.py",
            "pipeline.yaml",
        ]
        assert "kfp-compile:" in makefile and "kfp-check:" in makefile
        # and `make check`, which every CI provider's check job runs, includes kfp-check
        assert re.search(r"^check: .*\bkfp-check\b", makefile, re.MULTILINE), "make check skips kfp-check"
    else:
        assert not (project / "orchestration" / "kubeflow").exists(), f"kubeflow files for {orchestrator}"
        assert "kfp" not in makefile, f"kfp targets in the Makefile of orchestrator={orchestrator}"


@pytest.mark.render
def test_pipeline_module_runs_each_dvc_stage_once_in_order(rendered):
    project = rendered
    source = (project / "orchestration" / "kubeflow" / "pipeline.py").read_text()
    tree = ast.parse(source)
    components = {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any("dsl.component" in ast.unparse(d) for d in node.decorator_list)
    }
    assert list(components) == STAGES, f"components: {list(components)}"
    dvc_stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    for name, node in components.items():
        calls = [c for c in ast.walk(node) if isinstance(c, ast.Call) and ast.unparse(c.func) == "run_stage"]
        assert len(calls) == 1 and ast.literal_eval(calls[0].args[0]) == name, f"{name} runs another stage"
        assert name in dvc_stages, f"{name} is not a stage of dvc.yaml"
    assert f'"{SLUG}-pipeline:latest"' in source, "the default image is not the project's pipeline image"
    for args in (["check"], ["format", "--check"]):  # the project's own ruff settings
        proc = sh(project, sys.executable, "-m", "ruff", *args, "orchestration/kubeflow", check=False)
        assert proc.returncode == 0, f"ruff {args[0]} on pipeline.py:\n{proc.stdout}{proc.stderr}"

    ir = yaml.safe_load((project / "orchestration" / "kubeflow" / "pipeline.yaml").read_text())
    assert ir["pipelineInfo"]["name"] == f"{SLUG}-training"
    executors = ir["deploymentSpec"]["executors"].values()
    assert {e["container"]["image"] for e in executors} == {f"{SLUG}-pipeline:latest"}
    # the image's own Python runs kfp's executor: no pod installs anything at start
    assert not any("pip install" in " ".join(e["container"]["command"]) for e in executors)
    tasks = ir["root"]["dag"]["tasks"]
    assert sorted(tasks) == sorted(STAGES)
    for before, after in itertools.pairwise(STAGES):
        assert tasks[after]["dependentTasks"] == [before], f"{after} does not wait for {before}"
    # a failed gate must fail the run: no task is allowed to swallow its stage's failure
    assert all(not t.get("triggerPolicy") for t in tasks.values())


# --- slow + integration: the real kfp ---------------------------------------------------


@pytest.fixture(scope="module")
def kfp_project(project_factory, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A rendered kubeflow project, committed and set up, and the kfp venv it is tested with."""
    project = project_factory.new(tmp_path_factory.mktemp("kfp") / "project", KUBEFLOW)
    commit_all(project)
    venv = kfp_venv(makefile_pin(project / "Makefile"))
    proc = sh(project, "make", "setup", check=False)
    assert proc.returncode == 0, f"make setup failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    return project, venv


def _image_copy(project: Path, dest: Path) -> Path:
    """What the pipeline image carries in /app: the committed files, no git, no outputs."""
    dest.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", "HEAD"], cwd=project, capture_output=True, check=True
    )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def _local_run(project: Path, venv: Path, project_dir: Path, root: Path, push: bool = False):
    """Run the pipeline with kfp's local subprocess runner; return the finished process.

    The driver runs in kfp's venv; each component's command runs as in the pipeline image's
    pod: ``python3`` from PATH, i.e. the project's own .venv, with kfp (no dependencies) on
    PYTHONPATH in place of the image's copy.  SubprocessRunner would swap its own interpreter
    in for ``python3``: the driver turns that off, as kfp's pins cannot share the project's.
    """
    runtime = kfp_runtime(makefile_pin(project / "Makefile"))
    driver = f"""
import sys
sys.path.insert(0, "orchestration/kubeflow")
import os
import kfp.local
from kfp.local import subprocess_task_handler
subprocess_task_handler.replace_python_executable = lambda command, _python: list(command)
import pipeline
os.environ["PYTHONPATH"] = {str(runtime)!r}
kfp.local.init(runner=kfp.local.SubprocessRunner(use_venv=False), pipeline_root={str(root)!r})
pipeline.training(project_dir={str(project_dir)!r}, tracking_uri={f"sqlite:///{project}/mlflow.db"!r},
                  push={push!r})
"""
    # the project's venv first: the components and their stages run with the project's Python
    path = f"{project / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"
    return sh(project, venv / "bin" / "python", "-c", driver, check=False, env={"PATH": path})


_VERSIONS = """
import json
from mlflow.tracking import MlflowClient
c = MlflowClient("sqlite:///mlflow.db")
out = []
for v in c.search_model_versions("name = '%s'"):
    r = c.get_run(v.run_id)
    out.append(dict(version=int(v.version), tags=v.tags,
                    metrics={k: m for k, m in r.data.metrics.items() if k.startswith("test_")}))
print(json.dumps(sorted(out, key=lambda v: v["version"])))
"""


def _versions(project: Path, model: str) -> list[dict]:
    proc = sh(project, ".venv/bin/python", "-c", _VERSIONS % model, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.integration
def test_kfp_compiles_the_module_to_the_shipped_ir_and_names_the_image(kfp_project):
    project, venv = kfp_project
    ir = project / "orchestration" / "kubeflow" / "pipeline.yaml"
    shipped = ir.read_text()

    # the shipped YAML is what kfp compiles from the rendered module (default answers):
    # `make check`, what CI's check job runs, says so after its lint and type checks
    proc = sh(project, "make", "check", f"KFP_VENV={venv}", check=False)
    assert proc.returncode == 0, (
        f"shipped IR differs from a fresh compile:\n{proc.stdout[-4000:]}{proc.stderr}"
    )
    assert "kfp-check: orchestration/kubeflow/pipeline.yaml matches pipeline.py" in proc.stdout, proc.stdout

    # PIPELINE_IMAGE at compile time names the image; kfp-check then reports the YAML stale
    image = "team.example/breast-pipeline:1.2"
    try:
        env = {"PIPELINE_IMAGE": image}
        proc = sh(project, "make", "kfp-compile", f"KFP_VENV={venv}", check=False, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        compiled = yaml.safe_load(ir.read_text())
        assert {e["container"]["image"] for e in compiled["deploymentSpec"]["executors"].values()} == {image}
        stale = sh(project, "make", "kfp-check", f"KFP_VENV={venv}", check=False)
        assert stale.returncode != 0 and "stale" in stale.stderr, (
            "kfp-check passed on a changed pipeline.yaml"
        )
    finally:
        ir.write_text(shipped)  # the other tests need the committed tree clean


@pytest.mark.slow
@pytest.mark.integration
def test_kfp_local_run_registers_the_model_make_pipeline_registers(kfp_project, tmp_path):
    project, venv = kfp_project
    proc = sh(project, "make", "pipeline", check=False)
    assert proc.returncode == 0, f"make pipeline failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    registration = json.loads((project / "reports" / "registration.json").read_text())
    model = registration["name"]
    before = _versions(project, model)

    # given: the image's project files, with a DVC remote the pods share (object storage on a
    # cluster; a folder here)
    app = _image_copy(project, tmp_path / "app")
    remote = tmp_path / "dvc-remote"
    (app / ".dvc" / "config.local").write_text(f"['remote \"storage\"']\n    url = {remote}\n")

    # when: kfp runs the four components, each on its own copy of those files, and pushes
    proc = _local_run(project, venv, app, tmp_path / "kfp-root", push=True)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"local kfp run failed:\n{log[-6000:]}"

    # then: one new version, with the same data lineage and test metrics as make pipeline's
    # (the image has no git: its runs record no commit)
    after = _versions(project, model)
    assert len(after) == len(before) + 1, f"versions before {before}, after {after}"
    made, ran = next(v for v in after if str(v["version"]) == registration["version"]), after[-1]
    for tag in ("data_hash", "raw_data_hash", "quality_gate"):
        assert ran["tags"][tag] == made["tags"][tag], f"tag {tag}: kfp {ran['tags']} vs make {made['tags']}"
    assert ran["metrics"] and ran["metrics"] == made["metrics"], (
        f"kfp {ran['metrics']} vs make {made['metrics']}"
    )
    # each later component ran its own stage only: the earlier outputs came in its state
    for stage in STAGES[1:]:
        assert f"dvc repro --single-item {stage}" in log
    assert log.count("Running stage 'prepare'") == 1, "prepare ran again in a later component"
    python = project / ".venv" / "bin" / "python3"
    assert all(f"stage {stage}: {app} with {python}" in log for stage in STAGES), (
        "a component did not run with the project's own Python"
    )
    # push=True: the remote holds every output dvc.lock of the last state names
    (state,) = (tmp_path / "kfp-root").glob("*/register/state")
    with tarfile.open(state) as tar:
        lock = yaml.safe_load(tar.extractfile("dvc.lock").read())
    cached = [
        o
        for st in lock["stages"].values()
        for o in st["outs"]
        if o["path"] in ("data/prepared", "models/bundle")
    ]
    assert len(cached) == 2, lock
    for out in cached:
        digest = out["md5"]
        assert (remote / "files" / "md5" / digest[:2] / digest[2:]).is_file(), f"{out['path']} not pushed"


@pytest.mark.slow
@pytest.mark.integration
def test_kfp_local_run_fails_on_a_failing_quality_gate(kfp_project, tmp_path):
    project, venv = kfp_project
    model = yaml.safe_load((project / ".copier-answers.yml").read_text())["model_name"]
    before = _versions(project, model)

    # given: an image whose params.yaml sets a gate no model can pass
    app = _image_copy(project, tmp_path / "app")
    params = yaml.safe_load((app / "params.yaml").read_text())
    params["gate"]["min"]["accuracy"] = 1.01
    (app / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    # when / then: the run fails at evaluate, register never runs, nothing is registered
    proc = _local_run(project, venv, app, tmp_path / "kfp-root")
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"the run passed with an impossible gate:\n{log[-4000:]}"
    assert "quality gate FAILED" in log and "Inner task failed" in log, log[-4000:]
    assert "Executing task \x1b[96m'register'" not in log and "Executing task 'register'" not in log
    assert _versions(project, model) == before, "a version was registered past a failed gate"
