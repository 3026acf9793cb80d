"""aiohttp peer: one ClientSession, TCPConnector(limit=concurrency), worker
tasks; resp.json() / resp.read(). No HTTP/2 and no rate limit of its own.

--hosts (many hosts): TCPConnector(limit=concurrency, limit_per_host=8),
a polite crawler's cap that never binds here (the requests in flight go to
distinct hosts); aiohttp keeps every host's connection alive afterwards,
as the engine does, so the soft descriptor limit is raised to the hard one
when it is below what that needs (and the info says so).

Mode storm: aiohttp has no retries, so the engine's policy is written out
here, minimally: a failed connection (or a timeout) is retried up to
--retries times after c.backoff(attempt) (1 s x 2^attempt, jitter 0.1, at
most 60 s); a request holds one of the `concurrency` slots only while it
makes an attempt, not while it waits, as in the engine, and requests start
in order as slots free up."""

import asyncio
import importlib.metadata
import time
import warnings

import aiohttp

import _common as c

warnings.simplefilter("ignore")

LIMIT_PER_HOST = 8


def main() -> None:
    args = c.parse_args()
    if args.proto != "h1":
        c.unsupported("aiohttp speaks HTTP/1.1 only")
    if args.mode == "rate":
        c.unsupported("aiohttp has no rate limit of its own")
    if args.circuit_breaker_threshold is not None:
        c.unsupported("aiohttp has no circuit breaker")
    version = importlib.metadata.version("aiohttp")
    bytes_mode = args.mode == "bytes"

    def session(limit: int, per_host: int = 0) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit, limit_per_host=per_host, ssl=False))

    async def fetch(s: aiohttp.ClientSession, url: str = args.url):
        async with s.get(url) as r:
            c.check_status(r.status)
            return await r.read() if bytes_mode else await r.json()

    if args.mode == "serial":
        async def serial():
            async with session(1) as s:
                return await c.serial_async(args.n, lambda: fetch(s))

        results, lat, elapsed, cpu = asyncio.run(serial())
        c.report("aiohttp", version, args, results, elapsed, cpu, lat)
        return

    if args.mode == "storm":
        storm(args, version, session)
        return

    if args.hosts:
        raised = c.raise_nofile(args.hosts + args.concurrency + 64)
        urls = c.host_urls(args.url, args.n, args.hosts)

        async def many():
            async with session(args.concurrency, LIMIT_PER_HOST) as s:
                return await c.async_pool_indexed(args.n, args.concurrency, lambda i: fetch(s, urls[i]))

        c.run_async("aiohttp", version, args, many,
                    info=lambda: "; ".join(x for x in (c.nofile_info(), raised, f"{args.hosts} hosts, "
                                                       f"limit_per_host={LIMIT_PER_HOST}") if x))
        return

    async def work():
        async with session(args.concurrency) as s:
            return await c.async_pool(args.n, args.concurrency, lambda: fetch(s))

    c.run_async("aiohttp", version, args, work)


def storm(args, version: str, session) -> None:
    retryable = (aiohttp.ClientConnectionError, asyncio.TimeoutError)

    async def work():
        slots = asyncio.Semaphore(args.concurrency)
        kinds: dict[str, int] = {}
        bad: list[str] = []
        attempts = 0

        async def one(s: aiohttp.ClientSession) -> None:
            # called holding a slot
            nonlocal attempts
            for attempt in range(args.retries + 1):
                if attempt:
                    await slots.acquire()
                attempts += 1
                try:
                    async with s.get(args.url) as r:
                        bad.append(f"status {r.status} from a port where nothing should listen")
                        return
                except retryable as e:
                    err = e
                except Exception as e:  # noqa: BLE001 - not the failure this workload is about
                    bad.append(repr(e)[:200])
                    return
                finally:
                    slots.release()
                if attempt < args.retries:
                    await asyncio.sleep(c.backoff(attempt))
            kind = type(err).__name__ + (" (retries exhausted)" if args.retries else "")
            kinds[kind] = kinds.get(kind, 0) + 1

        async with session(args.concurrency) as s:
            cpu0 = c.cpu_seconds()
            t0 = time.perf_counter()
            tasks = []
            for _ in range(args.n):
                await slots.acquire()
                tasks.append(asyncio.create_task(one(s)))
            await asyncio.gather(*tasks)
            return kinds, bad, attempts, time.perf_counter() - t0, c.cpu_seconds() - cpu0

    kinds, bad, attempts, elapsed, cpu = asyncio.run(work())
    c.report_storm("aiohttp", version, args, kinds, bad, attempts, elapsed, cpu,
                   c.nofile_info() + "; retries by hand (the engine's policy)")


if __name__ == "__main__":
    main()
