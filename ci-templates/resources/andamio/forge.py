"""The forge calls of andamio's CI: change requests, PR/MR comments and issues, on GitHub or GitLab.

One stdlib-only script, so that it runs on a bare runner before ``make setup``; the
generated Makefile calls it (``make change-request``, ``make pr-comment``,
``make drift-issue``) and every CI provider (GitHub Actions, GitLab CI, Jenkins) calls
those targets.  Part of the andamio ci-templates library (``resources/andamio/``, where
Jenkins' ``libraryResource`` finds it); standalone projects carry a copy in
``.andamio-ci/``, shared-style ones fetch the library at its pinned tag.

    forge.py change-request [--body-file FILE] [--base BRANCH] [--dry-run]
        Push the current branch and open (or refresh) its PR/MR against the default branch.
        On a detached HEAD or the default branch there is nothing to propose: exit 0.
    forge.py comment --body-file FILE [--marker TEXT]
        Post FILE on the current PR/MR; a later run edits the comment carrying the same
        marker instead of adding another.  Not a PR/MR build, or no FORGE_TOKEN: exit 0.
    forge.py issue --title TITLE [--body TEXT] [--label LABEL]
        Open an issue (labelled LABEL) linking this job; when an open one with that title
        and label exists, comment on it instead.  No FORGE_TOKEN: exit 0.

Settings, from the environment (GitHub Actions and GitLab CI fill most of them):

    FORGE           github | gitlab (default: the CI's variables say which; Jenkins: set it)
    FORGE_TOKEN     may push branches, open PRs/MRs, comment and open issues (a CI secret)
    FORGE_API_URL   API root (default: GITHUB_API_URL / CI_API_V4_URL)
    FORGE_PROJECT   owner/name (GitHub, default GITHUB_REPOSITORY) or the project id or
                    path (GitLab, default CI_PROJECT_ID)
    FORGE_PUSH_URL  where to push (default: the CI's repository URL, else remote origin)
    FORGE_CHANGE    the PR/MR number to comment on (default: CI_MERGE_REQUEST_IID, the
                    GitHub pull_request event's number, Jenkins' CHANGE_ID)
    FORGE_RUN_URL   the job's URL for bodies (default: CI_JOB_URL, the GitHub run, BUILD_URL)
    DEFAULT_BRANCH  the PR/MR target (default: CI_DEFAULT_BRANCH, else main)

The token is sent in an HTTP header, never in a URL or a log line.  Exit codes: 0 done or
nothing to do, 2 the forge call could not be made (the message says why).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

FORGES = ("github", "gitlab")
TIMEOUT = 60
PAGES = 20  # at most this many pages of 100 comments/issues are searched for an earlier one
DEFAULT_MARKER = "<!-- andamio:metrics-diff -->"


class ForgeError(Exception):
    """A forge call that cannot be made as asked; the message says why."""


class _HTTPError(ForgeError):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"the forge answered HTTP {status}: {text[:500]}")
        self.status, self.text = status, text


def _git(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise ForgeError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
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
        raise ForgeError(
            f"FORGE must be one of {', '.join(FORGES)} (got {name or 'nothing'}): "
            "set it where neither GitHub Actions nor GitLab CI says so (Jenkins)"
        )
    return name


def _setting(env: dict[str, str], names: tuple[str, ...], what: str) -> str:
    for name in names:
        if env.get(name):
            return env[name]
    raise ForgeError(f"{names[0]} is not set: {what}")


def job_url(env: dict[str, str]) -> str:
    """Return the URL of the CI job running this, when the CI says it."""
    if env.get("FORGE_RUN_URL"):
        return env["FORGE_RUN_URL"]
    if env.get("CI_JOB_URL"):
        return env["CI_JOB_URL"]
    server, repo, run = (env.get(n) for n in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    if server and repo and run:
        return f"{server}/{repo}/actions/runs/{run}"
    return env.get("BUILD_URL", "")


def change_number(env: dict[str, str]) -> str | None:
    """Return the number of the PR/MR this build is for, or ``None`` (not a PR/MR build)."""
    for name in ("FORGE_CHANGE", "CI_MERGE_REQUEST_IID", "CHANGE_ID"):
        if env.get(name, "").strip():
            return env[name].strip()
    if env.get("GITHUB_EVENT_NAME") in ("pull_request", "pull_request_target"):
        event_path = env.get("GITHUB_EVENT_PATH")
        if event_path and Path(event_path).is_file():
            try:
                event = json.loads(Path(event_path).read_text(encoding="utf-8"))
                number = (event.get("pull_request") or {}).get("number") or event.get("number")
            except (ValueError, AttributeError):
                number = None
            if number:
                return str(number)
        match = re.fullmatch(r"refs/pull/(\d+)/(?:merge|head)", env.get("GITHUB_REF", ""))
        if match:
            return match[1]
    return None


class Forge:
    """The REST calls andamio makes, for one forge (GitHub REST or GitLab API v4)."""

    def __init__(self, kind: str, env: dict[str, str]) -> None:
        self.kind, self.env = kind, env
        self.token = _setting(
            env,
            ("FORGE_TOKEN",),
            "a token that may push branches and open PRs/MRs (GitHub: the job's token with "
            "contents and pull-requests write; GitLab: a project access token in a masked "
            "variable; Jenkins: a secret-text credential)",
        )
        if kind == "github":
            self.api = _setting(env, ("FORGE_API_URL", "GITHUB_API_URL"), "the GitHub API root URL")
            self.project = _setting(env, ("FORGE_PROJECT", "GITHUB_REPOSITORY"), "the repository, owner/name")
            self.root = f"/repos/{self.project}"
        else:
            self.api = _setting(env, ("FORGE_API_URL", "CI_API_V4_URL"), "the GitLab API v4 root URL")
            self.project = _setting(env, ("FORGE_PROJECT", "CI_PROJECT_ID"), "the project id or path")
            self.root = f"/projects/{urllib.parse.quote(self.project, safe='')}"
        self.api = self.api.rstrip("/")

    # -- HTTP ---------------------------------------------------------------------------------
    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        headers = {"Accept": "application/json", "User-Agent": "andamio-forge"}
        if self.kind == "github":
            headers |= {"Authorization": f"Bearer {self.token}", "X-GitHub-Api-Version": "2022-11-28"}
        else:
            headers["PRIVATE-TOKEN"] = self.token
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(f"{self.api}{path}", data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            raise _HTTPError(error.code, error.read().decode(errors="replace")) from None
        except urllib.error.URLError as error:
            raise ForgeError(f"{method} {self.api}{path}: {error.reason}") from None
        try:
            return json.loads(body) if body else None
        except ValueError:
            raise ForgeError(f"{method} {self.api}{path}: the answer is not JSON") from None

    def _list(self, path: str, query: dict[str, str]) -> list[dict[str, Any]]:
        """Return every item of a paged list (100 a page, at most PAGES pages)."""
        items: list[dict[str, Any]] = []
        for page in range(1, PAGES + 1):
            params = urllib.parse.urlencode({**query, "per_page": "100", "page": str(page)})
            batch = self._request("GET", f"{path}?{params}") or []
            items += batch
            if len(batch) < 100:
                break
        return items

    # -- comments -----------------------------------------------------------------------------
    def comment(self, number: str, body: str, marker: str) -> tuple[str, str]:
        """Post ``body`` on PR/MR ``number``, or edit the comment that carries ``marker``.

        Returns (``posted``|``updated``, the comment's URL or id).
        """
        text = f"{marker}\n{body}" if marker else body
        if self.kind == "github":  # a PR's conversation comments are issue comments, oldest first
            notes, order = f"{self.root}/issues/{number}/comments", {}
            edit = f"{self.root}/issues/comments"
        else:  # merge-request notes, newest first unless asked
            notes, order = (
                f"{self.root}/merge_requests/{number}/notes",
                {"sort": "asc", "order_by": "created_at"},
            )
            edit = notes
        earlier = [c for c in self._list(notes, order) if marker and marker in (c.get("body") or "")]
        if earlier:
            note = earlier[-1]
            method = "PATCH" if self.kind == "github" else "PUT"
            updated = self._request(method, f"{edit}/{note['id']}", {"body": text}) or {}
            return "updated", str(updated.get("html_url") or note["id"])
        created = self._request("POST", notes, {"body": text}) or {}
        return "posted", str(created.get("html_url") or created.get("id", ""))

    # -- issues -------------------------------------------------------------------------------
    def issue(self, title: str, body: str, label: str) -> tuple[str, str]:
        """Open an issue, or comment on the open one of that title and label.

        Returns (``opened``|``commented on``, the issue's URL).
        """
        if self.kind == "github":
            found = self._list(f"{self.root}/issues", {"state": "open", "labels": label})
            same = [i for i in found if i.get("title") == title and "pull_request" not in i]
            if same:
                issue = same[0]
                self._request("POST", f"{self.root}/issues/{issue['number']}/comments", {"body": body})
                return "commented on", issue.get("html_url", "")
            created = self._request(
                "POST", f"{self.root}/issues", {"title": title, "body": body, "labels": [label]}
            )
            return "opened", created.get("html_url", "")
        found = self._list(
            f"{self.root}/issues", {"state": "opened", "labels": label, "search": title, "in": "title"}
        )
        same = [i for i in found if i.get("title") == title]
        if same:
            issue = same[0]
            self._request("POST", f"{self.root}/issues/{issue['iid']}/notes", {"body": body})
            return "commented on", issue.get("web_url", "")
        created = self._request(
            "POST", f"{self.root}/issues", {"title": title, "description": body, "labels": label}
        )
        return "opened", created.get("web_url", "")

    # -- change requests ----------------------------------------------------------------------
    def push_url(self) -> str:
        """Where branches are pushed: FORGE_PUSH_URL, the CI's repository URL, else origin."""
        env = self.env
        if env.get("FORGE_PUSH_URL"):
            return env["FORGE_PUSH_URL"]
        if self.kind == "github" and env.get("GITHUB_SERVER_URL"):
            return f"{env['GITHUB_SERVER_URL']}/{self.project}.git"
        if self.kind == "gitlab" and env.get("CI_SERVER_URL") and env.get("CI_PROJECT_PATH"):
            return f"{env['CI_SERVER_URL']}/{env['CI_PROJECT_PATH']}.git"
        return _git("remote", "get-url", "origin")

    def _git_authorised(self, *args: str, check: bool = True) -> str:
        user = "x-access-token" if self.kind == "github" else "oauth2"
        basic = base64.b64encode(f"{user}:{self.token}".encode()).decode()
        return _git("-c", f"http.extraHeader=Authorization: Basic {basic}", *args, check=check)

    def others_commits(self, url: str, branch: str) -> list[str]:
        """Return the commits of the remote ``branch`` a force-push would drop, made by others.

        Others: another author than this job's commit (a reviewer's conflict resolution,
        say).  An earlier run's own commits do not count.
        """
        if not self._git_authorised("ls-remote", url, f"refs/heads/{branch}"):
            return []
        self._git_authorised("fetch", "--quiet", url, f"refs/heads/{branch}")
        ours = _git("log", "-1", "--format=%ae", "HEAD")
        dropped = _git("log", "--format=%h %ae %s", "FETCH_HEAD", "--not", "HEAD").splitlines()
        return [line for line in dropped if line.split(" ", 2)[1] != ours]

    def push(self, branch: str) -> None:
        """Push HEAD to ``branch``, forced: the branch is this job's own proposal.

        When someone else has committed to it, nothing is pushed: their work is never lost.
        """
        url = self.push_url()
        others = self.others_commits(url, branch)
        if others:
            shown = "\n  ".join(others[:10])
            raise ForgeError(
                f"{branch} holds commits by someone else; not overwriting them:\n  {shown}\n"
                "Merge or close its PR/MR (or delete the branch), then run the job again."
            )
        self._git_authorised("push", "--quiet", "--force", url, f"HEAD:refs/heads/{branch}")

    def open(self, branch: str, base: str, title: str, body: str) -> tuple[str, str]:
        """Open the PR/MR, or refresh the open one; return (``opened``|``updated``, its URL)."""
        if self.kind == "github":
            root = f"{self.root}/pulls"
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
                raise ForgeError(f"GitHub says a pull request for {branch} exists but lists none")
            updated = self._request("PATCH", f"{root}/{existing['number']}", {"title": title, "body": body})
            return "updated", updated.get("html_url", "")
        root = f"{self.root}/merge_requests"
        fields = {"title": title, "description": body}
        try:
            created = self._request(
                "POST",
                root,
                {**fields, "source_branch": branch, "target_branch": base, "remove_source_branch": True},
            )
            return "opened", created.get("web_url", "")
        except _HTTPError as error:
            if error.status != 409:
                raise
        query = urllib.parse.urlencode({"source_branch": branch, "state": "opened"})
        (existing, *_) = self._request("GET", f"{root}?{query}") or [None]
        if not existing:
            raise ForgeError(f"GitLab says a merge request for {branch} exists but lists none")
        updated = self._request("PUT", f"{root}/{existing['iid']}", fields)
        return "updated", updated.get("web_url", "")


def _with_link(body: str, env: dict[str, str], verb: str) -> str:
    url = job_url(env)
    return f"{body.rstrip()}\n\n---\n{verb} by {url}\n" if url else body


def change_request(args: argparse.Namespace, env: dict[str, str]) -> str:
    """Push the current branch and open or refresh its PR/MR; return what was done."""
    base = args.base or env.get("DEFAULT_BRANCH") or env.get("CI_DEFAULT_BRANCH") or "main"
    branch = _git("symbolic-ref", "--quiet", "--short", "HEAD", check=False) or None
    if branch is None or branch == base:
        return f"HEAD is {'detached' if branch is None else f'on {base}'}: nothing to propose"
    title = _git("log", "-1", "--format=%s")
    if args.body_file and not args.body_file.is_file():
        raise ForgeError(f"no body file {args.body_file}")
    body = args.body_file.read_text(encoding="utf-8") if args.body_file else _git("log", "-1", "--format=%b")
    body = _with_link(body, env, "Opened")
    if args.dry_run:
        return f"would push {branch} and propose it to {base}: {title}"
    client = Forge(forge(env), env)
    client.push(branch)
    what, link = client.open(branch, base, title, body)
    kind = "pull request" if client.kind == "github" else "merge request"
    return f"{what} the {kind} {branch} -> {base}: {link or title}"


def comment(args: argparse.Namespace, env: dict[str, str]) -> str:
    """Post (or refresh) the comment on this build's PR/MR; return what was done."""
    number = change_number(env)
    if number is None:
        return "not a pull/merge request build: nothing to post"
    if not env.get("FORGE_TOKEN"):
        return "FORGE_TOKEN is not set: not posted"
    if not args.body_file.is_file():
        raise ForgeError(f"no {args.body_file} to post (run the target that writes it first)")
    body = _with_link(args.body_file.read_text(encoding="utf-8"), env, "Posted")
    client = Forge(forge(env), env)
    what, link = client.comment(number, body, args.marker)
    kind = "pull request" if client.kind == "github" else "merge request"
    return f"{what} {args.body_file} on {kind} {number}: {link}"


def issue(args: argparse.Namespace, env: dict[str, str]) -> str:
    """Open the issue (or comment on the open one); return what was done."""
    if not env.get("FORGE_TOKEN"):
        return f"FORGE_TOKEN is not set: no issue {args.title!r} opened"
    body = args.body or args.title
    url = job_url(env)
    body = f"{body.rstrip()}\n\nJob: {url}\n" if url else body
    client = Forge(forge(env), env)
    what, link = client.issue(args.title, body, args.label)
    return f"{what} the issue {args.title!r}: {link}"


def main(argv: list[str] | None = None, env: dict[str, str] | None = None) -> int:
    """Parse the command line and make the forge call; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    request = commands.add_parser("change-request", help="push the branch, open or refresh its PR/MR")
    request.add_argument("--body-file", type=Path, help="Markdown body (default: the commit message body)")
    request.add_argument("--base", help="target branch (default: DEFAULT_BRANCH, CI_DEFAULT_BRANCH, main)")
    request.add_argument("--dry-run", action="store_true", help="say what would be pushed and opened")
    request.set_defaults(run=change_request)
    note = commands.add_parser("comment", help="post a file on this build's PR/MR (edit the earlier one)")
    note.add_argument("--body-file", type=Path, required=True, help="Markdown to post")
    note.add_argument("--marker", default=DEFAULT_MARKER, help="hidden text naming the comment to edit")
    note.set_defaults(run=comment)
    ticket = commands.add_parser("issue", help="open an issue, or comment on the open one of that title")
    ticket.add_argument("--title", required=True)
    ticket.add_argument("--body", default="", help="Markdown body (the job's link is added)")
    ticket.add_argument("--label", default="andamio", help="label of the issue (found again by it)")
    ticket.set_defaults(run=issue)
    args = parser.parse_args(argv)
    env = dict(os.environ if env is None else env)
    try:
        print(f"{args.command}: {args.run(args, env)}")
    except ForgeError as error:
        print(f"{args.command}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
