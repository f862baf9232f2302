"""The andamio CLI: help, version, `new` and its errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from andamio import __version__
from andamio.cli import app

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_help_lists_commands_with_descriptions():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "new" in result.output and "Render a new ML project" in result.output
    assert "Exit codes" in result.output and "2 error" in result.output  # andamio.outcome's table


def test_module_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "andamio", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and "andamio" in proc.stdout


@pytest.mark.render
def test_new_renders_commits_and_records_an_absolute_source(tmp_path: Path):
    dest = tmp_path / "proj"
    result = runner.invoke(app, ["new", str(dest), "--defaults", "-d", "ml_task=regression"])
    assert result.exit_code == 0, result.output
    answers = yaml.safe_load((dest / ".copier-answers.yml").read_text())
    assert answers["ml_task"] == "regression"
    assert Path(answers["_src_path"]).is_absolute(), "a relative template source breaks later updates"
    log = subprocess.run(["git", "log", "--oneline"], cwd=dest, capture_output=True, text=True, check=True)
    assert "Initial commit from andamio" in log.stdout
    status = subprocess.run(["git", "status", "--porcelain"], cwd=dest, capture_output=True, text=True)
    assert status.stdout == "", f"first commit left files out: {status.stdout}"


def test_new_refuses_a_non_empty_directory(tmp_path: Path):
    (tmp_path / "keep.txt").write_text("user data")
    result = runner.invoke(app, ["new", str(tmp_path), "--defaults"])
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert "not empty" in output and "--overwrite" in output
    assert (tmp_path / "keep.txt").read_text() == "user data"
    assert not (tmp_path / "Makefile").exists()


@pytest.mark.render
def test_new_overwrite_renders_into_a_non_empty_directory(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["new", str(tmp_path), "--defaults", "--overwrite", "--no-git"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "Makefile").is_file() and (tmp_path / "notes.txt").read_text() == "mine"
    assert not (tmp_path / ".git").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-d", "ml_task"], "expected KEY=VALUE"),
        (["-d", "colour=blue"], "unknown question(s) in --data: colour"),
        (["-d", "package_name=class"], "is a Python keyword"),
        (["-d", "author_email=nobody"], "not an e-mail address"),
        (["-d", "ml_task=clustering"], "'clustering' is not in"),
    ],
)
def test_new_reports_bad_answers_clearly(tmp_path: Path, args, message):
    result = runner.invoke(app, ["new", str(tmp_path / "p"), "--defaults", *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split()), result.output
    assert not (tmp_path / "p" / "Makefile").exists(), "nothing may be rendered on bad input"


def _repo(path: Path) -> Path:
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, check=True)
    (path / ".gitignore").write_text("build/\n")
    return path


@pytest.mark.render
def test_new_inside_a_monorepo_joins_it_but_an_ignored_folder_gets_its_own_repo(tmp_path: Path):
    mono = _repo(tmp_path / "mono")
    joined = runner.invoke(app, ["new", str(mono / "models" / "churn"), "--defaults"])
    assert joined.exit_code == 0, joined.output
    assert not (mono / "models" / "churn" / ".git").exists(), (
        "a monorepo subproject must not get a nested repo"
    )

    separate = runner.invoke(app, ["new", str(mono / "build" / "demo"), "--defaults"])
    assert separate.exit_code == 0, separate.output
    assert (mono / "build" / "demo" / ".git").is_dir(), "an ignored folder is not part of the enclosing repo"
