"""A small closed-loop HTTP/1.1 load generator on raw asyncio streams.

httpx's async pool tops out near a hundred requests per second at concurrency 32 on this
machine, so it would measure itself rather than the server.  Each of ``concurrency``
workers holds one keep-alive connection and sends the next request as soon as the last
answer is read.  Bounded by request count and a deadline; loopback targets only.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    """Latencies (seconds) and status codes of a load run."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def throughput(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    @property
    def errors(self) -> int:
        return len(self.failures) + sum(n for code, n in self.statuses.items() if code >= 400)


def request_bytes(host: str, port: int, path: str, body: bytes) -> bytes:
    """A keep-alive POST of a JSON body."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode("ascii") + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        if b":" in line:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
    if b"content-length" in headers:
        return status, await reader.readexactly(int(headers[b"content-length"]))
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                return status, b"".join(chunks)
            chunks.append(data[:-2])
    return status, b""


async def _run(
    host: str, port: int, request: bytes, total: int, concurrency: int, deadline: float
) -> LoadResult:
    result = LoadResult()
    tickets = itertools.count()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while next(tickets) < total and time.monotonic() < deadline:
                start = time.perf_counter()
                writer.write(request)
                try:
                    status, _ = await _read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
                    result.failures.append(repr(exc))
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                result.latencies.append(time.perf_counter() - start)
                result.statuses[status] = result.statuses.get(status, 0) + 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - start
    return result


def run_load(
    port: int,
    path: str,
    body: bytes,
    *,
    total: int,
    concurrency: int,
    timeout: float = 300.0,
    host: str = "127.0.0.1",
) -> LoadResult:
    """Send ``total`` POSTs of ``body`` to ``path`` with ``concurrency`` connections."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("load runs target this machine only")
    request = request_bytes(host, port, path, body)
    deadline = time.monotonic() + timeout
    return asyncio.run(_run(host, port, request, total, concurrency, deadline))
