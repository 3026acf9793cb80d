"""httpx peer (async): one AsyncClient with Limits(max_connections=
concurrency), worker tasks; resp.json() / resp.content. HTTP/2 through the
h2 package (http2=True; h2c with prior knowledge when http1=False). No rate
limit of its own."""

import asyncio
import importlib.metadata
import warnings

import httpx

import _common as c

warnings.simplefilter("ignore")


def main() -> None:
    args = c.parse_args()
    if args.mode == "rate":
        c.unsupported("httpx has no rate limit of its own")
    version = importlib.metadata.version("httpx") + " (h2 " + importlib.metadata.version("h2") + ")"
    bytes_mode = args.mode == "bytes"

    def client(limit: int) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            verify=False,
            timeout=None,
            http1=args.proto != "h2c",
            http2=args.proto in ("h2c", "h2"),
            limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
        )

    async def fetch(s: httpx.AsyncClient):
        r = await s.get(args.url)
        c.check_status(r.status_code)
        return r.content if bytes_mode else r.json()

    if args.mode == "serial":
        async def serial():
            async with client(1) as s:
                return await c.serial_async(args.n, lambda: fetch(s))

        results, lat, elapsed, cpu = asyncio.run(serial())
        c.report("httpx", version, args, results, elapsed, cpu, lat)
        return

    async def work():
        async with client(args.concurrency) as s:
            return await c.async_pool(args.n, args.concurrency, lambda: fetch(s))

    c.run_async("httpx", version, args, work)


if __name__ == "__main__":
    main()
