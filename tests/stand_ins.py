"""Local stand-ins for the two web services the generated CI talks to, which are out of reach here.

* ``ForgeAPI``: the pull/merge-request endpoints of GitHub's REST API and GitLab's API v4
  that ``scripts/change_request.py`` calls -- it records each request and answers the way
  the forge documents (201 on creation, 422/409 when a PR/MR for the branch is open already,
  the list and update calls).  The branch itself is pushed with real git to a real bare
  repository; only the HTTP side is played.
* ``OSVAPI``: the OSV ``/v1/query`` endpoint pip-audit asks (``-s osv --osv-url``), knowing
  the advisories a test gives it.

Both serve on 127.0.0.1 from a thread, for the length of a ``with`` block.
"""

from __future__ import annotations

import json
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
    """GitHub (``kind='github'``) or GitLab (``kind='gitlab'``) pull/merge-request endpoints."""

    kind: str
    token: str
    calls: list[Call] = field(default_factory=list)
    open_requests: dict[str, dict[str, Any]] = field(default_factory=dict)  # by source branch
    url: str = ""

    def _authorised(self, headers: dict[str, str]) -> bool:
        if self.kind == "github":
            return headers.get("authorization") == f"Bearer {self.token}"
        return headers.get("private-token") == self.token

    def handle(self, call: Call) -> tuple[int, Any]:
        self.calls.append(call)
        if not self._authorised(call.headers):
            return 401, {"message": "Bad credentials"}
        number = len(self.open_requests) + 1
        if self.kind == "github":
            if call.method == "POST" and call.path.endswith("/pulls"):
                branch = call.body["head"]
                if branch in self.open_requests:
                    return 422, {
                        "message": "Validation Failed",
                        "errors": [{"message": f"A pull request already exists for acme:{branch}."}],
                    }
                pr = {"number": number, "html_url": f"{self.url}/pull/{number}", **call.body}
                self.open_requests[branch] = pr
                return 201, pr
            if call.method == "GET" and call.path.endswith("/pulls"):
                branch = call.query["head"][0].split(":", 1)[1]
                return 200, [self.open_requests[branch]] if branch in self.open_requests else []
            if call.method == "PATCH":
                pr = next(p for p in self.open_requests.values() if call.path.endswith(f"/{p['number']}"))
                pr.update(call.body)
                return 200, pr
        else:
            if call.method == "POST" and call.path.endswith("/merge_requests"):
                branch = call.body["source_branch"]
                if branch in self.open_requests:
                    message = "Another open merge request already exists for this source branch"
                    return 409, {"message": [message]}
                mr = {"iid": number, "web_url": f"{self.url}/-/merge_requests/{number}", **call.body}
                self.open_requests[branch] = mr
                return 201, mr
            if call.method == "GET" and call.path.endswith("/merge_requests"):
                branch = call.query["source_branch"][0]
                return 200, [self.open_requests[branch]] if branch in self.open_requests else []
            if call.method == "PUT":
                mr = next(m for m in self.open_requests.values() if call.path.endswith(f"/{m['iid']}"))
                mr.update(call.body)
                return 200, mr
        return 404, {"message": "Not Found"}


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
