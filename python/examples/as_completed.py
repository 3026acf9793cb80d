"""Results as they complete, synchronously and with asyncio.

    python as_completed.py http://127.0.0.1:8080
"""

import asyncio

from _base import base_url

from fastreq import FastRequests, fastreq_as_completed


def sync_part(base: str) -> None:
    urls = [f"{base}/x/stall?seconds=0.3", f"{base}/x/json", f"{base}/x/stall?seconds=0.1"]
    with fastreq_as_completed(urls, keys=["slow", "fast", "medium"], return_type="text") as it:
        for done in it:
            print("sync done:", done.key, "ok" if done.ok else done.error)


async def async_part(base: str) -> None:
    urls = [f"{base}/x/stall?seconds=0.2", f"{base}/x/json", f"{base}/x/reset"]
    async with FastRequests(max_retries=0) as client:
        async for done in client.as_completed(urls):
            state = "ok" if done.ok else f"failed ({type(done.error).__name__})"
            print("async done:", done.index, state)


def main() -> None:
    base = base_url()
    sync_part(base)
    asyncio.run(async_part(base))


if __name__ == "__main__":
    main()
