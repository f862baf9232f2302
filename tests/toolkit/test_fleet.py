"""`andamio fleet status|update`: 22 repositories -- current, behind, dirty, conflicting."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from support.history import NEW, OLD, render_at
from support.process import ANDAMIO, commit_all, git

# Fewer behind than current: each update costs seconds, each status check milliseconds.
KINDS = {"current": 10, "behind": 6, "dirty": 3, "conflicting": 3}
TEAM_LINE = "Generated from the andamio template — our TEAM model"


def fleet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ANDAMIO, "fleet", *args], capture_output=True, text=True, timeout=900)


@pytest.fixture
def estate(template_history: Path, tmp_path: Path) -> dict[str, list[Path]]:
    """Repositories under tmp_path/estate/<team>/<kind>-<n>, by kind."""
    bases = {
        OLD: render_at(template_history, tmp_path / "base-old", ref=OLD),
        NEW: render_at(template_history, tmp_path / "base-new", ref=NEW),
    }
    repos: dict[str, list[Path]] = {kind: [] for kind in KINDS}
    for kind, count in KINDS.items():
        for n in range(count):
            repo = tmp_path / "estate" / f"team-{n % 3}" / f"{kind}-{n}"
            shutil.copytree(bases[NEW if kind == "current" else OLD], repo, symlinks=True)
            readme = repo / "README.md"
            if kind == "dirty":
                readme.write_text(readme.read_text() + "\nwork in progress\n")
            if kind == "conflicting":
                text = readme.read_text()
                old_line = "Generated from the andamio template — a classification model"
                readme.write_text(text.replace(old_line, TEAM_LINE))
                commit_all(repo, "team edit")
            repos[kind].append(repo)
    return repos


def _rows(proc: subprocess.CompletedProcess[str]) -> dict[str, dict]:
    report = json.loads(proc.stdout)
    return {Path(r["repo"]).name: r for r in report["rows"]}


@pytest.mark.render
def test_fleet_status_reports_every_repository(estate, tmp_path: Path):
    # When the whole estate is checked
    proc = fleet("status", str(tmp_path / "estate"), "--json", "--workers", "4")
    # Then every repository is found once and classified
    assert proc.returncode == 1, proc.stdout + proc.stderr  # some are behind
    rows = _rows(proc)
    assert len(rows) == sum(KINDS.values()) == 22
    for kind, repos in estate.items():
        for repo in repos:
            row = rows[repo.name]
            expected = "current" if kind == "current" else "behind"
            assert row["result"] == expected, row
            assert row["dirty"] is (kind == "dirty"), row
            assert row["from_version"] == (NEW if kind == "current" else OLD)
            assert row["to_version"] == NEW
    # And a list file selects repositories
    listing = tmp_path / "repos.txt"
    chosen = [estate["current"][0], estate["behind"][0]]
    listing.write_text("# two repos\n" + "\n".join(str(p) for p in chosen) + "\n")
    listed = _rows(fleet("status", str(listing), "--json"))
    assert sorted(listed) == sorted(p.name for p in chosen)
    # And the table form names the counts
    table = fleet("status", str(tmp_path / "estate"))
    behind = KINDS["behind"] + KINDS["dirty"] + KINDS["conflicting"]
    assert "22 projects" in table.stdout, table.stdout
    assert f"{KINDS['current']} current" in table.stdout and f"{behind} behind" in table.stdout


@pytest.mark.slow
def test_fleet_update_updates_skips_dirty_and_reports_conflicts(estate, tmp_path: Path):
    dirty_heads = {r: git(r, "rev-parse", "HEAD") for r in estate["dirty"]}
    # When the whole estate is updated with two workers
    proc = fleet("update", str(tmp_path / "estate"), "--json", "--workers", "2", "--trust")
    # Then the report says what happened to each, and exits 1 for the conflicts (no error)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = _rows(proc)
    assert len(rows) == 22
    expected = {
        "current": "current",
        "behind": "updated",
        "dirty": "skipped",
        "conflicting": "conflicts",
    }
    for kind, repos in estate.items():
        for repo in repos:
            row = rows[repo.name]
            assert row["result"] == expected[kind], row
            if kind == "conflicting":
                assert row["conflicts"] == ["README.md"], row
                assert TEAM_LINE in (repo / "README.md").read_text()
            if kind in {"behind", "conflicting"}:
                assert row["branch"] == f"andamio/update-{NEW}" and row["to_version"] == NEW, row
                assert git(repo, "status", "--porcelain") == ""
    # And dirty repositories were not touched at all
    for repo, head in dirty_heads.items():
        assert git(repo, "rev-parse", "HEAD") == head
        assert (repo / "README.md").read_text().endswith("work in progress\n")
        assert git(repo, "branch", "--list").split() == ["*", "main"]
    # And a second status sees only the dirty ones behind
    after = _rows(fleet("status", str(tmp_path / "estate"), "--json"))
    behind = sorted(name for name, row in after.items() if row["result"] == "behind")
    assert behind == sorted(r.name for r in estate["dirty"])
