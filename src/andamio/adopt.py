"""Bring a repository generated from cookiecutter under andamio.

Where the answers come from, first match wins:

1. ``.cruft.json`` (cruft-linked project): its recorded cookiecutter context;
2. a cookiecutter replay file (``--replay``), read with cookiecutter's own
   ``replay.load``;
3. the layout of a cookiecutter-data-science v2 project (``data/raw``,
   ``notebooks``, ``references``, ``reports/figures``, a module with
   ``config.py`` and ``dataset.py``): names from ``pyproject.toml`` and the README.

The answers andamio can map are passed to copier; the rest take their defaults
(``--defaults``) or are asked.  The template is rendered aside and laid over the
repository: new files are added, identical files left alone, and files that
differ get conflict markers (``<<<<<<< before adopting`` … ``>>>>>>> andamio``) for
the team to resolve -- nothing of theirs is overwritten or deleted.  The answers
file is written, so ``copier update`` works from then on.  Like ``update``, it
refuses a dirty work tree and commits on a new branch.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
import tempfile
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from andamio import config, engine, gitrepo, source
from andamio.answers import is_answers_file
from andamio.errors import AndamioError, DirtyTreeError

#: andamio question -> cookiecutter keys that may carry the same answer, in order of preference.
ANSWER_MAP: dict[str, tuple[str, ...]] = {
    "project_name": ("project_name", "project_title", "name"),
    "package_name": ("module_name", "package_name", "project_slug", "repo_name"),
    "description": ("description", "project_short_description", "short_description"),
    "author_name": ("author_name", "author", "full_name"),
    "author_email": ("author_email", "email"),
    "python_version": ("python_version_number", "python_version"),
}
LABEL_MINE, LABEL_TEMPLATE = "before adopting", "andamio"


@dataclass
class Origin:
    """What the repository was generated from."""

    kind: str  # cruft | replay | ccds
    context: dict[str, Any]
    template: str | None = None


@dataclass
class AdoptResult:
    """What ``adopt`` did."""

    project: str
    origin: str
    answers: dict[str, Any]
    added: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    version: str | None = None
    branch: str | None = None
    commit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)


def _ccds_module(path: Path) -> Path | None:
    for child in sorted(path.iterdir()):
        if child.is_dir() and (child / "config.py").is_file() and (child / "dataset.py").is_file():
            return child
    return None


def _ccds_context(path: Path) -> dict[str, Any] | None:
    layout = ("data/raw", "notebooks", "references", "reports/figures")
    module = _ccds_module(path)
    if module is None or not all((path / d).is_dir() for d in layout):
        return None
    context: dict[str, Any] = {"module_name": module.name, "repo_name": path.name}
    pyproject = path / "pyproject.toml"
    if pyproject.is_file():
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        if project.get("description"):
            context["description"] = project["description"]
        authors = project.get("authors") or []
        if authors and authors[0].get("name"):
            context["author_name"] = authors[0]["name"]
        if authors and authors[0].get("email"):
            context["author_email"] = authors[0]["email"]
        python = str(project.get("requires-python", "")).lstrip("~=>< ")
        if python:
            context["python_version_number"] = python
    readme = path / "README.md"
    if readme.is_file():
        for line in readme.read_text(encoding="utf-8").splitlines():
            if line.startswith("# "):
                context["project_name"] = line[2:].strip()
                break
    return context


def detect(path: Path, replay: Path | None = None) -> Origin:
    """Find the cookiecutter context of ``path``."""
    cruft = path / ".cruft.json"
    if cruft.is_file():
        data = json.loads(cruft.read_text(encoding="utf-8"))
        context = (data.get("context") or {}).get("cookiecutter") or {}
        return Origin("cruft", dict(context), data.get("template"))
    if replay is not None:
        from cookiecutter import replay as cc_replay

        replay = replay.expanduser().resolve()
        data = cc_replay.load(str(replay.parent), replay.name)
        return Origin(
            "replay", dict(data.get("cookiecutter", {})), data.get("cookiecutter", {}).get("_template")
        )
    context = _ccds_context(path)
    if context is not None:
        return Origin("ccds", context, "cookiecutter-data-science")
    raise AndamioError(
        f"{path} does not look generated by cookiecutter: no .cruft.json, no --replay file given, "
        "and not a cookiecutter-data-science layout"
    )


def map_answers(context: dict[str, Any], questions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Map a cookiecutter context onto andamio's questions (only values the questions accept)."""
    answers: dict[str, Any] = {}
    for question, keys in ANSWER_MAP.items():
        if question not in questions:
            continue
        value = next((context[k] for k in keys if isinstance(context.get(k), str) and context[k]), None)
        if value is None:
            continue
        if question == "package_name":
            value = value.strip().lower().replace("-", "_").replace(" ", "_")
        choices = questions[question].get("choices")
        if isinstance(choices, dict) and value not in choices.values():
            continue
        answers[question] = value
    return answers


# Only plain files inside the folder, where Python supports the check (3.11.4+).
_SAFE_EXTRACT: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


def _template_questions(src: str, vcs_ref: str | None) -> dict[str, dict[str, Any]]:
    """Read the questions of the template at ``src`` (a local checkout, bundle mirror or URL)."""
    local = Path(src)
    if local.is_dir() and (local / "copier.yml").is_file() and vcs_ref is None:
        return config.questions(local)
    git_dir = str(local / ".git")
    # copier.yml and the files it includes as they are at the ref (an older layout has no questions/)
    for paths in (("copier.yml", "questions"), ("copier.yml",)):
        cmd = ["git", "--git-dir", git_dir, "archive", "--format=tar", vcs_ref or "HEAD", *paths]
        archive = subprocess.run(cmd, capture_output=True)
        if archive.returncode == 0:
            with tempfile.TemporaryDirectory(prefix="andamio-questions-") as tmp:
                with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
                    tar.extractall(tmp, **_SAFE_EXTRACT)
                return config.questions(Path(tmp))
    return config.questions(source.bundled_template())


def _merge(mine: Path, theirs: Path) -> bool:
    """Write ``mine`` with conflict markers against ``theirs``; return True if markers were needed."""
    with tempfile.NamedTemporaryFile() as empty:
        proc = subprocess.run(
            [
                "git",
                "merge-file",
                "-L",
                LABEL_MINE,
                "-L",
                "empty",
                "-L",
                LABEL_TEMPLATE,
                str(mine),
                empty.name,
                str(theirs),
            ],
            capture_output=True,
        )
    return proc.returncode != 0


def adopt(
    path: Path,
    *,
    replay: Path | None = None,
    template: str | None = None,
    vcs_ref: str | None = None,
    defaults: bool = True,
    trust: bool = False,
    data: dict[str, Any] | None = None,
    commit: bool = True,
) -> AdoptResult:
    """Adopt the cookiecutter project at ``path``; see the module docstring."""
    path = path.expanduser().resolve()
    if not path.is_dir():
        raise AndamioError(f"{path} is not a folder")
    if any(p.is_file() and is_answers_file(p.name) for p in path.iterdir()):
        raise AndamioError(f"{path} already has a copier answers file: use andamio update")
    if not gitrepo.inside_work_tree(path):
        raise AndamioError(f"{path} is not in a git repository; `git init` and commit it first")
    top = gitrepo.toplevel(path)
    dirty = gitrepo.dirty_paths(top)
    if dirty:
        raise DirtyTreeError(f"refusing to adopt {path}: uncommitted changes ({', '.join(dirty[:5])})")
    origin = detect(path, replay)
    if template:
        src, ref, trusted = source.absolute(template), vcs_ref, trust or source.is_managed(template)
    else:
        default = source.default_source()
        src, ref, trusted = default.url, vcs_ref or default.ref, True
    answers = {**map_answers(origin.context, _template_questions(src, ref)), **(data or {})}
    result = AdoptResult(str(path), origin.kind, answers)
    with tempfile.TemporaryDirectory(prefix="andamio-adopt-") as tmp:
        rendered = Path(tmp) / path.name
        engine.render(
            src,
            rendered,
            data=answers,
            vcs_ref=ref,
            defaults=defaults,
            trusted=trusted,
            skip_tasks=True,
            what="rendering the template failed",
        )
        name = None
        if commit:
            name = f"andamio/adopt-{origin.kind}"
            n = 1
            while gitrepo.branch_exists(top, name):
                n += 1
                name = f"andamio/adopt-{origin.kind}-{n}"
            gitrepo.git(top, "checkout", "--quiet", "-b", name)
        for new in sorted(p for p in rendered.rglob("*") if p.is_file()):
            rel = new.relative_to(rendered)
            target = path / rel
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(new, target)
                result.added.append(rel.as_posix())
            elif target.read_bytes() == new.read_bytes():
                result.unchanged.append(rel.as_posix())
            elif _merge(target, new):
                result.conflicts.append(rel.as_posix())
        written = yaml.safe_load((rendered / ".copier-answers.yml").read_text(encoding="utf-8"))
        result.version = written.get("_commit")
        result.answers = {k: v for k, v in written.items() if not str(k).startswith("_")}
    if commit:
        lines = [f"Adopt {path.name} into andamio ({origin.kind} project) at template {result.version}"]
        if result.conflicts:
            lines += ["", "Files that differ from the template (conflict markers to resolve):"]
            lines += [f"- {c}" for c in result.conflicts]
        result.branch = name
        result.commit = gitrepo.commit_all(top, "\n".join(lines))
    return result
