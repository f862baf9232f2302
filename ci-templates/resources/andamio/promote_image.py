"""Point an environment's overlay at a new image tag (and model version), on a new branch.

GitOps promotion: Argo CD deploys what the default branch declares, so deploying is a merge.
This script edits exactly two lines of ``deploy/k8s/overlays/<env>/kustomization.yaml`` --
the ones marked ``# promote-image: image tag`` and ``# promote-image: model version`` --
commits them alone on a branch ``promote/<env>-<tag>``, and writes the PR/MR body with
``--body`` for ``forge.py change-request`` (``make change-request``) to open the review.
Standard library only: it runs before ``make setup``.  Part of the andamio ci-templates
library beside ``forge.py``: the overlay markers are the template's contract, so the code
that edits them is versioned and tested with the library, not merged into every project
(``make promote-image``, ``make deploy-staging`` and ``make deploy-prod`` call it).

    python3 promote_image.py --env prod --tag 1f3c2ab --model-version 7
    python3 promote_image.py --env staging --tag 1f3c2ab \
        --model-version-from reports/registration.json --body build/change-request.md
    python3 promote_image.py --env prod --from-env staging   # prod := what staging runs
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

OVERLAYS = Path("deploy/k8s/overlays")
# Docker's rule for a tag; model versions are MLflow version numbers or similar short names.
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
MODEL_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
FIELDS = {
    "tag": re.compile(r"^(?P<head>\s*newTag:\s*)(?P<value>\S+)(?P<tail>\s+# promote-image: image tag)$"),
    "model_version": re.compile(
        r"^(?P<head>\s*- MODEL_VERSION=)(?P<value>\S+)(?P<tail>\s+# promote-image: model version)$"
    ),
}


class PromotionError(Exception):
    """A promotion that cannot be done as asked; the message says why."""


def overlay_file(root: Path, env: str) -> Path:
    """Return the kustomization of overlay ``env``; fail when there is none."""
    path = root / OVERLAYS / env / "kustomization.yaml"
    if not path.is_file():
        known = sorted(p.name for p in (root / OVERLAYS).iterdir() if p.is_dir())
        raise PromotionError(f"no overlay {env!r} (known: {', '.join(known) or 'none'})")
    return path


def current(text: str) -> dict[str, str]:
    """Return the marked values of an overlay (``tag`` and ``model_version``)."""
    values = {}
    for name, pattern in FIELDS.items():
        hits = [m for line in text.splitlines() if (m := pattern.match(line))]
        if len(hits) != 1:
            raise PromotionError(
                f"expected exactly one line marked for {name}, found {len(hits)}: "
                "keep the '# promote-image: ...' comments in the overlay"
            )
        values[name] = hits[0]["value"]
    return values


def edit(text: str, changes: dict[str, str]) -> str:
    """Return ``text`` with the marked lines set to ``changes``; every other byte is kept."""
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        body = line.rstrip("\r\n")
        for name, value in changes.items():
            match = FIELDS[name].match(body)
            if match:
                new = f"{match['head']}{value}{match['tail']}"
                lines[i] = new + line[len(body) :]
    return "".join(lines)


# Commits made on a CI runner need an author; a configured git identity wins.
BOT_IDENTITY = ("-c", "user.name=andamio bot", "-c", "user.email=ci@users.noreply.invalid")


def _git(root: Path, *args: str) -> str:
    if args[0] == "commit" and not _configured(root, "user.email"):
        args = (*BOT_IDENTITY, *args)
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise PromotionError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def _configured(root: Path, key: str) -> bool:
    proc = subprocess.run(["git", "config", key], cwd=root, capture_output=True, check=False)
    return proc.returncode == 0


def registered_version(path: Path) -> str | None:
    """Return the model version ``make register`` recorded in ``path`` (None: no such file)."""
    if not path.is_file():
        print(f"promote-image: no {path}: the model version stays as it is")
        return None
    try:
        version = json.loads(path.read_text(encoding="utf-8"))["version"]
    except (ValueError, KeyError, TypeError) as error:
        raise PromotionError(f"{path} holds no model version ({error})") from None
    return str(version)


def body(env: str, before: dict[str, str], after: dict[str, str], lineage: Path | None) -> str:
    """Return the Markdown body of the promotion's PR/MR: what changes, and where it came from."""
    lines = [
        f"GitOps promotion of **{env}**: merging this deploys it (Argo CD syncs the overlay).",
        "",
        "| field | now | after the merge |",
        "|---|---|---|",
        f"| image tag | `{before['tag']}` | `{after['tag']}` |",
        f"| model version | `{before['model_version']}` | `{after['model_version']}` |",
    ]
    if lineage is not None and lineage.is_file():
        record = json.loads(lineage.read_text(encoding="utf-8"))
        lines += ["", "Lineage of the model:", ""]
        for key in ("name", "version", "run_id", "git_commit", "data_hash", "registered_at"):
            if key in record:
                lines.append(f"- {key}: `{record[key]}`")
    return "\n".join(lines) + "\n"


def promote(
    root: Path,
    env: str,
    tag: str,
    model_version: str | None = None,
    branch: str | None = None,
    commit: bool = True,
    body_file: Path | None = None,
    lineage: Path | None = None,
) -> str | None:
    """Edit the overlay and commit it on a new branch; return the branch (None: no change)."""
    if not TAG.fullmatch(tag):
        raise PromotionError(f"{tag!r} is not a valid image tag")
    if model_version is not None and not MODEL_VERSION.fullmatch(model_version):
        raise PromotionError(f"{model_version!r} is not a valid model version")
    path = overlay_file(root, env)
    text = path.read_text(encoding="utf-8")
    before = current(text)
    changes = {"tag": tag}
    if model_version is not None:
        changes["model_version"] = model_version
    if all(before[k] == v for k, v in changes.items()):
        print(f"promote-image: {env} already runs image {tag}; nothing to do")
        return None
    after = {**before, **changes}
    rel = str(path.relative_to(root))
    if commit and _git(root, "status", "--porcelain", "--", rel):
        raise PromotionError(f"{rel} has uncommitted changes: commit or discard them first")
    new_branch = branch or f"promote/{env}-{tag}"
    if commit:
        _git(root, "switch", "--quiet", "-c", new_branch)
    path.write_text(edit(text, changes), encoding="utf-8")
    summary = f"Promote {env} to image {tag} (model version {after['model_version']})"
    if body_file is not None:
        body_file.parent.mkdir(parents=True, exist_ok=True)
        body_file.write_text(body(env, before, after, lineage), encoding="utf-8")
    if commit:
        _git(root, "commit", "--quiet", "--only", "-m", summary, "--", rel)
        print(f"promote-image: {summary} on branch {new_branch}; push it and open a merge request")
        return new_branch
    print(f"promote-image: {summary} (not committed)")
    return ""


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and promote; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, help="overlay to change (staging, prod, ...)")
    parser.add_argument("--tag", help="image tag to deploy")
    parser.add_argument("--model-version", help="model registry version the image serves")
    parser.add_argument(
        "--model-version-from", type=Path, help="read the model version from this registration.json"
    )
    parser.add_argument("--from-env", help="take the image tag and model version of this overlay")
    parser.add_argument("--body", type=Path, help="write the PR/MR body (Markdown) to this file")
    parser.add_argument("--branch", help="branch to create (default: promote/<env>-<tag>)")
    parser.add_argument("--no-commit", action="store_true", help="edit the overlay only")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="project root")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if (args.tag is None) == (args.from_env is None):
        parser.error("give exactly one of --tag and --from-env")
    try:
        tag, model_version = args.tag, args.model_version
        lineage = args.model_version_from
        if args.from_env:
            source = current(overlay_file(root, args.from_env).read_text(encoding="utf-8"))
            if source["tag"] == "latest":
                raise PromotionError(
                    f"{args.from_env} runs no promoted image yet (tag 'latest'): promote it first"
                )
            tag, model_version = source["tag"], model_version or source["model_version"]
        elif model_version is None and lineage is not None:
            model_version = registered_version(lineage)
        promote(
            root,
            args.env,
            tag,
            model_version,
            args.branch,
            commit=not args.no_commit,
            body_file=args.body,
            lineage=lineage,
        )
    except PromotionError as error:
        print(f"promote-image: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
