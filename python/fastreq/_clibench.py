"""``fastreq bench``: requests per second and CPU per request of fastreq
(and of aiohttp and httpx when installed) against a loopback server.

The server is the engine's bench server (:mod:`fastreq._benchserver`),
started in a child process only for the run, so that its CPU is not
counted as the client's. Every client runs in this process, one after the
other (interleaved over ``--rounds``), after a short warm-up; CPU is this
process's (all threads, the engine's included) divided by the requests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import select
import statistics
import subprocess
import sys
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

from . import engine, fastreq, fastreq_async
from ._params import comma_list
from .cli import EXIT_FAILED, EXIT_OK, UsageError
from .exceptions import redact_url


class ServerProcess:
    """The bench server in a child process; it ends when its stdin closes."""

    def __init__(self, body_len: int) -> None:
        env = dict(os.environ)
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH", "")) if p)
        env.setdefault("FASTREQ_LIBRARY", engine.library_path())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fastreq._benchserver", str(body_len)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("http://"):
            self.close()
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            raise RuntimeError(f"the bench server did not start: {err.strip() or line}")
        self.url = line

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(10)
            except Exception:  # pragma: no cover
                self.proc.kill()
                self.proc.wait()


def _fastreq_kwargs(c: int, http2: bool) -> Dict[str, Any]:
    return {"concurrency": c, "return_type": "content", "backend": "http2" if http2 else "http1",
            "return_none_on_failure": True, "verbose": False}


def _run_fastreq(urls: List[str], c: int, http2: bool) -> int:
    return sum(r is None for r in fastreq(urls, **_fastreq_kwargs(c, http2)))


def _run_fastreq_async(urls: List[str], c: int, http2: bool) -> int:
    return sum(r is None for r in asyncio.run(fastreq_async(urls, **_fastreq_kwargs(c, http2))))


async def _failures(get: Callable[[str], Awaitable[bool]], urls: List[str], c: int) -> int:
    """Run get(url) (True when the request failed) for every URL, at most c
    at a time; an exception counts as a failure."""
    sem = asyncio.Semaphore(c)

    async def one(u: str) -> bool:
        async with sem:
            try:
                return await get(u)
            except Exception:
                return True

    return sum(await asyncio.gather(*(one(u) for u in urls)))


def _run_aiohttp(urls: List[str], c: int, http2: bool) -> int:
    import aiohttp  # type: ignore[import-not-found, unused-ignore]

    async def main() -> int:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c)) as s:
            async def get(u: str) -> bool:
                async with s.get(u) as r:
                    await r.read()
                    return bool(r.status != 200)

            return await _failures(get, urls, c)

    return asyncio.run(main())


def _run_httpx(urls: List[str], c: int, http2: bool) -> int:
    import httpx  # type: ignore[import-not-found, unused-ignore]

    async def main() -> int:
        limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
        async with httpx.AsyncClient(limits=limits) as s:
            async def get(u: str) -> bool:
                return bool((await s.get(u)).status_code != 200)

            return await _failures(get, urls, c)

    return asyncio.run(main())


RUNNERS: Dict[str, Callable[[List[str], int, bool], int]] = {
    "fastreq": _run_fastreq,
    "fastreq_async": _run_fastreq_async,
    "aiohttp": _run_aiohttp,
    "httpx": _run_httpx,
}


def _available(name: str, http2: bool) -> Optional[str]:
    """None when the client can run, else why not."""
    if name in ("aiohttp", "httpx"):
        try:
            __import__(name)
        except ImportError:
            return f"not installed (pip install {name})"
        if http2:
            return "n/a (no h2c)"
    return None


def _measure(run: Callable[[List[str], int, bool], int], urls: List[str], c: int,
             http2: bool) -> Tuple[float, float, int]:
    """(requests/s, CPU seconds per request, failures) of one timed run."""
    t0, c0 = time.perf_counter(), time.process_time()
    failed = run(urls, c, http2)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return len(urls) / wall, cpu / len(urls), failed


def run(a: argparse.Namespace) -> int:
    names = comma_list(a.clients)
    unknown = [n for n in names if n not in RUNNERS]
    if unknown:
        raise UsageError(f"--clients: unknown client {unknown[0]!r}; valid: {', '.join(RUNNERS)}")
    server: Optional[ServerProcess] = None
    base = a.url
    if base is None:
        server = ServerProcess(a.body_size)
        base = server.url
    try:
        url = base.rstrip("/") + "/bench"
        urls = [url] * a.requests
        warm = urls[: min(1000, a.requests)]
        proto = "h2c" if a.http2 else "HTTP/1.1"
        where = "a child process" if server else "the given URL"
        print(f"fastreq bench: {a.requests:,} GET requests per run, concurrency {a.concurrency}, "
              f"{a.body_size:,}-byte bodies, {proto}, server {redact_url(base)} ({where}), "
              f"fastreq engine {engine.version()}, {a.rounds} round(s)", flush=True)
        runnable = []
        skipped: Dict[str, str] = {}
        for n in names:
            why = _available(n, a.http2)
            if why:
                skipped[n] = why
            else:
                runnable.append(n)
        results: Dict[str, List[Tuple[float, float, int]]] = {n: [] for n in runnable}
        for n in runnable:
            RUNNERS[n](warm, a.concurrency, a.http2)
        for _ in range(a.rounds):
            for n in runnable:
                results[n].append(_measure(RUNNERS[n], urls, a.concurrency, a.http2))
        print(f"{'client':<15}{'req/s':>12}{'CPU/req':>12}{'failed':>9}{'vs fastreq':>12}")
        ref = statistics.median(r[0] for r in results["fastreq"]) if results.get("fastreq") else None
        for n in names:
            if n in skipped:
                print(f"{n:<15}  {skipped[n]}")
                continue
            rs = results[n]
            rate = statistics.median(r[0] for r in rs)
            cpu = statistics.median(r[1] for r in rs)
            failed = max(r[2] for r in rs)
            ratio = f"{rate / ref:.2f}x" if ref else ""
            print(f"{n:<15}{rate:>12,.0f}{cpu * 1e6:>9.1f} us{failed:>9,}{ratio:>12}", flush=True)
        return EXIT_OK if all(r[2] == 0 for rs in results.values() for r in rs) else EXIT_FAILED
    finally:
        if server is not None:
            server.close()
