"""`andamio update`: template updates that never lose a line of the team's work.

The scenarios go from template v0.1.0 to v0.2.0 (tests/support/history.py) on real
rendered projects with the team's edits, through the real CLI and copier, and
finish with the generated project's own `make test`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import ROOT, load_hook
from support.history import DROPPED, NEW, NEW_TEST, OLD, OLD_PARAMS_HEADER, OLD_TEST, render_at

# COMPILE_BYTECODE=: no bytecode pre-compilation of the whole stack (these venvs live for one test)
from support.process import andamio, commit_all, git, make

from andamio import source
from andamio.answers import find_answers, is_answers_file
from andamio.update import conflicted_files

PKG = "breast_cancer_classifier"


def pre_commit_hook(project: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run .pre-commit-hooks.yaml's offline hook from this checkout with the project's pre-commit."""
    return subprocess.run(
        [
            ".venv/bin/pre-commit",
            "try-repo",
            str(ROOT),
            "andamio-check-system",
            "--all-files",
            "--hook-stage",
            "manual",
            "--verbose",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")},
    )


def answers(project: Path) -> dict:
    return yaml.safe_load((project / ".copier-answers.yml").read_text())


# --- fast unit tests ---------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected"),
    [("v0.1.0", "0.1.0"), ("0.2.0", "0.2.0"), ("v1.2.3-4-gabc123", "1.2.3.post4+abc123"), ("abc1234", None)],
)
def test_parse_version_reads_tags_and_describe_output(ref, expected):
    parsed = source.parse_version(ref)
    assert (str(parsed) if parsed else None) == expected


@pytest.mark.parametrize(
    ("name", "ok"),
    [(".copier-answers.yml", True), (".copier-answers.ci.yml", True), ("copier-answers.yml", False)],
)
def test_answers_file_names(name, ok):
    assert is_answers_file(name) is ok


def test_conflicted_files_needs_both_markers(tmp_path: Path):
    marked = tmp_path / "a.txt"
    marked.write_text("x\n<<<<<<< before updating\nmine\n=======\ntheirs\n>>>>>>> after updating\n")
    half = tmp_path / "b.txt"
    half.write_text("<<<<<<< only an opening line is prose, not a conflict\n")
    assert conflicted_files([marked, half]) == [marked]


def test_find_answers_prefers_own_files_then_searches_below(tmp_path: Path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / ".copier-answers.yml").write_text("{}")
    (tmp_path / "a" / ".venv").mkdir()
    (tmp_path / "a" / ".venv" / ".copier-answers.yml").write_text("{}")
    assert find_answers(tmp_path) == [tmp_path / "a" / "b" / ".copier-answers.yml"]
    (tmp_path / ".copier-answers.x.yml").write_text("{}")
    assert find_answers(tmp_path) == [tmp_path / ".copier-answers.x.yml"]


def test_rename_table_applies_only_releases_in_the_window(tmp_path: Path):
    load_renames = load_hook("migrations/follow_renames.py").load_renames
    from packaging.version import Version

    table = tmp_path / "renames.yml"
    table.write_text('- {version: "0.2.0", from: a, to: b}\n- {version: "0.3.0", from: b, to: c}\n')
    assert load_renames(table, Version("0.1.0"), Version("0.2.0")) == [("a", "b")]
    assert load_renames(table, Version("0.2.0"), Version("0.3.0")) == [("b", "c")]
    assert load_renames(table, Version("0.3.0"), Version("0.3.0")) == []


# --- render tier: refusals, several answers files ----------------------------


@pytest.mark.render
def test_dirty_tree_is_refused_and_nothing_changes(template_history: Path, tmp_path: Path):
    # Given a project on v0.1.0 with an uncommitted edit
    project = render_at(template_history, tmp_path / "dirty")
    head = git(project, "rev-parse", "HEAD")
    (project / "README.md").write_text("work in progress\n")
    # When the team runs andamio update
    proc = andamio(project, "update", "--trust")
    # Then it is refused with a clear message, and nothing changed
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "uncommitted changes" in proc.stderr and "README.md" in proc.stderr, proc.stderr
    assert git(project, "rev-parse", "HEAD") == head
    assert git(project, "branch", "--list").split() == ["*", "main"], "no update branch may be created"
    assert (project / "README.md").read_text() == "work in progress\n"
    assert answers(project)["_commit"] == OLD


def _second_template(root: Path) -> Path:
    """A tiny template with its own answers file, in two tagged versions."""
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "copier.yml").write_text(
        "_answers_file: .copier-answers.ci.yml\nrunner:\n  type: str\n  default: linux\n"
    )
    (root / "{{_copier_conf.answers_file}}.jinja").write_text("{{ _copier_answers|to_nice_yaml }}")
    (root / "ci.txt.jinja").write_text("runner={{ runner }}\nversion=1\n")
    commit_all(root, "v1")
    git(root, "tag", "v1.0.0")
    (root / "ci.txt.jinja").write_text("runner={{ runner }}\nversion=2\n")
    commit_all(root, "v2")
    git(root, "tag", "v2.0.0")
    return root


@pytest.mark.render
def test_several_answers_files_are_updated_on_one_branch(template_history: Path, tmp_path: Path):
    # Given a repo rendered from andamio v0.1.0 and from a second template v1.0.0
    project = render_at(template_history, tmp_path / "multi")
    ci = _second_template(tmp_path / "ci-template")
    render_at(ci, project, ref="v1.0.0")
    assert sorted(p.name for p in find_answers(project)) == [".copier-answers.ci.yml", ".copier-answers.yml"]
    # (--no-commit cannot chain two copier updates: refused up front, nothing changed)
    refused = andamio(project, "update", "--trust", "--no-commit")
    assert refused.returncode == 2 and "one answers file at a time" in refused.stderr, refused.stderr
    assert git(project, "status", "--porcelain") == ""
    assert git(project, "branch", "--list").split() == ["*", "main"]
    # When updating
    proc = andamio(project, "update", "--trust", "--json")
    # Then both are brought to their newest version, one commit each, on one branch
    result = json.loads(proc.stdout)["results"]
    assert {(r["answers_file"], r["to_version"]) for r in result} == {
        (".copier-answers.yml", NEW),
        (".copier-answers.ci.yml", "v2.0.0"),
    }, result
    assert (project / "ci.txt").read_text() == "runner=linux\nversion=2\n"
    assert git(project, "branch", "--show-current").strip() == f"andamio/update-{NEW}"
    log = git(project, "log", "--format=%s", "main..HEAD").splitlines()
    assert len(log) == 2 and all(line.startswith("Update .copier-answers") for line in log), log
    # And a second run finds nothing to do and creates no branch
    again = andamio(project, "update", "--trust", "--json")
    assert again.returncode == 0, again.stderr
    assert {r["result"] for r in json.loads(again.stdout)["results"]} == {"current"}
    assert "andamio/update-v0.2.0-2" not in git(project, "branch", "--list")


# --- slow tier: the scenarios, each ending with the project's `make test` ----


@pytest.mark.slow
def test_update_keeps_every_line_of_the_team(template_history: Path, tmp_path: Path):
    # Given a project rendered from v0.1.0 and committed, with the team's work on top:
    project = render_at(template_history, tmp_path / "team")
    readme, features = project / "README.md", project / "src" / PKG / "features.py"
    # (a) an edit of a line the template also changes in v0.2.0
    text = readme.read_text()
    team_line = "Generated from the andamio template — our TEAM classification model"
    readme.write_text(text.replace("Generated from the andamio template — a classification model", team_line))
    # (b) an edit of a file the template does not change
    features.write_text(features.read_text() + "\n# team: keep the scaler, audited 2026-11\n")
    features_mine = features.read_bytes()
    # (c) a generated file the team deleted, which the template changes in v0.2.0
    (project / "tests" / "test_settings.py").unlink()
    # (d) a _skip_if_exists file the team tuned (the template changes it in v0.2.0)
    params = project / "params.yaml"
    params.write_text(params.read_text().replace(OLD_PARAMS_HEADER, "# tuned by the team\n"))
    params_mine = params.read_bytes()
    # (e) a test the team added to a file v0.2.0 renames
    old_test = project / OLD_TEST
    old_test.write_text(old_test.read_text() + "\n\ndef test_team_case():\n    assert 2 + 2 == 4\n")
    old_test_mine = old_test.read_bytes()
    # a file the template drops in v0.2.0, edited by the team
    (project / DROPPED).write_text((project / DROPPED).read_text() + "Team rule: two reviewers.\n")
    dropped_mine = (project / DROPPED).read_bytes()
    commit_all(project, "team work")
    # the first setup locks: the team commits uv.lock and requirements/
    make(project, "setup", "COMPILE_BYTECODE=")
    commit_all(project, "lock")

    # The pre-commit hook (run for real by the project's pre-commit) fails: the project is behind
    hook = pre_commit_hook(project, tmp_path)
    assert hook.returncode != 0 and f"{OLD} → {NEW}" in hook.stdout, hook.stdout + hook.stderr

    # (g) a dirty tree is refused first, and nothing changes
    (project / "scratch.txt").write_text("draft")
    refused = andamio(project, "update", "--trust")
    assert refused.returncode == 2 and "uncommitted changes" in refused.stderr
    assert answers(project)["_commit"] == OLD and features.read_bytes() == features_mine
    (project / "scratch.txt").unlink()

    # When the team runs andamio update
    proc = andamio(project, "update", "--trust", "--json", "--summary", str(tmp_path / "pr.md"))

    # Then it reports the conflict, exits 1, and committed the result on a new branch
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (result,) = json.loads(proc.stdout)["results"]
    assert result["result"] == "conflicts" and result["conflicts"] == ["README.md"], result
    assert (result["from_version"], result["to_version"]) == (OLD, NEW)
    assert git(project, "branch", "--show-current").strip() == f"andamio/update-{NEW}"
    assert git(project, "status", "--porcelain") == "", "the update must be committed on its branch"
    assert answers(project)["_commit"] == NEW
    assert "README.md" in (tmp_path / "pr.md").read_text()
    # (a) both sides kept, marked
    merged = readme.read_text()
    assert "<<<<<<< before updating" in merged and ">>>>>>> after updating" in merged
    assert team_line in merged and "Generated with andamio — a classification model" in merged
    # (b) kept verbatim
    assert features.read_bytes() == features_mine
    # (c) not silently resurrected
    assert not (project / "tests" / "test_settings.py").exists()
    # (d) the _skip_if_exists file is untouched
    assert params.read_bytes() == params_mine
    # (e) the team's content followed the rename
    assert not old_test.exists()
    assert (project / NEW_TEST).read_bytes() == old_test_mine
    # the dropped file the team changed is kept, and reported
    assert (project / DROPPED).read_bytes() == dropped_mine and result["kept"] == [DROPPED]

    # And the generated project's own tests still pass (the team's renamed test included)
    make(project, "test", "COMPILE_BYTECODE=")
    # And the pre-commit hook now passes
    hook = pre_commit_hook(project, tmp_path)
    assert hook.returncode == 0, hook.stdout + hook.stderr


@pytest.mark.slow
def test_update_in_a_monorepo_subdirectory(template_history: Path, tmp_path: Path):
    # Given a monorepo with other code and the project in services/model, rendered from v0.1.0
    mono = tmp_path / "mono"
    (mono / "lib").mkdir(parents=True)
    git(mono, "init", "-q", "-b", "main")
    (mono / "lib" / "shared.py").write_text("VALUE = 1\n")
    (mono / "README.md").write_text("# the monorepo\n")
    commit_all(mono, "monorepo")
    project = render_at(template_history, mono / "services" / "model")
    features = project / "src" / PKG / "features.py"
    features.write_text(features.read_text() + "# monorepo team edit\n")
    commit_all(mono, "team edit")

    # When updating the subdirectory from the monorepo root
    proc = andamio(mono, "update", "services/model", "--trust", "--json")

    # Then it is updated in place; the rest of the monorepo is untouched
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (result,) = json.loads(proc.stdout)["results"]
    assert result["result"] == "updated" and result["to_version"] == NEW, result
    assert answers(project)["_commit"] == NEW
    assert (project / NEW_TEST).is_file() and not (project / OLD_TEST).exists()
    assert features.read_text().endswith("# monorepo team edit\n")
    assert (mono / "lib" / "shared.py").read_text() == "VALUE = 1\n"
    assert (mono / "README.md").read_text() == "# the monorepo\n"
    assert not (mono / ".copier-answers.yml").exists() and not (mono / "Makefile").exists()
    changed = git(mono, "diff", "--name-only", "main..HEAD").split()
    assert all(p.startswith("services/model/") for p in changed), changed
    make(project, "setup", "test", "COMPILE_BYTECODE=")


@pytest.mark.render
def test_plain_copier_update_runs_the_rename_migration(template_history: Path, tmp_path: Path):
    """No lock-in: the migration is copier's own `_migrations`; plain `copier update` runs it too."""
    project = render_at(template_history, tmp_path / "plain")
    old_test = project / OLD_TEST
    old_test.write_text(old_test.read_text() + "\n# team line\n")
    commit_all(project, "team")
    copier_bin = Path(sys.executable).parent / "copier"
    proc = subprocess.run(
        [str(copier_bin), "update", "--trust", "--defaults", "--skip-answered"],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ},
    )
    assert proc.returncode == 0, proc.stderr
    assert (project / NEW_TEST).read_text().endswith("\n# team line\n")
    assert not old_test.exists()


def test_a_rename_does_not_resurrect_a_file_the_team_deleted(tmp_path: Path, monkeypatch):
    follow = load_hook("migrations/follow_renames.py").follow

    # Given a project whose team deleted the old file; the update has just written the new one
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "keep.txt").write_text("x\n")
    commit_all(tmp_path, "without old.txt")
    (tmp_path / "new.txt").write_text("template content\n")
    monkeypatch.chdir(tmp_path)
    # Then following the rename removes it again
    assert "not created" in follow("old.txt", "new.txt", tmp_path)
    assert not (tmp_path / "new.txt").exists()


def test_help_lists_the_lifecycle_commands():
    from typer.testing import CliRunner

    from andamio.cli import app

    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "160"})
    for name, words in {
        "update": "on a new branch",
        "check": "behind their template",
        "fleet": "many repositories",
        "adopt": "cookiecutter or cruft",
    }.items():
        assert name in result.output and words in result.output, f"{name}: {result.output}"
