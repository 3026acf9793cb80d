"""Proxies and a rate limit.

    python proxies_rate_limit.py http://127.0.0.1:8080 http://127.0.0.1:3128 [socks5://127.0.0.1:1080]
"""

import time

from _base import arg, base_url

from fastreq import FastRequests, fastreq


def main() -> None:
    base = base_url()
    proxy = arg(2, "FASTREQ_EXAMPLE_PROXY")
    socks = arg(3, "FASTREQ_EXAMPLE_SOCKS5")

    if proxy:
        # An explicit proxy for one call...
        print("via proxy:", fastreq(f"{base}/x/json", proxy=proxy)["id"])
        # ...or a pool that requests rotate through (a failed proxy sits out
        # proxy_cooldown seconds; an explicit proxy= wins over the pool).
        res = fastreq([f"{base}/x/json"] * 4, proxies=["http://127.0.0.1:1", proxy], concurrency=1,
                      max_retries=2, backoff_multiplier=0.05, proxy_selection="round_robin")
        print("via pool:", [r["id"] for r in res])
    if socks:
        print("via socks5:", fastreq(f"{base}/x/json", proxy=socks)["id"])

    # 10 requests per second with a burst of 2: 12 requests take about 1 s.
    with FastRequests(rate_limit=10, rate_limit_burst=2) as client:
        started = time.monotonic()
        res = client.request_sync([f"{base}/x/json"] * 12)
        print(f"rate limited: {len(res)} requests in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
