"""aiohttp peer: one ClientSession, TCPConnector(limit=concurrency), worker
tasks; resp.json() / resp.read(). No HTTP/2 and no rate limit of its own."""

import asyncio
import importlib.metadata
import warnings

import aiohttp

import _common as c

warnings.simplefilter("ignore")


def main() -> None:
    args = c.parse_args()
    if args.proto != "h1":
        c.unsupported("aiohttp speaks HTTP/1.1 only")
    if args.mode == "rate":
        c.unsupported("aiohttp has no rate limit of its own")
    version = importlib.metadata.version("aiohttp")
    bytes_mode = args.mode == "bytes"

    def session(limit: int) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit, ssl=False))

    async def fetch(s: aiohttp.ClientSession):
        async with s.get(args.url) as r:
            c.check_status(r.status)
            return await r.read() if bytes_mode else await r.json()

    if args.mode == "serial":
        async def serial():
            async with session(1) as s:
                return await c.serial_async(args.n, lambda: fetch(s))

        results, lat, elapsed, cpu = asyncio.run(serial())
        c.report("aiohttp", version, args, results, elapsed, cpu, lat)
        return

    async def work():
        async with session(args.concurrency) as s:
            return await c.async_pool(args.n, args.concurrency, lambda: fetch(s))

    c.run_async("aiohttp", version, args, work)


if __name__ == "__main__":
    main()
