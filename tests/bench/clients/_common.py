"""Shared plumbing of the benchmark's Python clients (stdlib only).

Every client script runs in its own virtual environment and imports this
module from its own directory. A client runs one workload and prints one
JSON line (the last line of its stdout) in the format of goclient:

    {"client": ..., "version": ..., "ok": N, "failed": N, "elapsed": s,
     "bytes": N, "kept": N, "cpu_work_s": s,
     "p50_ms"/"p99_ms"/"mean_ms" (mode serial), "achieved_rate" (mode rate),
     "errors": [first few error messages]}

Command line (the same for every client, and for goclient with one dash):

    --url URL --n N --concurrency C --mode json|bytes|rate|serial|storm|jsonl
    [--rate R] [--proto h1|h2c|h2|h3] [--hosts H] [--retries R]
    [--circuit-breaker-threshold T]

Modes: json = N GETs, each body parsed as JSON and kept in a list; bytes =
N GETs, each body kept; rate = N GETs under the client's own rate limit of
R/s (achieved rate = ok / elapsed); serial = N GETs one at a time, each
timed; storm = N GETs of a URL where nothing listens, with R retries each
(backoff 1 s x 2^attempt, jitter 0.1, at most 60 s: the engine's
defaults), where a request counts as "ok" when it FAILED the way it should
(no answer, a connect-type error; see NOT_STORM_KINDS) and the line adds
"attempts" (all attempts made, where the client knows); jsonl = N GETs of
distinct URLs written to a file as JSON lines, one record per request
(run_jsonl). --hosts H spreads
the requests over H loopback hosts (host_urls). --circuit-breaker-threshold
is for our fastreq only. Every client may add "info" (the descriptor limit
it ran with, what it had to change). A client that cannot do what it is
asked (no HTTP/2, no rate limit, an option its library lacks) exits with
status 3 (UNSUPPORTED) after printing why on stderr.

`elapsed` and `cpu_work_s` cover the workload only (not interpreter start-up
or imports); the harness also measures the whole process from outside.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import resource
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable

# The descriptor limit the process started with, before any library (a Go
# runtime raises the soft limit to the hard one, less 1, as it starts;
# libfastreq puts the host's back).
NOFILE_AT_START = resource.getrlimit(resource.RLIMIT_NOFILE)

UNSUPPORTED = 3

# The /json document of tests/bench/server: results are checked against it
# after the clock stops, so a client cannot count garbage as success.
EXPECTED_ID = 12345


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--mode", choices=["json", "bytes", "rate", "serial", "storm", "jsonl"], default="json")
    p.add_argument("--rate", type=float, default=0.0)
    p.add_argument("--proto", choices=["h1", "h2c", "h2", "h3"], default="h1")
    p.add_argument("--hosts", type=int, default=0)
    p.add_argument("--retries", type=int, default=0)
    p.add_argument("--circuit-breaker-threshold", type=int, default=None)
    p.add_argument("--keep-per-host", action="store_true",
                   help="max_connections = hosts + concurrency: a connection kept per host")
    p.add_argument("--buffer", action="store_true",
                   help="mode bytes: return_type='buffer', bodies as views of the engine's memory")
    return p.parse_args(argv)


def host_urls(url: str, n: int, hosts: int) -> list[str]:
    """n copies of url (which must be on 127.0.0.1) spread over `hosts`
    loopback addresses: request i goes to host k = i % hosts, which is
    127.0.(1 + k // 250).(1 + k % 250) (the rule of goclient's hostURLs).
    Nothing outside 127.0.0.0/8 can come out of it."""
    u = urllib.parse.urlsplit(url)
    if u.hostname != "127.0.0.1" or u.port is None:
        raise SystemExit(f"--hosts needs a URL on 127.0.0.1:PORT, got {url!r}")
    if not 1 <= hosts <= 250 * 254:
        raise SystemExit(f"--hosts must be 1..{250 * 254}")
    by_host = [urllib.parse.urlunsplit(u._replace(netloc=f"127.0.{1 + k // 250}.{1 + k % 250}:{u.port}"))
               for k in range(hosts)]
    return [by_host[i % hosts] for i in range(n)]


def nofile_info() -> str:
    """The descriptor limit at start and now (soft/hard)."""
    s0, h0 = NOFILE_AT_START
    s1, h1 = resource.getrlimit(resource.RLIMIT_NOFILE)
    return f"nofile {s0}/{h0}" + ("" if (s0, h0) == (s1, h1) else f", {s1}/{h1} after the run")


def raise_nofile(need: int) -> str:
    """Raise the soft descriptor limit to the hard one when it is below
    need; returns what was done, for the client's info."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need or soft == hard:
        return ""
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return f"raised the soft nofile limit {soft} -> {hard} (needs about {need})"


def backoff(attempt: int) -> float:
    """The engine's default retry delay before retry number attempt
    (0-based): 1 s x 2^attempt, plus or minus 10 %, at most 60 s."""
    base = 1.0 * 2 ** attempt
    return min(base + base * 0.1 * (2 * random.random() - 1), 60.0)


# Failure kinds that mean the request went wrong on our side (or got an
# answer), not that the closed port refused it.
NOT_STORM_KINDS = {"validation", "configuration", "cancelled", "io", "tls", "too_many_redirects",
                   "body_too_large", "http_status", "proxy"}


def fastreq_options(args: argparse.Namespace) -> dict[str, Any]:
    """The fastreq() keywords both fastreq clients (ours and the original)
    share: no retries, failures as None, no TLS checks, no logging, and
    the return type of the mode."""
    o: dict[str, Any] = dict(
        concurrency=args.concurrency,
        max_retries=0,
        return_none_on_failure=True,
        verify_ssl=False,
        verbose=False,
        return_type="content" if args.mode == "bytes" else "json",
    )
    if args.mode == "rate":
        o["rate_limit"] = args.rate
    return o


def unsupported(why: str) -> None:
    print(f"unsupported: {why}", file=sys.stderr)
    sys.exit(UNSUPPORTED)


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)  # all threads of the process
    return ru.ru_utime + ru.ru_stime


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile (the same rule as goclient)."""
    if not sorted_values:
        return 0.0
    k = math.ceil(p / 100 * len(sorted_values) - 1e-9) - 1
    k = min(max(k, 0), len(sorted_values) - 1)
    return sorted_values[k]


class Failure:
    """Stands in the result list for a failed request."""

    __slots__ = ("msg",)

    def __init__(self, msg: str) -> None:
        self.msg = msg


def failure(exc: BaseException) -> Failure:
    return Failure(f"{type(exc).__name__}: {exc}"[:300])


def check_status(status: int) -> None:
    if status != 200:
        raise RuntimeError(f"HTTP status {status}")


def report(
    client: str,
    version: str,
    args: argparse.Namespace,
    results: list[Any],
    elapsed: float,
    cpu_work: float,
    latencies: list[float] | None = None,
    info: str = "",
) -> None:
    """Check the kept results, then print the JSON line.

    results holds, per request, the parsed JSON (mode json/rate/serial), the
    body bytes (mode bytes), a Failure or None (a failed request of a
    library that reports failures as None).
    """
    ok = failed = nbytes = 0
    errors: list[str] = []
    for r in results:
        good = False
        if args.mode == "bytes":
            if isinstance(r, (bytes, bytearray, memoryview)):
                good = True
                nbytes += len(r)
        elif isinstance(r, dict) and r.get("id") == EXPECTED_ID:
            good = True
        if good:
            ok += 1
            continue
        failed += 1
        if len(errors) < 5:
            errors.append(r.msg if isinstance(r, Failure) else f"unexpected result: {r!r:.120}")
    failed += args.n - len(results)
    out: dict[str, Any] = {
        "client": client,
        "version": version,
        "ok": ok,
        "failed": failed,
        "elapsed": elapsed,
        "bytes": nbytes,
        "kept": len(results),
        "cpu_work_s": cpu_work,
    }
    if args.mode == "rate" and elapsed > 0:
        out["achieved_rate"] = ok / elapsed
    if latencies:
        lat = sorted(latencies)
        out["p50_ms"] = percentile(lat, 50)
        out["p99_ms"] = percentile(lat, 99)
        out["mean_ms"] = sum(lat) / len(lat)
    if info:
        out["info"] = info
    if errors:
        out["errors"] = errors
    sys.stdout.flush()
    print(json.dumps(out), flush=True)


def report_storm(client: str, version: str, args: argparse.Namespace, kinds: dict[str, int],
                 bad: list[str], attempts: int | None, elapsed: float, cpu_work: float, info: str) -> None:
    """Print the JSON line of mode storm: kinds counts the requests that
    failed the way they should, by kind; bad holds a message per request
    that did not (an answer, a failure of ours)."""
    ok = sum(kinds.values())
    out: dict[str, Any] = {
        "client": client,
        "version": version,
        "ok": ok,
        "failed": args.n - ok,
        "elapsed": elapsed,
        "bytes": 0,
        "kept": ok + len(bad),
        "cpu_work_s": cpu_work,
        "info": "; ".join([info] + [f"{k} x{v}" for k, v in sorted(kinds.items())]),
    }
    if attempts is not None:
        out["attempts"] = attempts
    if bad:
        out["errors"] = bad[:5]
    sys.stdout.flush()
    print(json.dumps(out), flush=True)


def run_sync(client: str, version: str, args: argparse.Namespace, work: Callable[[], list[Any]],
             info: Callable[[], str] | None = None) -> None:
    """Time work() (which returns the kept results) and report (with
    info(), asked after the workload)."""
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    results = work()
    elapsed = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    report(client, version, args, results, elapsed, cpu, info=info() if info else "")


def jsonl_urls(args: argparse.Namespace) -> list[str]:
    """Mode jsonl: N distinct URLs (the query numbers them), as a job
    reading a file of URLs has."""
    return [f"{args.url}?i={i}" for i in range(args.n)]


def run_jsonl(client: str, version: str, args: argparse.Namespace, work: Callable[[str], None]) -> None:
    """Mode jsonl: time work(path), which fetches jsonl_urls(args) and
    writes one JSON line per request to path (its "body" the response's
    text), then check the file: every line's body must be the /json
    document."""
    import os
    import tempfile

    fd, path = tempfile.mkstemp(suffix=".jsonl")
    os.close(fd)
    try:
        cpu0 = cpu_seconds()
        t0 = time.perf_counter()
        work(path)
        elapsed = time.perf_counter() - t0
        cpu = cpu_seconds() - cpu0
        results: list[Any] = []
        with open(path, "rb") as f:
            for line in f:
                try:
                    results.append(json.loads(json.loads(line)["body"]))
                except (ValueError, KeyError, TypeError) as e:
                    results.append(failure(e))
    finally:
        os.unlink(path)
    report(client, version, args, results, elapsed, cpu)


def run_async(
    client: str, version: str, args: argparse.Namespace, work: Callable[[], Awaitable[list[Any]]],
    info: Callable[[], str] | None = None,
) -> None:
    """Time the coroutine work() inside one event loop and report (with
    info(), asked after the workload)."""

    async def main() -> tuple[list[Any], float, float]:
        cpu0 = cpu_seconds()
        t0 = time.perf_counter()
        results = await work()
        return results, time.perf_counter() - t0, cpu_seconds() - cpu0

    results, elapsed, cpu = asyncio.run(main())
    report(client, version, args, results, elapsed, cpu, info=info() if info else "")


def run_serial(
    client: str, version: str, args: argparse.Namespace, one: Callable[[], Any]
) -> None:
    """mode serial for a synchronous one(): N calls, each timed."""
    results: list[Any] = []
    lat: list[float] = []
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    for _ in range(args.n):
        s = time.perf_counter()
        try:
            results.append(one())
        except Exception as e:  # noqa: BLE001 - a failure is a result here
            results.append(failure(e))
        lat.append((time.perf_counter() - s) * 1000)
    elapsed = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    report(client, version, args, results, elapsed, cpu, lat)


async def serial_async(n: int, one: Callable[[], Awaitable[Any]]) -> tuple[list[Any], list[float], float, float]:
    """N awaited calls of one(), each timed: (results, latencies_ms, elapsed, cpu)."""
    results: list[Any] = []
    lat: list[float] = []
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    for _ in range(n):
        s = time.perf_counter()
        try:
            results.append(await one())
        except Exception as e:  # noqa: BLE001
            results.append(failure(e))
        lat.append((time.perf_counter() - s) * 1000)
    return results, lat, time.perf_counter() - t0, cpu_seconds() - cpu0


async def async_pool(n: int, concurrency: int, one: Callable[[], Awaitable[Any]]) -> list[Any]:
    """N calls of one() with at most `concurrency` in flight (that many
    worker tasks pulling from a shared counter); results in order."""
    results: list[Any] = [None] * n
    indexes = iter(range(n))

    async def worker() -> None:
        for i in indexes:
            try:
                results[i] = await one()
            except Exception as e:  # noqa: BLE001
                results[i] = failure(e)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, n))))
    return results


async def async_pool_indexed(n: int, concurrency: int, one: Callable[[int], Awaitable[Any]]) -> list[Any]:
    """async_pool for calls that depend on the request's index: one(i)."""
    results: list[Any] = [None] * n
    indexes = iter(range(n))

    async def worker() -> None:
        for i in indexes:
            try:
                results[i] = await one(i)
            except Exception as e:  # noqa: BLE001
                results[i] = failure(e)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, n))))
    return results


def thread_pool(n: int, concurrency: int, one: Callable[[], Any]) -> list[Any]:
    """N calls of one() on a pool of `concurrency` threads; results in order."""
    results: list[Any] = [None] * n
    indexes = iter(range(n))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                i = next(indexes, None)
            if i is None:
                return
            try:
                results[i] = one()
            except Exception as e:  # noqa: BLE001
                results[i] = failure(e)

    with ThreadPoolExecutor(max_workers=concurrency) as ex:
        futures = [ex.submit(worker) for _ in range(min(concurrency, n))]
        for f in futures:
            f.result()
    return results
