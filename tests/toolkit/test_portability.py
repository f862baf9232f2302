"""andamio imports and runs on any OS that Python and git run on (issue 13, item 5).

The platform cannot be changed under a running interpreter, so each case runs a fresh
interpreter: for the data directory it sets ``sys.platform`` while platformdirs is imported
(platformdirs picks a platform's rules then); for the CLI it removes ``fcntl``, the POSIX-only
module whose top-level import stopped andamio on Windows.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import ROOT

# Modules that exist on POSIX only: a top-level import of one stops andamio on Windows.
POSIX_ONLY = {"fcntl", "termios", "pwd", "grp", "resource", "posix", "tty", "pty"}

# Runs in a fresh interpreter: pretend to be PLATFORM, then print andamio's data directory.
DATA_HOME = """
import json, sys
real, sys.platform = sys.platform, sys.argv[1]
# Windows without ctypes/winreg: platformdirs reads LOCALAPPDATA (its documented fallback)
blocked = {name: None for name in ("ctypes", "winreg")} if sys.platform == "win32" else {}
sys.modules.update(blocked)
import platformdirs  # chooses the simulated platform's directory rules at import
sys.platform = real  # the standard library itself stays on the real platform
for name in blocked:
    del sys.modules[name]
from andamio import source
print(json.dumps(str(source.data_home())))
"""

# Runs the andamio CLI with fcntl absent, as on Windows.
CLI_WITHOUT_FCNTL = """
import sys, warnings
sys.modules["fcntl"] = None
warnings.simplefilter("ignore")  # filelock says it falls back to a soft lock: expected here
from andamio.cli import app
app(sys.argv[1:])
"""


def _python(code: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False
    )


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    platform_vars = {"LOCALAPPDATA", "APPDATA"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_") and k not in platform_vars}
    env["HOME"] = str(tmp_path / "home")
    env.update(extra)
    return env


def test_andamio_imports_nothing_posix_only_at_module_level():
    offenders = []
    for path in sorted((ROOT / "src" / "andamio").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level only: a guarded local import is fine
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            offenders += [f"{path.name}:{node.lineno} imports {n}" for n in names if n in POSIX_ONLY]
    assert not offenders, offenders


@pytest.mark.parametrize(
    ("platform", "extra", "expected"),
    [
        ("linux", {}, "home/.local/share/andamio"),
        ("linux", {"XDG_DATA_HOME": "{tmp}/xdg-data"}, "xdg-data/andamio"),
        ("darwin", {}, "home/Library/Application Support/andamio"),
        ("win32", {"LOCALAPPDATA": "{tmp}/AppData/Local", "APPDATA": "{tmp}/R"}, "AppData/Local/andamio"),
    ],
    ids=["linux", "linux-xdg", "macos", "windows"],
)
def test_data_home_follows_the_platform(tmp_path: Path, platform: str, extra: dict[str, str], expected: str):
    env = _clean_env(tmp_path, **{k: v.format(tmp=tmp_path) for k, v in extra.items()})
    proc = _python(DATA_HOME, platform, env=env)
    assert proc.returncode == 0, proc.stderr
    assert Path(json.loads(proc.stdout)) == (tmp_path / expected).resolve()


@pytest.mark.render
def test_new_and_check_run_without_fcntl(template_history: Path, tmp_path: Path):
    env = _clean_env(tmp_path, XDG_DATA_HOME=str(tmp_path / "data"))
    project = tmp_path / "project"
    args = ("new", str(project), "--defaults", "--template", str(template_history), "--trust")
    new = _python(CLI_WITHOUT_FCNTL, *args, env=env)
    assert new.returncode == 0, new.stdout + new.stderr
    assert (project / ".copier-answers.yml").is_file()
    assert (project / "Makefile").is_file()
    check = _python(CLI_WITHOUT_FCNTL, "check", str(project), "--json", env=env)
    assert check.returncode == 0, check.stdout + check.stderr  # 0: current
    [entry] = json.loads(check.stdout)
    assert Path(entry["project"]).resolve() == project.resolve()
    assert entry["update_available"] is False and entry["error"] is None
