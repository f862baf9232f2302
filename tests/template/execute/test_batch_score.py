"""Tier 3 (slow): batch scoring of a million rows in a generated project, on both engines.

The default project runs its pipeline and promotes its model; a 1M-row table shaped like the
demo data is scored by ``make batch-score`` with the streaming engine and, for real, on
Apache Spark ``local[2]`` (the project's ``spark`` extra, pyspark, installed by the Makefile;
Java is on the machine). The two outputs are equal row for row; both carry the model version
and run id, the drift check reads both, and bad input fails on one line leaving nothing
behind. The registry's champion scores like the bundle.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from support.process import commit_all, sh
from support.project import Projects
from support.scoring_data import demo_table, facts, score

pytestmark = pytest.mark.slow

ROWS = 1_000_000
SPARK = {"SCORE_ENGINE": "spark", "SPARK_MASTER": "local[2]"}


def package(project: Path) -> str:
    return yaml.safe_load((project / ".copier-answers.yml").read_text())["package_name"]


def left_beside(out: Path) -> list[str]:
    """Temporary outputs left next to ``out`` (none may survive a run, failed or not)."""
    if not out.parent.is_dir():
        return []
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}"))


@pytest.fixture(scope="module")
def project(project_factory: Projects, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default project with its pipeline run and its model promoted to @champion."""
    project = project_factory.new(tmp_path_factory.mktemp("batch") / "project")
    commit_all(project)
    sh(project, "make", "setup", "pipeline", "promote")
    return project


@pytest.fixture(scope="module")
def big_table(project: Path) -> Path:
    return demo_table(project, project / "data" / "batch.parquet", ROWS, seed=1)


@pytest.fixture(scope="module")
def scored_locally(project: Path, big_table: Path) -> Path:
    out = project / "scores" / "local.parquet"
    proc = score(project, big_table, out, KEEP="id")
    assert f"{ROWS} rows -> {out}" in proc.stdout, proc.stdout
    return out


def test_the_default_engine_scores_a_million_rows_with_lineage(project, scored_locally):
    registration = json.loads((project / "reports" / "registration.json").read_text())
    found = facts(project, scored_locally)
    assert found["rows"] == [ROWS]
    assert found["row_ids_are_positions"] and found["ids_match"], "row ids are not the input's row positions"
    assert {"prediction", "proba_0", "proba_1", "model_version", "run_id"} <= set(found["columns"]), found
    assert found["versions"] == [registration["version"]] and found["run_ids"] == [registration["run_id"]], (
        found
    )
    assert left_beside(scored_locally) == []


def test_the_drift_check_reads_the_scored_output(project, scored_locally):
    proc = sh(project, "make", "drift", f"CURRENT={scored_locally}")
    assert "drift check passed: 0/30 features drifted" in proc.stdout, proc.stdout


@pytest.mark.integration
def test_spark_scores_the_same_predictions_row_for_row(project, big_table, scored_locally):
    # When the same table is scored on Spark local[2] (the Makefile installs the spark extra)
    out = project / "scores" / "spark.parquet"
    proc = score(project, big_table, out, KEEP="id", **SPARK)
    assert f"{ROWS} rows -> {out} (engine spark" in proc.stdout, proc.stdout

    # Then it wrote a folder of Parquet parts, complete, nothing left beside it
    assert (out / "_SUCCESS").is_file() and len(list(out.glob("part-*.parquet"))) >= 2, sorted(out.iterdir())
    assert left_beside(out) == []
    # And every row equals the default engine's: ids, model input, prediction, probabilities, lineage
    found = facts(project, scored_locally, out)
    assert found["rows"] == [ROWS, ROWS] and found["row_ids_are_positions"] and found["ids_match"], found
    assert found["equal"], f"columns differing between the engines: {found['differing']}"
    # And the drift check reads the folder
    drift = sh(project, "make", "drift", f"CURRENT={out}")
    assert "drift check passed" in drift.stdout, drift.stdout


def test_the_registry_champion_scores_like_the_bundle(project, tmp_path):
    # Given a small CSV and the promoted model in the registry
    source = demo_table(project, tmp_path / "small.csv", 5000, seed=2)
    registration = json.loads((project / "reports" / "registration.json").read_text())
    uri = f"models:/{registration['name']}@champion"

    # When it is scored with MODEL_URI and with the bundle
    from_registry, from_bundle = tmp_path / "registry.parquet", tmp_path / "bundle.parquet"
    proc = score(project, source, from_registry, MODEL_URI=uri, KEEP="id")
    assert f"model {uri}, version {registration['version']}" in proc.stdout, proc.stdout
    score(project, source, from_bundle, KEEP="id")

    # Then the predictions are the same
    found = facts(project, from_registry, from_bundle)
    assert found["equal"], found["differing"]


def _bad_inputs(project: Path, folder: Path) -> dict[str, tuple[Path, str]]:
    """Tables that break the contract: a missing column, text in a numeric column."""
    code = f"""
import pandas as pd
f = pd.read_csv({str(folder / "good.csv")!r})
f.drop(columns=["mean_radius"]).to_csv({str(folder / "missing.csv")!r}, index=False)
f["mean_area"] = f["mean_area"].astype(object)
f.loc[len(f) - 1, "mean_area"] = "abc"
f.to_csv({str(folder / "text.csv")!r}, index=False)
f.astype({{"mean_area": str}}).to_parquet({str(folder / "text.parquet")!r}, index=False)
"""
    demo_table(project, folder / "good.csv", 3000, seed=3)
    sh(project, ".venv/bin/python", "-c", code)
    return {
        "missing file": (folder / "absent.parquet", "absent.parquet not found"),
        "missing column": (folder / "missing.csv", "missing column(s) mean_radius of the data contract"),
        "text in a numeric CSV column": (folder / "text.csv", "column 'mean_area'"),
        "text in a numeric Parquet column": (folder / "text.parquet", "column 'mean_area': type numeric"),
    }


def _assert_fails_cleanly(
    proc: subprocess.CompletedProcess[str], out: Path, expected: str, case: str
) -> None:
    errors = [line for line in proc.stderr.splitlines() if line.startswith("batch-score: error:")]
    assert proc.returncode != 0, f"{case}: exit 0"
    assert len(errors) == 1 and expected in errors[0], f"{case}: {proc.stderr[-2000:]}"
    assert not out.exists() and left_beside(out) == [], f"{case}: output left behind"


def test_bad_input_fails_on_one_line_and_leaves_no_output(project, tmp_path):
    for case, (source, expected) in _bad_inputs(project, tmp_path).items():
        out = tmp_path / "out" / "scored.parquet"
        proc = score(project, source, out, check=False, KEEP="id")
        _assert_fails_cleanly(proc, out, expected, case)


@pytest.mark.integration
def test_bad_input_fails_cleanly_on_spark_too(project, tmp_path):
    cases = _bad_inputs(project, tmp_path)
    for case in ("missing column", "text in a numeric CSV column", "text in a numeric Parquet column"):
        source, expected = cases[case]
        if case == "text in a numeric CSV column":
            expected = 'numbers; found "abc"'
        out = tmp_path / "out" / "spark.parquet"
        proc = score(project, source, out, check=False, **SPARK)
        _assert_fails_cleanly(proc, out, expected, f"spark: {case}")


@pytest.mark.integration
def test_spark_records_the_jvm_class_archive_once_then_maps_it(project, tmp_path):
    # Given no class archive in the project's environment yet
    cache = project / ".venv" / "var" / "cache"  # the environment's prefix: <prefix>/var/cache
    subprocess.run(["rm", "-rf", str(cache)], check=True)
    source = demo_table(project, tmp_path / "small.parquet", 2000, seed=4)

    # When a first local Spark run ends
    score(project, source, tmp_path / "first.parquet", KEEP="id", **SPARK)

    # Then its JVM recorded the archive, put in place whole: no temporary file is left
    recorded = sorted(p.name for p in cache.rglob("*") if p.is_file())
    assert len(recorded) == 1 and recorded[0].startswith("spark-") and recorded[0].endswith(".jsa"), recorded

    # When the next run's JVMs log where their classes come from (JAVA_TOOL_OPTIONS: it
    # changes neither the options Spark gives nor the class path, which the archive must match)
    logs = tmp_path / "classes"
    logs.mkdir()
    env = {"JAVA_TOOL_OPTIONS": f"-Xlog:class+load=info:file={logs}/%p.log"}
    second = score(project, source, tmp_path / "second.parquet", env=env, KEEP="id", **SPARK)
    assert "2000 rows ->" in second.stdout, second.stdout

    # Then Spark's classes came from the archive, not from its jars (lambdas, generated at
    # run time, come from neither)
    lines = [line for log in logs.iterdir() for line in log.read_text().splitlines()]
    spark = [line for line in lines if " org.apache.spark." in line]
    shared = [line for line in spark if "source: shared objects file (top)" in line]
    from_jars = [line for line in spark if "source: file:" in line]
    assert len(shared) > 500 and len(from_jars) < 0.05 * len(shared), (len(shared), from_jars[:5])
    # And the archive is unchanged, the predictions the same as the first run's
    assert sorted(p.name for p in cache.rglob("*") if p.is_file()) == recorded
    assert facts(project, tmp_path / "first.parquet", tmp_path / "second.parquet")["equal"]


def test_the_bundle_loads_without_mlflow_and_a_pickled_model_through_it(project, tmp_path):
    # Given the bundle training wrote (MLflow's skops format) and a copy saved as a pickle
    code = """
import json, sys
from pathlib import Path
from {pkg} import bundle
from {pkg}.settings import load_settings

settings = load_settings()
model = bundle.load_model(settings.bundle_dir)
skops_without_mlflow = "mlflow" not in sys.modules

import mlflow.sklearn
pickled = Path(sys.argv[1])
mlflow.sklearn.save_model(model, str(pickled / bundle.MODEL_DIR), serialization_format="cloudpickle")
again = bundle.load_model(pickled)
reference = mlflow.sklearn.load_model(str(settings.bundle_dir / bundle.MODEL_DIR))
print(json.dumps({{
    "skops_without_mlflow": skops_without_mlflow,
    "types": [type(m).__name__ for m in (model, again, reference)],
    "same": repr(model.get_params()) == repr(again.get_params()) == repr(reference.get_params()),
    "coefficients": all((model[-1].coef_ == m[-1].coef_).all() for m in (again, reference)),
}}))
"""
    proc = sh(project, ".venv/bin/python", "-c", code.format(pkg=package(project)), str(tmp_path / "pickled"))
    found = json.loads(proc.stdout.strip().splitlines()[-1])

    # Then the skops model loaded without importing MLflow; the pickle loaded through MLflow;
    # both are the model MLflow's own loader reads
    assert found["skops_without_mlflow"], found
    assert found["types"] == ["Pipeline"] * 3 and found["same"] and found["coefficients"], found


@pytest.mark.integration
def test_spark_workers_import_the_installed_pyspark_not_its_zips(project, tmp_path):
    # Given the spark extra (the Makefile installs it) and a Spark home of its own, elsewhere
    sh(project, "make", "setup", "SCORE_ENGINE=spark")
    code = """
import json, shutil, sys
from importlib.util import find_spec
from pathlib import Path

lib = Path(find_spec("pyspark").origin).parent / "python" / "lib"
zips = sorted(str(p) for p in lib.glob("*.zip"))
other = Path(sys.argv[1]) / "python" / "lib"
other.mkdir(parents=True)
elsewhere = str(shutil.copy(lib / "pyspark.zip", other))
# the path Spark gives its Python workers: its zips first
sys.path[:0] = zips
from {pkg}.batch import daemon
import pyspark, py4j
left = [p for p in sys.path if p in zips]
# another Spark's zip, first on the path
sys.path.insert(0, elsewhere)
daemon.installed_first()
print(json.dumps({{
    "zips": [Path(z).name for z in zips], "left": left,
    "pyspark": pyspark.__file__, "py4j": py4j.__file__,
    "kept": elsewhere in sys.path,
}}))
"""
    proc = sh(
        project, ".venv/bin/python", "-c", code.format(pkg=package(project)), str(tmp_path / "spark-home")
    )
    found = json.loads(proc.stdout.strip().splitlines()[-1])

    # When the daemon module is imported, as Spark's workers do: pyspark and py4j come from the
    # environment (compiled once), not from the installed package's zips; another Spark's stay
    assert "pyspark.zip" in found["zips"] and any(z.startswith("py4j-") for z in found["zips"]), found
    assert found["left"] == [] and ".zip" not in found["pyspark"] and ".zip" not in found["py4j"], found
    assert found["kept"], found
