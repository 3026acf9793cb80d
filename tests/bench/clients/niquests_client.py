"""niquests peer (async): one AsyncSession with pool_maxsize=concurrency,
worker tasks; resp.json() / resp.content. HTTP/2 by ALPN over TLS, h2c with
prior knowledge when HTTP/1.1 is disabled. No rate limit of its own."""

import asyncio
import importlib.metadata
import warnings

import niquests

import _common as c

warnings.simplefilter("ignore")


def main() -> None:
    args = c.parse_args()
    if args.mode == "rate":
        c.unsupported("niquests has no rate limit of its own")
    version = importlib.metadata.version("niquests") + " (urllib3-future " + importlib.metadata.version("urllib3-future") + ")"
    bytes_mode = args.mode == "bytes"

    def session(limit: int) -> niquests.AsyncSession:
        return niquests.AsyncSession(
            pool_connections=1,
            pool_maxsize=limit,
            disable_http1=args.proto == "h2c",
            disable_http2=args.proto == "h1",
            disable_http3=True,
        )

    async def fetch(s: niquests.AsyncSession):
        # verify=False must go with each request: the session argument is
        # not applied to the connection pool in this version.
        r = await s.get(args.url, verify=False)
        c.check_status(r.status_code)
        return r.content if bytes_mode else r.json()

    if args.mode == "serial":
        async def serial():
            async with session(1) as s:
                return await c.serial_async(args.n, lambda: fetch(s))

        results, lat, elapsed, cpu = asyncio.run(serial())
        c.report("niquests", version, args, results, elapsed, cpu, lat)
        return

    async def work():
        async with session(args.concurrency) as s:
            return await c.async_pool(args.n, args.concurrency, lambda: fetch(s))

    c.run_async("niquests", version, args, work)


if __name__ == "__main__":
    main()
