"""The toolkit's seams (issue 13, item 2): one module onto copier, one outcome table."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from support import ROOT

from andamio import outcome
from andamio.outcome import Exit, Status

PACKAGE = ROOT / "src" / "andamio"


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_engine_module_imports_copier():
    importers = sorted(p.name for p in PACKAGE.glob("*.py") if "copier" in _imported_modules(p))
    assert importers == ["engine.py"]


def test_nothing_replaces_copier_functions_at_run_time():
    # The one remaining patch is engine's skip of a per-file git probe (a speed-up with the
    # same result); removing files or any other behaviour of copier is never patched.
    patched = []
    for path in PACKAGE.glob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if re.match(r"\s*_main\.\w+(\.\w+)?\s*=", line):
                patched.append(f"{path.name}: {line.strip()}")
    assert all("_sync_git_index_executable_bit" in p and p.startswith("engine.py") for p in patched), patched


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        ([], Exit.OK),
        (["current", "updated"], Exit.OK),
        (["current", "behind"], Exit.ATTENTION),
        (["updated", "conflicts", "skipped"], Exit.ATTENTION),
        (["behind", "error"], Exit.ERROR),
        (["conflicts", "error", "current"], Exit.ERROR),
    ],
)
def test_one_exit_code_table(statuses: list[str], code: Exit):
    assert outcome.exit_code(statuses) == code


def test_an_unknown_status_word_is_a_bug_not_a_silent_zero():
    with pytest.raises(ValueError, match="up-to-date"):
        outcome.exit_code(["up-to-date"])


def test_the_readme_documents_the_table_and_the_words():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Exit codes", 1)[1].split("\n## ", 1)[0]
    for code in Exit:
        assert re.search(rf"^\| {int(code)} \|", section, re.MULTILINE), f"exit code {int(code)} undocumented"
    for status in Status:
        assert f"`{status}`" in section, f"status {status} undocumented"


def test_every_status_word_the_commands_write_is_in_the_vocabulary():
    # Result words are written through Status only: no bare string assigned to a result.
    bare = []
    for path in PACKAGE.glob("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for word in re.findall(r"result(?:=|\s*=\s*|, \w+\.message = )\"([a-z-]+)\"", line):
                if word != "pending":  # update's internal plan marker, never reported
                    bare.append(f"{path.name}:{number}: {word}")
    assert not bare, bare
