"""What every benchmark shares: percentiles, the floor of the same run, markdown output.

Every figure in docs/benchmarks.md is quoted as a median and p99 and as a ratio to the
*floor*: a bare gRPC health Check over TLS against the same server process, measured in the
same run, so numbers from a loaded or a quiet machine stay comparable.

A benchmark script prints a markdown section (``### title`` + table) when run with
``--markdown``; ``bench/run_all.py`` collects those sections into docs/benchmarks.md.
"""

from __future__ import annotations

import http.client
import os
import statistics
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


@dataclass(frozen=True)
class Stats:
    """Summary of latency samples, in milliseconds."""

    n: int
    p50: float
    p99: float
    mean: float

    def ratio(self, floor: Stats) -> str:
        """The median as a multiple of the floor's median, e.g. "2.4×"."""
        return f"{self.p50 / floor.p50:.1f}×" if floor.p50 > 0 else "—"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))]


def summarize(samples_ms: Sequence[float]) -> Stats:
    """Median, p99 and mean of samples already in milliseconds."""
    return Stats(
        n=len(samples_ms),
        p50=statistics.median(samples_ms),
        p99=percentile(samples_ms, 0.99),
        mean=statistics.fmean(samples_ms),
    )


def timed_ms(fn: Callable[[], object], count: int) -> list[float]:
    """Runs `fn` `count` times sequentially; returns each call's wall time in ms."""
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def grpc_floor(channel: grpc.Channel, count: int = 300) -> Stats:
    """The floor: a bare health Check over `channel` (TLS when the server uses it)."""
    check = floor_check(channel)
    return summarize([check() for _ in range(count)])


def floor_check(channel: grpc.Channel) -> Callable[[], float]:
    """One timed floor sample (ms) per call, on a warmed connection: for spreading a
    floor's samples over the samples it is compared with."""
    stub = health_pb2_grpc.HealthStub(channel)
    request = health_pb2.HealthCheckRequest()
    for _ in range(20):  # warm the connection
        stub.Check(request)

    def sample() -> float:
        t0 = time.perf_counter()
        stub.Check(request)
        return (time.perf_counter() - t0) * 1e3

    return sample


def machine_speed() -> str:
    """How fast this machine is, for comparing runs across machines: the time of a fixed
    pure-Python loop and of one cheap system call (both the floor and the server's own
    work scale with them, but not equally: a machine whose system calls are slow slows the
    server more than the floor)."""
    loops = []
    for _ in range(5):
        t0 = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        loops.append((time.perf_counter() - t0) * 1e3)
    calls = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(20_000):
            os.getppid()
        calls.append((time.perf_counter() - t0) * 1e6 / 20_000)
    return (
        f"a pure-Python loop of 10^6 additions {min(loops):.0f} ms, "
        f"one system call {min(calls):.2f} µs"
    )


class KeepAliveHttp:
    """A lean HTTP/1.1 client over one keep-alive connection, for timing REST routes.

    The floor is timed with gRPC's C client; timing REST with httpx (pure Python) added
    0.13 ms to a trivial route and 0.64 ms to a 30-record listing here, measured side by
    side with this client (`http.client`, the standard library's, whose parsing is mostly
    C) — cost of the client, not of the server. The REST rows use this one, as a browser's
    native HTTP stack would.
    """

    def __init__(self, base_url: str, timeout: float = 120.0) -> None:
        parts = urllib.parse.urlsplit(base_url)
        self._conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)

    def get(self, path: str, params: dict[str, str], headers: dict[str, str]) -> bytes:
        """The body of a GET that must answer 2xx."""
        target = f"{path}?{urllib.parse.urlencode(params)}" if params else path
        self._conn.request("GET", target, headers=headers)
        response = self._conn.getresponse()
        body = response.read()
        if not 200 <= response.status < 300:
            raise RuntimeError(f"GET {target}: {response.status} {body[:300]!r}")
        return body

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> KeepAliveHttp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_average() -> str:
    """The 1/5/15-minute load average, for the record next to every table."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def stats_row(label: str, stats: Stats, floor: Stats) -> list[str]:
    """One table row: label, p50, p99, ratio of the median to the floor."""
    return [label, f"{stats.p50:.2f} ms", f"{stats.p99:.2f} ms", stats.ratio(floor)]


def print_section(title: str, table: str, notes: str, markdown: bool) -> None:
    """Prints one benchmark's result: a markdown section for run_all.py, or plain text."""
    if markdown:
        print(f"{title}\n\n{table}\n\n{notes}\n")
    else:
        print(title.lstrip("# "))
        print(table)
        print(notes)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process `pid` used so far (Linux /proc)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
