"""`andamio check`: up to date or behind, copier's exit codes, --json; the pre-commit hook."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import ROOT
from support.history import NEW, OLD, render_at
from support.process import ANDAMIO


def check(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ANDAMIO, "check", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.render
def test_check_tells_behind_from_current_with_the_shared_exit_codes(template_history: Path, tmp_path: Path):
    # Given one project on v0.1.0 and one on v0.2.0
    old = render_at(template_history, tmp_path / "old", ref=OLD)
    new = render_at(template_history, tmp_path / "new", ref=NEW)
    # Then the old one is behind (exit 1: something is left for you, andamio.outcome)
    behind = check(str(old))
    assert behind.returncode == 1, behind.stdout + behind.stderr
    assert f"{OLD} → {NEW}" in behind.stdout
    # And the new one is current (exit 0)
    current = check(str(new))
    assert current.returncode == 0 and "current" in current.stdout, current.stdout
    # And both at once, as JSON, in copier's fields and andamio's status words
    both = check("--json", str(old), str(new))
    assert both.returncode == 1
    rows = {Path(r["project"]).name: r for r in json.loads(both.stdout)}
    assert rows["old"]["update_available"] is True and rows["old"]["latest_version"] == NEW
    assert rows["new"]["update_available"] is False and rows["new"]["current_version"] == NEW
    assert (rows["old"]["result"], rows["new"]["result"]) == ("behind", "current")
    # And copier itself agrees on the old one
    copier_bin = Path(sys.executable).parent / "copier"
    plain = subprocess.run(
        [str(copier_bin), "check-update", "--output-format", "json"], cwd=old, capture_output=True, text=True
    )
    assert json.loads(plain.stdout)["update_available"] is True


@pytest.mark.render
def test_check_fails_clearly_when_it_cannot_tell(template_history: Path, tmp_path: Path):
    # Given a project whose template source is gone, and a folder that is no project
    project = render_at(template_history, tmp_path / "orphan")
    answers = project / ".copier-answers.yml"
    data = yaml.safe_load(answers.read_text())
    answers.write_text(yaml.safe_dump({**data, "_src_path": str(tmp_path / "moved-away")}))
    (tmp_path / "empty").mkdir()
    # Then check exits 2 (an error) and says why
    proc = check(str(project), str(tmp_path / "empty"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "does not exist on this machine" in proc.stderr and "no copier answers file" in proc.stderr


def test_pre_commit_hook_runs_andamio_check():
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    by_id = {h["id"]: h for h in hooks}
    assert by_id["andamio-check"]["language"] == "python", "installable from the repo"
    assert by_id["andamio-check-system"]["language"] == "system", "offline: the installed andamio"
    for hook in hooks:
        assert hook["entry"] == "andamio check"
        assert hook["pass_filenames"] is False, "check takes project paths, not the changed files"
        assert set(hook["stages"]) <= {"pre-commit", "pre-push", "manual"}
