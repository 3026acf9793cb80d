"""Our fastreq, async API: one `await fastreq_async(...)` for the whole
batch (mode serial: one FastRequests client, `await client.request(url)`
per request). Runs from the repository like fastreq_sync.py."""

import asyncio
import warnings

import fastreq as fr

import _common as c
from fastreq_sync import options

warnings.simplefilter("ignore")


def main() -> None:
    args = c.parse_args()
    o = options(args)
    version = getattr(fr, "__version__", "?")
    if args.mode == "serial":
        rt = o.pop("return_type")
        o["concurrency"] = 1
        backend = o.pop("backend", "auto")

        async def serial():
            async with fr.FastRequests(backend, **o) as client:
                return await c.serial_async(args.n, lambda: client.request(args.url, return_type=rt))

        results, lat, elapsed, cpu = asyncio.run(serial())
        c.report("fastreq_async", version, args, results, elapsed, cpu, lat)
        return

    c.run_async("fastreq_async", version, args, lambda: fr.fastreq_async([args.url] * args.n, **o))


if __name__ == "__main__":
    main()
