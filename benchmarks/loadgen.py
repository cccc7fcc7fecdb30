"""A small HTTP/1.1 keep-alive load generator on asyncio (uvloop), cheap enough to share the machine.

Each virtual client holds one connection and runs a scenario coroutine that issues requests in turn.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import orjson


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    errors: dict[int, int] = field(default_factory=dict)

    def add(self, seconds: float, status: int, ok: bool) -> None:
        self.latencies.append(seconds)
        if not ok:
            self.errors[status] = self.errors.get(status, 0) + 1

    def summary(self, elapsed: float) -> dict:
        lat = sorted(self.latencies)
        n = len(lat)

        def pct(p: float) -> float:
            return round(lat[min(n - 1, int(p * n))] * 1000, 2) if n else 0.0

        return {
            "requests": n,
            "seconds": round(elapsed, 2),
            "per_second": round(n / elapsed, 1) if elapsed else 0,
            "p50_ms": pct(0.50),
            "p95_ms": pct(0.95),
            "p99_ms": pct(0.99),
            "errors": self.errors,
        }


class Connection:
    def __init__(self, host: str, port: int, headers: dict[str, str]):
        self.host, self.port = host, port
        self.base_headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, method: str, path: str, body=None, extra: dict[str, str] | None = None):
        payload = b"" if body is None else (body if isinstance(body, bytes) else orjson.dumps(body))
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.base_headers}"
        if extra:
            head += "".join(f"{k}: {v}\r\n" for k, v in extra.items())
        head += f"Content-Length: {len(payload)}\r\n\r\n"
        self.writer.write(head.encode() + payload)
        status_line = await self.reader.readline()
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        headers = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", "0"))
        data = await self.reader.readexactly(length) if length else b""
        return status, headers, data

    def close(self) -> None:
        if self.writer:
            self.writer.close()


async def run(host: str, port: int, headers: dict[str, str], clients: int, seconds: float, scenario) -> dict:
    """Runs `scenario(conn, stats, deadline)` on `clients` connections for `seconds`."""
    stats = Stats()
    conns = [Connection(host, port, headers) for _ in range(clients)]
    await asyncio.gather(*(c.open() for c in conns))
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(*(scenario(c, stats, deadline) for c in conns))
    elapsed = time.perf_counter() - start
    for c in conns:
        c.close()
    return stats.summary(elapsed)


async def timed(conn: Connection, stats: Stats, method: str, path: str, body=None, extra=None, ok=(200, 201, 204)):
    t = time.perf_counter()
    status, headers, data = await conn.request(method, path, body, extra)
    stats.add(time.perf_counter() - t, status, status in ok)
    return status, headers, data
