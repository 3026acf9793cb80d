"""asyncio: fastreq_async() and a shared FastRequests client.

    python async_basic.py http://127.0.0.1:8080
"""

import asyncio

from _base import base_url

from fastreq import FastRequests, fastreq_async


async def main() -> None:
    base = base_url()
    docs = await fastreq_async([f"{base}/x/json"] * 20, concurrency=10)
    print("fastreq_async:", len(docs), "documents, id", docs[0]["id"])

    # One client: its concurrency limit, rate limit, connections and cookies
    # are shared by every call, including calls running at the same time.
    async with FastRequests(concurrency=8, headers={"X-Example": "async"}) as client:
        client.set_cookies({"session": "abc"})
        a, b = await asyncio.gather(
            client.request([f"{base}/get?batch=a&i={i}" for i in range(5)]),
            client.request(f"{base}/x/cookies"),
        )
        print("batch a:", [r["args"]["i"][0] for r in a])
        print("cookies:", b["cookies"])

        # Cancelling the awaiting task cancels its requests in the engine.
        slow = asyncio.ensure_future(client.request(f"{base}/x/stall?seconds=30"))
        await asyncio.sleep(0.2)
        slow.cancel()
        try:
            await slow
        except asyncio.CancelledError:
            print("cancelled the stalled request")


if __name__ == "__main__":
    asyncio.run(main())
