"""Where a template version comes from.

``copier update`` needs two versions of the template -- the one a project was
rendered from (``_commit`` in its answers file) and the newest -- read from the
source recorded as ``_src_path``.  A plain folder has no versions, so andamio
records a *git* source, always as an absolute path or a URL (copier resolves a
relative path from the current directory, which breaks later updates):

1. ``--template`` / ``ANDAMIO_TEMPLATE``: a git URL or a local mirror (air-gapped
   sites clone the template once to a shared folder and point everyone at it).
2. The wheel ships the template's git history as a bundle
   (``andamio/_template/history.bundle``, built by ``scripts/hatch_bundle.py``).
   ``andamio new`` fetches it into a stable per-user git repository under the
   platform's user data directory (platformdirs: ``~/.local/share/andamio/template``
   on Linux and other XDG systems, ``~/Library/Application Support/andamio`` on macOS,
   ``%LOCALAPPDATA%\\andamio`` on Windows) and records that
   path -- as ``~/…`` when under the home folder, so it holds on every machine.
   Each andamio release adds its history to the same repository, so a project
   rendered by an older release updates offline from a newer one.
3. A source checkout (editable install): the repository itself.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import platformdirs
from filelock import FileLock
from packaging.version import InvalidVersion, Version

from andamio.errors import AndamioError

_PACKAGE_DIR = Path(__file__).resolve().parent
#: Environment variable naming a template source (git URL or local mirror).
SOURCE_ENV = "ANDAMIO_TEMPLATE"
_DESCRIBE = re.compile(r"^(?P<base>.+)-(?P<count>\d+)-g(?P<sha>[0-9a-f]+)$")


def bundled_template() -> Path:
    """Return the directory holding ``copier.yml`` shipped with this installation."""
    candidates = (_PACKAGE_DIR / "_template", _PACKAGE_DIR.parents[1])
    for candidate in candidates:
        if (candidate / "copier.yml").is_file() and (candidate / "template").is_dir():
            return candidate
    raise FileNotFoundError(
        "andamio's template is missing from this installation "
        f"(looked in {', '.join(str(c) for c in candidates)}); reinstall andamio"
    )


def bundled_history() -> Path | None:
    """Return the git bundle of the template's history shipped in the wheel, if any."""
    bundle = _PACKAGE_DIR / "_template" / "history.bundle"
    return bundle if bundle.is_file() else None


def data_home() -> Path:
    """Return andamio's per-user data directory, as the platform defines it.

    XDG systems honour ``XDG_DATA_HOME``; macOS and Windows use their own
    application-data folders (platformdirs).
    """
    return Path(platformdirs.user_data_dir("andamio", appauthor=False)).expanduser().resolve()


def _git(cwd: Path | None, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AndamioError(f"git {' '.join(args)} failed:\n{proc.stderr.strip()}")
    return proc.stdout


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` across processes (any OS: filelock)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path):
        yield


def install_history(bundle: Path, repo: Path | None = None) -> tuple[Path, str]:
    """Fetch ``bundle`` into the per-user template repository; return it and the bundle's head.

    Tags and commits accumulate, so projects rendered by any release stay
    updatable.  The work tree only moves forward (a downgrade of andamio keeps
    the newer checkout); it is kept clean because copier copies a local
    template's uncommitted changes.
    """
    repo = repo or data_home() / "template"
    with _locked(repo.parent / ".template.lock"):
        if not (repo / ".git").is_dir():
            repo.mkdir(parents=True, exist_ok=True)
            _git(repo, "init", "--quiet", "--initial-branch=andamio")
        head = _git(None, "bundle", "list-heads", str(bundle), "HEAD").split()[0]
        _git(repo, "fetch", "--quiet", "--tags", str(bundle), f"+HEAD:refs/andamio/{head}")
        current = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", "HEAD"], cwd=repo, capture_output=True, text=True
        ).stdout.strip()
        forward = not current or (
            subprocess.run(["git", "merge-base", "--is-ancestor", current, head], cwd=repo).returncode == 0
        )
        if forward:
            _git(repo, "checkout", "--quiet", "--force", "-B", "andamio", head)
        _git(repo, "clean", "-fdxq")
    return repo, head


@dataclass(frozen=True)
class Source:
    """A template source for copier: ``url`` (absolute path or URL) and the ref to render."""

    url: str
    ref: str | None
    managed: bool  # andamio's own template (trusted), not a user-given one


def default_source() -> Source:
    """Return where ``andamio new`` renders from when no ``--template`` is given."""
    override = os.environ.get(SOURCE_ENV)
    if override:
        return Source(absolute(override), None, managed=True)
    bundle = bundled_history()
    if bundle is not None:
        repo, head = install_history(bundle)
        return Source(portable(repo), head, managed=True)
    # A source checkout: render its HEAD (with uncommitted changes), not its newest tag.
    return Source(str(bundled_template()), "HEAD", managed=True)


_refreshed: set[str] = set()


def refresh(src: str) -> None:
    """Before reading versions from the per-user repository, add this installation's history to it.

    Upgrading andamio brings a newer bundle; ``check`` and ``update`` must see it
    even if ``andamio new`` has not run since.
    """
    bundle = bundled_history()
    repo = data_home() / "template"
    if bundle is None or expand(src).rstrip("/") != str(repo) or src in _refreshed:
        return
    install_history(bundle, repo)
    remote_tags.cache_clear()
    _refreshed.add(src)


def portable(path: Path) -> str:
    """Spell a per-user path as ``~/…`` when it is under the home folder, else absolutely.

    copier expands ``~`` when it reads ``_src_path``, so a project rendered on a
    laptop finds andamio's template on a CI runner too (where ``check`` or
    ``update`` unpacks the same history under that machine's home).
    """
    home = Path.home().resolve()
    try:
        return "~/" + path.resolve().relative_to(home).as_posix()
    except ValueError:
        return str(path)


def expand(src: str) -> str:
    """Expand a ``~/…`` template source to this machine's home folder."""
    return str(Path(src).expanduser()) if src.startswith("~") else src


def absolute(src: str) -> str:
    """Turn a local template path into an absolute one; leave URLs alone."""
    if "://" in src or src.startswith(("git@", "gh:", "gl:")):
        return src
    path = Path(src).expanduser()
    return str(path.resolve()) if path.exists() else src


def is_managed(src: str) -> bool:
    """Tell whether ``src`` is andamio's own template (so it may run its extensions)."""
    managed = {str(data_home() / "template"), str(bundled_template())}
    override = os.environ.get(SOURCE_ENV)
    if override:
        managed.add(absolute(override))
    return expand(src).rstrip("/") in managed


def parse_version(ref: str | None) -> Version | None:
    """Read a copier ``_commit`` (a tag, or ``git describe`` output) as a PEP 440 version."""
    if not ref:
        return None
    text = ref[1:] if ref[:1] in "vV" else ref
    match = _DESCRIBE.match(text)
    try:
        if match:
            return Version(f"{match['base']}.post{match['count']}+{match['sha']}")
        return Version(text)
    except InvalidVersion:
        return None


@cache
def remote_tags(src: str) -> tuple[str, ...]:
    """Return the tag names of a template source (one ``git ls-remote`` per source, cached)."""
    proc = subprocess.run(
        ["git", "ls-remote", "--tags", "--refs", expand(src)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        timeout=120,
    )
    if proc.returncode != 0:
        raise AndamioError(f"cannot list the versions of {src}: {proc.stderr.strip() or 'git failed'}")
    return tuple(line.split("refs/tags/", 1)[1] for line in proc.stdout.splitlines() if "refs/tags/" in line)


def latest_version(src: str, prereleases: bool = False) -> tuple[str, Version] | None:
    """Return the newest PEP 440 tag of ``src`` (copier's rule), or ``None`` without tags."""
    best: tuple[str, Version] | None = None
    for tag in remote_tags(src):
        version = parse_version(tag)
        if version is None or (version.is_prerelease and not prereleases):
            continue
        if best is None or version > best[1]:
            best = (tag, version)
    return best


def target_version(src: str, vcs_ref: str | None) -> str | None:
    """Return the version an update goes to: ``vcs_ref``, else the newest tag, else ``None`` (HEAD)."""
    if vcs_ref:
        return vcs_ref
    latest = latest_version(src)
    return latest[0] if latest else None


def is_behind(current: str | None, target: str | None) -> bool | None:
    """Tell whether ``current`` is older than ``target`` (``None``: cannot tell)."""
    a, b = parse_version(current), parse_version(target)
    if a is None or b is None:
        return None
    return b > a
