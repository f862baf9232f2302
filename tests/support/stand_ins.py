"""Local stand-ins for the two web services the generated CI talks to, which are out of reach here.

* ``ForgeAPI``: the endpoints of GitHub's REST API and GitLab's API v4 that the library's
  ``forge.py`` calls (ci-templates/resources/andamio/) -- pull/merge requests, PR/MR
  comments (GitHub: issue comments; GitLab: merge-request notes) and issues with their
  comments/notes.  It records each request and answers the way the forge documents (201
  on creation, 422/409 when a PR/MR for the branch is open already, paged lists with
  ``per_page``/``page``, the update calls).  The branch itself is pushed with real git to
  a real bare repository; only the HTTP side is played.
* ``OSVAPI``: the OSV ``/v1/query`` endpoint pip-audit asks (``-s osv --osv-url``), knowing
  the advisories a test gives it.

Both serve on 127.0.0.1 from a thread, for the length of a ``with`` block.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class ForgeAPI:
    """GitHub (``kind='github'``) or GitLab (``kind='gitlab'``): PRs/MRs, comments, issues."""

    kind: str
    token: str
    calls: list[Call] = field(default_factory=list)
    open_requests: dict[str, dict[str, Any]] = field(default_factory=dict)  # by source branch
    comments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by PR/MR number
    issues: list[dict[str, Any]] = field(default_factory=list)
    issue_notes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by issue number
    url: str = ""
    _ids: int = 0

    def _authorised(self, headers: dict[str, str]) -> bool:
        if self.kind == "github":
            return headers.get("authorization") == f"Bearer {self.token}"
        return headers.get("private-token") == self.token

    def _next_id(self) -> int:
        self._ids += 1
        return 1000 + self._ids

    @staticmethod
    def _page(items: list[dict[str, Any]], query: dict[str, list[str]]) -> list[dict[str, Any]]:
        per_page = int(query.get("per_page", ["30"])[0])  # GitHub's default; GitLab passes 20
        page = int(query.get("page", ["1"])[0])
        return items[(page - 1) * per_page : page * per_page]

    def handle(self, call: Call) -> tuple[int, Any]:
        self.calls.append(call)
        if not self._authorised(call.headers):
            return 401, {"message": "Bad credentials" if self.kind == "github" else "401 Unauthorized"}
        route = self._github if self.kind == "github" else self._gitlab
        return route(call)

    # -- GitHub REST: /repos/{owner}/{repo}/... ------------------------------------------------
    def _github(self, call: Call) -> tuple[int, Any]:
        match = re.fullmatch(r"/repos/[^/]+/[^/]+(/.*)", call.path)
        rest = match[1] if match else ""
        number = len(self.open_requests) + len(self.issues) + 1  # PRs and issues share numbers
        if rest == "/pulls" and call.method == "POST":
            branch = call.body["head"]
            if branch in self.open_requests:
                return 422, {
                    "message": "Validation Failed",
                    "errors": [{"message": f"A pull request already exists for acme:{branch}."}],
                }
            pr = {"number": number, "html_url": f"{self.url}/pull/{number}", **call.body}
            self.open_requests[branch] = pr
            return 201, pr
        if rest == "/pulls" and call.method == "GET":
            branch = call.query["head"][0].split(":", 1)[1]
            return 200, [self.open_requests[branch]] if branch in self.open_requests else []
        if (m := re.fullmatch(r"/pulls/(\d+)", rest)) and call.method == "PATCH":
            pr = next(p for p in self.open_requests.values() if str(p["number"]) == m[1])
            pr.update(call.body)
            return 200, pr
        if m := re.fullmatch(r"/issues/(\d+)/comments", rest):
            # PR conversation comments are issue comments; an issue's comments too
            is_pr = any(str(p["number"]) == m[1] for p in self.open_requests.values())
            store = self.comments if is_pr else self.issue_notes
            if not is_pr and not any(str(i["number"]) == m[1] for i in self.issues):
                return 404, {"message": "Not Found"}
            notes = store.setdefault(m[1], [])
            if call.method == "GET":
                return 200, self._page(notes, call.query)
            if call.method == "POST":
                cid = self._next_id()
                note = {
                    "id": cid,
                    "body": call.body["body"],
                    "html_url": f"{self.url}/pull/{m[1]}#issuecomment-{cid}",
                }
                notes.append(note)
                return 201, note
        if (m := re.fullmatch(r"/issues/comments/(\d+)", rest)) and call.method == "PATCH":
            note = next((n for ns in self.comments.values() for n in ns if str(n["id"]) == m[1]), None)
            if note is None:
                return 404, {"message": "Not Found"}
            note["body"] = call.body["body"]
            return 200, note
        if rest == "/issues" and call.method == "GET":
            state, labels = call.query.get("state", ["open"])[0], call.query.get("labels", [""])[0]
            found = [
                i
                for i in self.issues
                if i["state"] == state and (not labels or labels in {lab["name"] for lab in i["labels"]})
            ]
            return 200, self._page(found, call.query)
        if rest == "/issues" and call.method == "POST":
            issue = {
                "number": number,
                "state": "open",
                "title": call.body["title"],
                "body": call.body.get("body", ""),
                "labels": [{"name": name} for name in call.body.get("labels", [])],
                "html_url": f"{self.url}/issues/{number}",
            }
            self.issues.append(issue)
            return 201, issue
        return 404, {"message": "Not Found"}

    # -- GitLab API v4: /api/v4/projects/:id/... -----------------------------------------------
    def _gitlab(self, call: Call) -> tuple[int, Any]:
        # the project is an id or a URL-encoded path (acme%2Fchurn: decoded in ``call.path``)
        match = re.fullmatch(r"(?:/api/v4)?/projects/.+?(/(?:merge_requests|issues).*)", call.path)
        rest = match[1] if match else ""
        if rest == "/merge_requests" and call.method == "POST":
            branch = call.body["source_branch"]
            if branch in self.open_requests:
                message = "Another open merge request already exists for this source branch"
                return 409, {"message": [message]}
            iid = len(self.open_requests) + 1
            mr = {"iid": iid, "web_url": f"{self.url}/-/merge_requests/{iid}", **call.body}
            self.open_requests[branch] = mr
            return 201, mr
        if rest == "/merge_requests" and call.method == "GET":
            branch = call.query["source_branch"][0]
            return 200, [self.open_requests[branch]] if branch in self.open_requests else []
        if (m := re.fullmatch(r"/merge_requests/(\d+)", rest)) and call.method == "PUT":
            mr = next(r for r in self.open_requests.values() if str(r["iid"]) == m[1])
            mr.update(call.body)
            return 200, mr
        if m := re.fullmatch(r"/(merge_requests|issues)/(\d+)/notes(?:/(\d+))?", rest):
            store = self.comments if m[1] == "merge_requests" else self.issue_notes
            notes = store.setdefault(m[2], [])
            if m[3] and call.method == "PUT":
                note = next((n for n in notes if str(n["id"]) == m[3]), None)
                if note is None:
                    return 404, {"message": "404 Not found"}
                note["body"] = call.body["body"]
                return 200, note
            if not m[3] and call.method == "GET":
                ordered = notes[::-1] if call.query.get("sort", ["desc"])[0] == "desc" else notes
                return 200, self._page(ordered, {"per_page": ["20"], **call.query})
            if not m[3] and call.method == "POST":
                note = {"id": self._next_id(), "body": call.body["body"], "system": False}
                notes.append(note)
                return 201, note
        if rest == "/issues" and call.method == "GET":
            state, labels = call.query.get("state", ["all"])[0], call.query.get("labels", [""])[0]
            search = call.query.get("search", [""])[0].lower()
            found = [
                i
                for i in self.issues
                if state in ("all", i["state"])
                and (not labels or labels in i["labels"])
                and search in i["title"].lower()
            ]
            return 200, self._page(found, {"per_page": ["20"], **call.query})
        if rest == "/issues" and call.method == "POST":
            iid = len(self.issues) + 1
            labels = [name for name in call.body.get("labels", "").split(",") if name]
            issue = {
                "iid": iid,
                "state": "opened",
                "title": call.body["title"],
                "description": call.body.get("description", ""),
                "labels": labels,
                "web_url": f"{self.url}/-/issues/{iid}",
            }
            self.issues.append(issue)
            return 201, issue
        return 404, {"message": "404 Not found"}


@dataclass
class OSVAPI:
    """OSV's query endpoint: ``advisories`` maps (package, version) to the vulnerability ids."""

    advisories: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    url: str = ""

    def handle(self, call: Call) -> tuple[int, Any]:
        self.calls.append(call)
        package, version = call.body["package"]["name"].lower(), call.body["version"]
        vulns = [
            {
                "id": vid,
                "summary": f"{vid}: a test advisory for {package} {version}",
                "details": "Reported by the test's advisory stand-in.",
                "aliases": [],
                "modified": "2026-01-01T00:00:00Z",
                "affected": [
                    {
                        "package": {"name": package, "ecosystem": "PyPI"},
                        "ranges": [
                            {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "999.0"}]}
                        ],
                        "versions": [version],
                    }
                ],
            }
            for vid in self.advisories.get((package, version), [])
        ]
        return 200, {"vulns": vulns} if vulns else {}


@contextmanager
def serve(service: ForgeAPI | OSVAPI) -> Iterator[ForgeAPI | OSVAPI]:
    """Serve ``service`` on a free port of 127.0.0.1; its ``url`` is set inside the block."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            call = Call(
                self.command,
                unquote(parts.path),
                parse_qs(parts.query),
                {k.lower(): v for k, v in self.headers.items()},
                json.loads(raw) if raw else None,
            )
            status, payload = service.handle(call)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = _answer

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    service.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()
