"""A small closed-loop HTTP/1.1 load generator on raw asyncio streams.

httpx's async pool tops out near a hundred requests per second at concurrency 32 on this
machine, so it would measure itself rather than the server.  Each of ``concurrency``
workers holds one keep-alive connection and sends the next request as soon as the last
answer is read.  Bounded by request count and a deadline; loopback targets, or the
throwaway test hosts (10.231.0.0/16, scripts/testbed/) that the tests themselves start.

``run_pool_load`` spreads the requests over several hosts the way a load balancer with
retries does: a request that meets a refused or closed connection or a 503 is sent again to
the next host, and fails only when no host answered it.  Retries are counted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    """Latencies (seconds) and status codes of a load run."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    retries: int = 0
    by_target: dict[str, int] = field(default_factory=dict)

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
    _check_target(host)
    request = request_bytes(host, port, path, body)
    deadline = time.monotonic() + timeout
    return asyncio.run(_run(host, port, request, total, concurrency, deadline))


_TEST_HOSTS = ipaddress.ip_network("10.231.0.0/16")


def _check_target(host: str) -> None:
    if host in ("127.0.0.1", "localhost", "::1"):
        return
    try:
        if ipaddress.ip_address(host) in _TEST_HOSTS:
            return
    except ValueError:
        pass
    raise ValueError("load runs target this machine or its throwaway test hosts only")


async def _run_pool(
    targets: list[tuple[str, int]],
    path: str,
    body: bytes,
    total: int,
    concurrency: int,
    deadline: float,
    stop: Callable[[], bool],
) -> LoadResult:
    result = LoadResult()
    tickets = itertools.count()
    requests = [request_bytes(host, port, path, body) for host, port in targets]

    async def worker() -> None:
        conns: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}

        async def send(i: int) -> int:
            if i not in conns:
                conns[i] = await asyncio.wait_for(asyncio.open_connection(*targets[i]), 5)
            reader, writer = conns[i]
            try:
                writer.write(requests[i])
                status, _ = await asyncio.wait_for(_read_response(reader), 30)
            except BaseException:
                conns.pop(i)[1].close()
                raise
            return status

        try:
            while (ticket := next(tickets)) < total and time.monotonic() < deadline and not stop():
                start = time.perf_counter()
                last = ""
                for attempt in range(len(targets) * 2):
                    i = (ticket + attempt) % len(targets)
                    try:
                        status = await send(i)
                    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                        last = f"{targets[i][0]}: {exc!r}"
                        result.retries += 1
                        continue
                    if status == 503:
                        last = f"{targets[i][0]}: 503"
                        result.retries += 1
                        continue
                    result.latencies.append(time.perf_counter() - start)
                    result.statuses[status] = result.statuses.get(status, 0) + 1
                    result.by_target[targets[i][0]] = result.by_target.get(targets[i][0], 0) + 1
                    break
                else:
                    result.failures.append(last)
                    await asyncio.sleep(0.1)
        finally:
            for _, writer in conns.values():
                writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - start
    return result


def run_pool_load(
    targets: list[tuple[str, int]],
    path: str,
    body: bytes,
    *,
    total: int,
    concurrency: int,
    timeout: float = 300.0,
    stop: Callable[[], bool] = lambda: False,
) -> LoadResult:
    """Send up to ``total`` POSTs over ``targets`` (host, port) in turn, failing over as an
    LB does, until ``timeout`` seconds pass or ``stop()`` says so."""
    for host, _ in targets:
        _check_target(host)
    deadline = time.monotonic() + timeout
    return asyncio.run(_run_pool(targets, path, body, total, concurrency, deadline, stop))
