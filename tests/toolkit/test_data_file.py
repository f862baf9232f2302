"""`andamio new --data-file PATH --target COLUMN`: refusals before anything is written, the
task inferred from the target, and (slow) a project that trains on the file with no edit.

Static tier: every refusal leaves DEST absent. Render tier: a failing project step (a
stand-in `make` on PATH) removes what was rendered. Slow: the whole path on a generated
mixed-type CSV, and the Parquet checks that run in the project's environment.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
from pathlib import Path

import pytest
import yaml
from support import datagen
from support.process import sh
from typer.testing import CliRunner

from andamio import datafile
from andamio.cli import app
from andamio.errors import AndamioError

runner = CliRunner()
HAS_PYARROW = importlib.util.find_spec("pyarrow") is not None


def write_csv(path: Path, rows: list[list[object]], header: list[str] | None = None) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header or ["x", "label"])
        writer.writerows(rows)
    return path


def labelled(n: int, labels: list[object] | None = None) -> list[list[object]]:
    """``n`` rows of ``[x, label]``, the labels cycling through ``labels`` (default a, b, c)."""
    labels = labels or ["a", "b", "c"]
    return [[i * 0.5, labels[i % len(labels)]] for i in range(n)]


def new(dest: Path, data_file: Path, target: str = "label", *extra: str):
    return runner.invoke(
        app, ["new", str(dest), "--data-file", str(data_file), "--target", target, "--defaults", *extra]
    )


def refused(result, dest: Path, *fragments: str) -> None:
    """Assert the CLI refused with exit 2, said every fragment, and wrote nothing."""
    output = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    for fragment in fragments:
        assert fragment in output, f"{fragment!r} missing from: {output}"
    assert not dest.exists(), f"{dest} was created although the data file was refused"


# Given a data file that cannot be used, when `andamio new --data-file` runs, then it says
# why, naming the file or the column, and DEST does not exist.


def test_refuses_a_missing_file(tmp_path: Path):
    refused(new(tmp_path / "p", tmp_path / "nope.csv"), tmp_path / "p", "nope.csv", "does not exist")


def test_refuses_a_directory(tmp_path: Path):
    (tmp_path / "folder.csv").mkdir()
    refused(new(tmp_path / "p", tmp_path / "folder.csv"), tmp_path / "p", "folder.csv", "is a directory")


def test_refuses_a_fifo_without_blocking_on_it(tmp_path: Path):
    os.mkfifo(tmp_path / "pipe.csv")
    refused(new(tmp_path / "p", tmp_path / "pipe.csv"), tmp_path / "p", "pipe.csv", "not a regular file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file (CI runs as root)")
def test_refuses_an_unreadable_file(tmp_path: Path):
    data = write_csv(tmp_path / "secret.csv", labelled(60))
    data.chmod(0)
    refused(new(tmp_path / "p", data), tmp_path / "p", "secret.csv", "not readable")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("table.txt", b"x,label\n1,a\n", "is not CSV or Parquet (suffix '.txt')"),
        ("table", b"x,label\n1,a\n", "is not CSV or Parquet (suffix '(none)')"),
        ("binary.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is binary, not CSV text"),
        ("latin1.csv", "x,label\n1,café\n".encode("latin-1"), "is not UTF-8 text"),
        ("empty.csv", b"", "is empty"),
        ("blank.csv", b"\n\n", "has no header row"),
        ("fake.parquet", b"x,label\n1,a\n", "is not a Parquet file (no PAR1 magic"),
        ("misnamed.csv", b"PAR1" + b"\x00" * 16 + b"PAR1", "is a Parquet file; name it misnamed.parquet"),
        ("semicolons.csv", b"x;label\n1;a\n", "separates columns with semicolons"),
    ],
)
def test_refuses_what_is_not_csv_or_parquet(tmp_path: Path, name: str, content: bytes, message: str):
    (tmp_path / name).write_bytes(content)
    refused(new(tmp_path / "p", tmp_path / name), tmp_path / "p", name, message)


def test_refuses_a_missing_target_column_and_suggests_a_close_one(tmp_path: Path):
    data = write_csv(tmp_path / "f.csv", labelled(60), header=["x", "Label"])
    refused(
        new(tmp_path / "p", data, "label"),
        tmp_path / "p",
        "f.csv has no column 'label' (did you mean 'Label'?); its columns: x, Label",
    )


def test_refuses_a_file_holding_only_the_target(tmp_path: Path):
    data = write_csv(tmp_path / "f.csv", [["a"]] * 60, header=["label"])
    refused(new(tmp_path / "p", data), tmp_path / "p", "only the column 'label'", "others to learn from")


def test_refuses_a_row_longer_than_the_header(tmp_path: Path):
    data = write_csv(tmp_path / "f.csv", [*labelled(60), [1, "a", "extra"]])
    refused(new(tmp_path / "p", data), tmp_path / "p", "f.csv, line 62: 3 fields, the header has 2")


def test_refuses_fewer_rows_than_the_split_needs(tmp_path: Path):
    # 49 labelled rows and a few without a label: the label-less ones do not count
    data = write_csv(tmp_path / "f.csv", [*labelled(datafile.MIN_ROWS - 1), [1.0, ""], [2.0, "NA"]])
    refused(
        new(tmp_path / "p", data),
        tmp_path / "p",
        "f.csv has 49 rows with a 'label' value (2 more have no value)",
        f"needs at least {datafile.MIN_ROWS}",
    )


def test_refuses_a_class_with_a_single_row(tmp_path: Path):
    data = write_csv(tmp_path / "f.csv", [*labelled(60, ["a", "b"]), [9.0, "rare"]])
    refused(new(tmp_path / "p", data), tmp_path / "p", "class rare has a single row", "stratified")


def test_refuses_more_classes_than_the_test_split_holds(tmp_path: Path):
    data = write_csv(tmp_path / "f.csv", labelled(60, [f"c{i}" for i in range(15)]))
    refused(new(tmp_path / "p", data), tmp_path / "p", "15 classes but the test split holds 12 rows")


def test_refuses_regression_on_text_labels(tmp_path: Path):
    data = write_csv(tmp_path / "f.csv", labelled(60))
    refused(
        new(tmp_path / "p", data, "label", "-d", "ml_task=regression"),
        tmp_path / "p",
        "column 'label' of",
        "holds string values; regression needs numbers",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "label"], "--data-file and --target go together"),
        (["--data-file", "f.csv"], "--data-file and --target go together"),
        (["--data-file", "f.csv", "--target", "label", "-d", "data_source=sql"], "--data data_source:"),
        (["--data-file", "f.csv", "--target", "label", "--overwrite"], "drop --overwrite"),
        (["--data-file", "f.csv", "--target", "label", "--no-git"], "DVC, which needs git; drop --no-git"),
    ],
)
def test_refuses_options_that_contradict_the_data_file(tmp_path: Path, args: list[str], message: str):
    write_csv(tmp_path / "f.csv", labelled(60))
    args = [str(tmp_path / a) if a == "f.csv" else a for a in args]
    result = runner.invoke(app, ["new", str(tmp_path / "p"), "--defaults", *args])
    refused(result, tmp_path / "p", message)


@pytest.mark.parametrize(
    ("labels", "task", "why"),
    [
        (["yes", "no"], "classification", "text labels, 2 classes"),
        (["True", "False", "true"], "classification", "true/false labels"),
        ([0, 1, 2], "classification", "whole numbers with 3 distinct values"),
        (["1.0", "2.0"], "classification", "whole numbers with 2 distinct values"),
        (list(range(30)), "regression", "whole numbers with 30 distinct values"),
        ([0.5, 1.25, 3.0], "regression", "numbers"),
    ],
)
def test_infers_the_task_from_the_target(tmp_path: Path, labels: list[object], task: str, why: str):
    # Given a target with these values (and missing markers pandas would skip)
    data = write_csv(tmp_path / "f.csv", [*labelled(90, labels), [1.0, ""], [2.0, "NaN"]])
    # When it is inspected, then the task follows the values
    checked = datafile.inspect(data, "label")
    answers, how = datafile.answers(checked, {})
    assert answers == {
        "data_source": "file",
        "data_path": "data/raw/f.csv",
        "target": "label",
        "ml_task": task,
    }
    assert how == f"ml_task={task}, inferred from 'label': {why}"
    assert checked.target is not None and checked.target.missing == 2


def test_a_task_given_with_data_wins_over_the_inference(tmp_path: Path):
    data = write_csv(tmp_path / "f.csv", labelled(60, [0, 1]))
    answers, how = datafile.answers(datafile.inspect(data, "label", "regression"), {"ml_task": "regression"})
    assert answers["ml_task"] == "regression" and how == "ml_task=regression (from --data)"


def test_the_copy_gets_a_portable_name_with_the_original_suffix(tmp_path: Path):
    data = write_csv(tmp_path / "Churn export (v2).CSV", labelled(60))
    assert datafile.inspect(data, "label").data_path == "data/raw/Churn_export_v2.csv"


def test_parquet_is_read_later_when_andamio_has_no_pyarrow(tmp_path: Path):
    if HAS_PYARROW:
        pytest.skip("pyarrow is installed next to andamio: Parquet is read before rendering")
    (tmp_path / "f.parquet").write_bytes(b"PAR1" + b"\x00" * 16 + b"PAR1")
    checked = datafile.inspect(tmp_path / "f.parquet", "label")
    assert checked.target is None and checked.columns is None
    answers, how = datafile.answers(checked, {})
    assert "ml_task" not in answers, "the project's default stands until the project reads the file"
    assert "pyarrow is not installed with andamio" in how and "-d ml_task=regression" in how


@pytest.mark.render
@pytest.mark.parametrize("existed", [False, True], ids=["new-dest", "empty-dest"])
def test_a_failing_project_step_leaves_dest_as_it_was(tmp_path: Path, monkeypatch, existed: bool):
    # Given a usable file, and a `make` that fails the way a broken setup does
    data = write_csv(tmp_path / "f.csv", labelled(60))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "make").write_text(
        '#!/bin/sh\necho "setup: resolving dependencies"\necho "no index" >&2\nexit 2\n'
    )
    (bin_dir / "make").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    dest = tmp_path / "parent" / "p"
    if existed:
        dest.mkdir(parents=True)

    # When andamio new renders and then runs the project's setup
    result = new(dest, data)

    # Then the error carries the step's output and nothing rendered is left
    output = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "`make setup` failed (exit 2)" in output and "setup: resolving dependencies" in output, output
    assert "no index" in output, "stderr of the step belongs in the error"
    if existed:
        assert dest.is_dir() and not any(dest.iterdir()), f"left behind: {list(dest.iterdir())}"
        assert "was emptied: nothing was kept" in output
    else:
        assert not (tmp_path / "parent").exists(), "the folders andamio created must go too"
        assert "was removed: nothing was kept" in output


# -- slow: the project made from a data file trains on it; Parquet read by the project's pyarrow


@pytest.fixture(scope="session")
def data_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python with pandas and pyarrow pinned as the generated project pins them."""
    return datagen.data_python(tmp_path_factory.mktemp("data-python") / "venv")


@pytest.mark.slow
def test_a_project_made_from_a_csv_trains_on_it_with_no_edit(tmp_path: Path, data_python: Path):
    # Given a mixed CSV: numeric with missing values, a rare category, a boolean, 3 string classes
    data = datagen.generate(data_python, tmp_path / "f.csv", 300, seed=3)
    dest = tmp_path / "churn"

    # When andamio makes a project from it
    result = new(dest, data)
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "ml_task=classification, inferred from 'label': text labels, 3 classes" in output, output

    # Then the file is in data/raw/, tracked by DVC, with the answers pointing at it
    assert (dest / "data" / "raw" / "f.csv.dvc").is_file(), "dvc add did not run"
    assert (dest / "data" / "raw" / "f.csv").read_bytes() == data.read_bytes()
    answers = yaml.safe_load((dest / ".copier-answers.yml").read_text())
    assert {k: answers[k] for k in ("data_source", "data_path", "target", "ml_task")} == {
        "data_source": "file",
        "data_path": "data/raw/f.csv",
        "target": "label",
        "ml_task": "classification",
    }
    # And the inferred contract lists every column with its kind, the target apart
    contract = yaml.safe_load((dest / "data" / "contract.yaml").read_text())
    expected = {name: kind for name, kind in datagen.column_kinds().items() if name != datagen.TARGET}
    assert {name: spec["kind"] for name, spec in contract["columns"].items()} == expected, contract
    assert contract["target"]["name"] == "label" and contract["target"]["kind"] == "categorical"
    assert sorted(contract["target"]["classes"]) == sorted(datagen.CLASSES)
    # And one commit holds everything: the tree is clean
    log = sh(dest, "git", "log", "--oneline").stdout.splitlines()
    assert len(log) == 1 and "Initial commit from andamio" in log[0], log
    assert sh(dest, "git", "status", "--porcelain").stdout == "", "the first commit left files out"

    # And the pipeline trains and evaluates on that file with no edit
    sh(dest, "make", "pipeline")
    metrics = json.loads((dest / "reports" / "metrics.json").read_text())
    assert "accuracy" in metrics, metrics
    schema = json.loads((dest / "models" / "bundle" / "schema.json").read_text())
    assert sorted(schema["classes"]) == sorted(datagen.CLASSES), schema


@pytest.mark.slow
def test_the_parquet_probe_applies_the_csv_rules(tmp_path: Path, data_python: Path):
    # Given Parquet files written by the project's pandas/pyarrow
    classes = datagen.generate(data_python, tmp_path / "classes.parquet", 300)
    numbers = datagen.generate(data_python, tmp_path / "numbers.parquet", 300, task="regression")
    few = datagen.generate(data_python, tmp_path / "few.parquet", 30)

    # Then the probe reads columns and target the way the CSV reader does
    checked = datafile.probe_parquet(classes, "label", data_python)
    assert checked.columns == tuple(datagen.column_kinds())
    assert checked.target is not None and checked.target.kind == "string"
    assert datafile.infer_task(checked.target) == ("classification", "text labels, 3 classes")
    regression = datafile.probe_parquet(numbers, "label", data_python).target
    assert regression is not None and datafile.infer_task(regression) == ("regression", "numbers")

    # And refuses what the CSV checks refuse, and a guessed task the target contradicts
    with pytest.raises(AndamioError, match="has no column 'nope'"):
        datafile.probe_parquet(classes, "nope", data_python)
    with pytest.raises(AndamioError, match="has 30 rows with a 'label' value"):
        datafile.probe_parquet(few, "label", data_python)
    with pytest.raises(AndamioError, match=r"looks like regression .* run again with -d ml_task=regression"):
        datafile.probe_parquet(numbers, "label", data_python, "classification", guessed=True)


@pytest.mark.slow
@pytest.mark.skipif(HAS_PYARROW, reason="pyarrow is installed next to andamio: Parquet is read up front")
def test_a_parquet_target_refused_after_setup_leaves_nothing(tmp_path: Path, data_python: Path):
    # Given a Parquet file whose target column does not exist (andamio cannot read Parquet itself)
    data = datagen.generate(data_python, tmp_path / "f.parquet", 300)
    dest = tmp_path / "p"

    # When andamio new renders, sets the project up and reads the file with its pyarrow
    result = new(dest, data, "churned")

    # Then it refuses, naming the column, and removes the project
    refused(result, dest, "has no column 'churned'", "was removed: nothing was kept")
