"""The wheel bundles the template: `andamio new` works from a plain pip install."""

from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from support import ROOT
from support.process import git, sh

pytestmark = pytest.mark.slow

UV = str(Path(sys.executable).parent / "uv")


def test_wheel_ships_the_template_and_renders_from_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # `andamio new` unpacks the template's git history under XDG_DATA_HOME (andamio.source)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    # Given a wheel built from this checkout
    sh(None, UV, "build", "--wheel", "--out-dir", str(tmp_path / "dist"), str(ROOT))
    wheel = next((tmp_path / "dist").glob("andamio-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    questions = [f"andamio/_template/questions/{p.name}" for p in (ROOT / "questions").glob("*.yml")]
    for required in ("andamio/_template/copier.yml", "andamio/_template/hooks/extension.py", *questions):
        assert required in names, f"wheel lacks {required}"
    shipped = {n.removeprefix("andamio/_template/template/") for n in names if "/_template/template/" in n}
    # symlinked folders (the vendored ci-templates library) ship as the files they point to
    in_tree = {
        str((Path(top) / name).relative_to(ROOT / "template"))
        for top, dirs, files in os.walk(ROOT / "template", followlinks=True)
        if "__pycache__" not in Path(top).parts
        for name in files
    }
    assert shipped == in_tree, f"template files missing from the wheel: {sorted(in_tree - shipped)}"

    # When it is installed in a fresh environment and asked for a project
    venv = tmp_path / "venv"
    sh(None, UV, "venv", "--quiet", "--python", sys.executable, str(venv))
    sh(None, UV, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(wheel))
    dest = tmp_path / "from-wheel"
    out = sh(None, venv / "bin" / "andamio", "new", dest, "--defaults", "-d", "ml_task=regression").stdout

    # Then it renders from the bundled copy, records an absolute source, and commits
    assert "Rendered" in out
    answers = yaml.safe_load((dest / ".copier-answers.yml").read_text())
    src = Path(answers["_src_path"])
    assert src.is_absolute() and (src / "copier.yml").is_file()
    installed = (str(venv), str(tmp_path / "xdg" / "andamio"))
    assert str(src).startswith(installed), f"rendered from {src}, not from the installed wheel"
    assert (dest / "src" / answers["package_name"] / "cli.py").is_file()
    assert git(dest, "status", "--porcelain") == ""
