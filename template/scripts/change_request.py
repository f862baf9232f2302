"""Push the current branch and open its pull request (GitHub) or merge request (GitLab).

Changes leave CI as reviews, never as direct writes: ``make deploy-staging``,
``make deploy-prod`` and ``make template-update`` commit on a new branch, then
``make change-request`` runs this script, which pushes that branch and opens (or, when
one is open already, refreshes) its PR/MR against the default branch.  Merging it is the
deployment (Argo CD syncs what the default branch declares) or the update.

When HEAD is not on a new branch (detached, or on the default branch) there is nothing
to propose: the script says so and exits 0.  Standard library only: it runs before
``make setup``.  The token is sent in an HTTP header, never in a URL or a log line.

Settings, from the environment (GitHub Actions and GitLab CI fill most of them):

    FORGE           github | gitlab (default: the CI's variables say which)
    FORGE_TOKEN     may push branches and open PRs/MRs (a CI secret)
    FORGE_API_URL   API root (default: GITHUB_API_URL / CI_API_V4_URL)
    FORGE_PROJECT   owner/name (GitHub, default GITHUB_REPOSITORY) or the project id or
                    path (GitLab, default CI_PROJECT_ID)
    FORGE_PUSH_URL  where to push (default: the CI's repository URL, else remote origin)
    DEFAULT_BRANCH  the PR/MR target (default: CI_DEFAULT_BRANCH, else main)

    python3 scripts/change_request.py --body-file build/change-request.md [--dry-run]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

FORGES = ("github", "gitlab")
TIMEOUT = 60


class ChangeRequestError(Exception):
    """A PR/MR that cannot be opened as asked; the message says why."""


def _git(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise ChangeRequestError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip() if proc.returncode == 0 else ""


def forge(env: dict[str, str]) -> str:
    """Return ``github`` or ``gitlab``: FORGE, else the CI system this runs on."""
    name = env.get("FORGE", "").strip().lower()
    if not name:
        if env.get("GITHUB_ACTIONS") == "true" or env.get("GITHUB_API_URL"):
            name = "github"
        elif env.get("GITLAB_CI") == "true" or env.get("CI_API_V4_URL"):
            name = "gitlab"
    if name not in FORGES:
        raise ChangeRequestError(
            f"FORGE must be one of {', '.join(FORGES)} (got {name or 'nothing'}): "
            "set it where neither GitHub Actions nor GitLab CI says so (Jenkins)"
        )
    return name


def _setting(env: dict[str, str], names: tuple[str, ...], what: str) -> str:
    for name in names:
        if env.get(name):
            return env[name]
    raise ChangeRequestError(f"{names[0]} is not set: {what}")


class Forge:
    """The two calls a change request needs, for one forge."""

    def __init__(self, kind: str, env: dict[str, str]) -> None:
        self.kind = kind
        self.token = _setting(
            env,
            ("FORGE_TOKEN",),
            "a token that may push branches and open PRs/MRs (GitHub: the job's token with "
            "contents and pull-requests write; GitLab: a project access token in a masked "
            "variable; Jenkins: a secret-text credential)",
        )
        if kind == "github":
            self.api = _setting(env, ("FORGE_API_URL", "GITHUB_API_URL"), "the GitHub API root URL")
            self.project = _setting(
                env, ("FORGE_PROJECT", "GITHUB_REPOSITORY"), "the repository, owner/name"
            )
            server = env.get("GITHUB_SERVER_URL")
            self.push_user = "x-access-token"
            default_push = f"{server}/{self.project}.git" if server else ""
        else:
            self.api = _setting(
                env, ("FORGE_API_URL", "CI_API_V4_URL"), "the GitLab API v4 root URL"
            )
            self.project = _setting(
                env, ("FORGE_PROJECT", "CI_PROJECT_ID"), "the project id or path"
            )
            server, path = env.get("CI_SERVER_URL"), env.get("CI_PROJECT_PATH")
            self.push_user = "oauth2"
            default_push = f"{server}/{path}.git" if server and path else ""
        self.api = self.api.rstrip("/")
        self.push_url = (
            env.get("FORGE_PUSH_URL") or default_push or _git("remote", "get-url", "origin")
        )

    # -- HTTP ---------------------------------------------------------------------------------
    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        headers = {"Accept": "application/json", "User-Agent": "andamio-change-request"}
        if self.kind == "github":
            headers |= {
                "Authorization": f"Bearer {self.token}",
                "X-GitHub-Api-Version": "2022-11-28",
            }
        else:
            headers["PRIVATE-TOKEN"] = self.token
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            f"{self.api}{path}", data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            raise _HTTPError(error.code, error.read().decode(errors="replace")) from None
        except urllib.error.URLError as error:
            raise ChangeRequestError(f"{method} {self.api}{path}: {error.reason}") from None
        try:
            return json.loads(body) if body else None
        except ValueError:
            raise ChangeRequestError(f"{method} {self.api}{path}: the answer is not JSON") from None

    # -- the change request -------------------------------------------------------------------
    def _git_authorised(self, *args: str, check: bool = True) -> str:
        basic = base64.b64encode(f"{self.push_user}:{self.token}".encode()).decode()
        return _git("-c", f"http.extraHeader=Authorization: Basic {basic}", *args, check=check)

    def others_commits(self, branch: str) -> list[str]:
        """Return the commits of the remote ``branch`` a force-push would drop, made by others.

        Others: another author than this job's commit (a reviewer's conflict resolution,
        say).  An earlier run's own commits do not count.
        """
        remote = self._git_authorised("ls-remote", self.push_url, f"refs/heads/{branch}")
        if not remote:
            return []
        self._git_authorised("fetch", "--quiet", self.push_url, f"refs/heads/{branch}")
        ours = _git("log", "-1", "--format=%ae", "HEAD")
        dropped = _git("log", "--format=%h %ae %s", "FETCH_HEAD", "--not", "HEAD").splitlines()
        return [line for line in dropped if line.split(" ", 2)[1] != ours]

    def push(self, branch: str) -> None:
        """Push HEAD to ``branch``, forced: the branch is this job's own proposal.

        When someone else has committed to it, nothing is pushed: their work is never lost.
        """
        others = self.others_commits(branch)
        if others:
            shown = "\n  ".join(others[:10])
            raise ChangeRequestError(
                f"{branch} holds commits by someone else; not overwriting them:\n  {shown}\n"
                "Merge or close its PR/MR (or delete the branch), then run the job again."
            )
        target = f"HEAD:refs/heads/{branch}"
        self._git_authorised("push", "--quiet", "--force", self.push_url, target)

    def open(self, branch: str, base: str, title: str, body: str) -> tuple[str, str]:
        """Open the PR/MR, or refresh the open one; return (``opened``|``updated``, its URL)."""
        if self.kind == "github":
            root = f"/repos/{self.project}/pulls"
            try:
                created = self._request(
                    "POST", root, {"title": title, "head": branch, "base": base, "body": body}
                )
                return "opened", created.get("html_url", "")
            except _HTTPError as error:
                if error.status != 422 or "already exists" not in error.text:
                    raise
            owner = self.project.split("/", 1)[0]
            query = urllib.parse.urlencode({"head": f"{owner}:{branch}", "state": "open"})
            (existing, *_) = self._request("GET", f"{root}?{query}") or [None]
            if not existing:
                raise ChangeRequestError(
                    f"GitHub says a pull request for {branch} exists but lists none"
                )
            updated = self._request(
                "PATCH", f"{root}/{existing['number']}", {"title": title, "body": body}
            )
            return "updated", updated.get("html_url", "")
        root = f"/projects/{urllib.parse.quote(self.project, safe='')}/merge_requests"
        fields = {"title": title, "description": body}
        try:
            created = self._request(
                "POST",
                root,
                {
                    **fields,
                    "source_branch": branch,
                    "target_branch": base,
                    "remove_source_branch": True,
                },
            )
            return "opened", created.get("web_url", "")
        except _HTTPError as error:
            if error.status != 409:
                raise
        query = urllib.parse.urlencode({"source_branch": branch, "state": "opened"})
        (existing, *_) = self._request("GET", f"{root}?{query}") or [None]
        if not existing:
            raise ChangeRequestError(
                f"GitLab says a merge request for {branch} exists but lists none"
            )
        updated = self._request("PUT", f"{root}/{existing['iid']}", fields)
        return "updated", updated.get("web_url", "")


class _HTTPError(ChangeRequestError):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"the forge answered HTTP {status}: {text[:500]}")
        self.status, self.text = status, text


def current_branch() -> str | None:
    """Return the checked-out branch, or ``None`` on a detached HEAD."""
    return _git("symbolic-ref", "--quiet", "--short", "HEAD", check=False) or None


def job_url(env: dict[str, str]) -> str:
    """Return the URL of the CI job running this, when the CI says it."""
    if env.get("CI_JOB_URL"):
        return env["CI_JOB_URL"]
    names = ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    server, repo, run = (env.get(name) for name in names)
    if server and repo and run:
        return f"{server}/{repo}/actions/runs/{run}"
    return env.get("BUILD_URL", "")


def main(argv: list[str] | None = None, env: dict[str, str] | None = None) -> int:
    """Parse the command line, push and open the PR/MR; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--body-file", type=Path, help="Markdown body (default: the commit message body)"
    )
    parser.add_argument(
        "--base", help="target branch (default: DEFAULT_BRANCH, CI_DEFAULT_BRANCH, main)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="say what would be pushed and opened"
    )
    args = parser.parse_args(argv)
    env = dict(os.environ if env is None else env)
    base = args.base or env.get("DEFAULT_BRANCH") or env.get("CI_DEFAULT_BRANCH") or "main"
    try:
        branch = current_branch()
        if branch is None or branch == base:
            where = "detached" if branch is None else f"on {base}"
            print(f"change-request: HEAD is {where}: nothing to propose")
            return 0
        title = _git("log", "-1", "--format=%s")
        if args.body_file and not args.body_file.is_file():
            raise ChangeRequestError(f"no body file {args.body_file}")
        body = (
            args.body_file.read_text(encoding="utf-8")
            if args.body_file
            else _git("log", "-1", "--format=%b")
        )
        url = job_url(env)
        if url:
            body = f"{body.rstrip()}\n\n---\nOpened by {url}\n"
        if args.dry_run:
            print(f"change-request: would push {branch} and propose it to {base}: {title}")
            return 0
        client = Forge(forge(env), env)
        client.push(branch)
        what, link = client.open(branch, base, title, body)
        kind = "pull request" if client.kind == "github" else "merge request"
        print(f"change-request: {what} the {kind} {branch} -> {base}: {link or title}")
    except ChangeRequestError as error:
        print(f"change-request: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
