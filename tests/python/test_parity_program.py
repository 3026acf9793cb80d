"""A program written for fastreq 3.x (GlobalConfig.load_from_env, a client
built from its fields, the fastreq.utils helpers) runs unchanged against
the local test server."""

from __future__ import annotations

import json

from conftest import run_python

PROGRAM = r'''
import asyncio
import json
import sys

from fastreq import FastRequests, GlobalConfig, RetryableResponse
from fastreq.backends import get_available_backends
from fastreq.utils.headers import HeaderManager
from fastreq.utils.proxies import ProxyPool, ProxyPoolConfig
from fastreq.utils.rate_limiter import AsyncRateLimiter, RateLimitConfig
from fastreq.utils.retry import DEFAULT_RETRYABLE_STATUSES, RetryConfig, RetryStrategy
from fastreq.utils.validators import normalize_urls, validate_headers, validate_proxy, validate_url

BASE, KEY = sys.argv[1], sys.argv[2]


async def main():
    config = GlobalConfig.load_from_env()
    assert config.backend in get_available_backends()
    client = FastRequests(
        backend=config.backend,
        impersonate=config.impersonate,
        concurrency=config.default_concurrency,
        max_retries=config.default_max_retries,
        rate_limit=config.rate_limit,
        rate_limit_burst=config.rate_limit_burst,
        http2=config.http2_enabled,
        random_user_agent=config.random_user_agent,
        random_proxy=config.random_proxy,
        proxies=config.proxies.split(",") if config.proxies else None,
        verbose=False,
    )
    headers = HeaderManager(random_user_agent=True, user_agents=["Bot1/1.0", "Bot2/1.0"])
    limiter = AsyncRateLimiter(RateLimitConfig(requests_per_second=100, burst=5, max_concurrency=3))
    strategy = RetryStrategy(RetryConfig(max_retries=3, backoff_multiplier=0.01))
    pool = ProxyPool(config=ProxyPoolConfig(proxies=["127.0.0.1:1"] + config.proxies.split(","), cooldown=60.0))
    out = {"backend": client.backend_name, "concurrency": client.concurrency}

    async with client:
        urls = normalize_urls([f"{BASE}/headers"] * 6)
        assert all(validate_url(u) for u in urls)

        async def fetch_headers(i):
            h = headers.get_headers({"X-Trace": str(i)})
            validate_headers(h)
            async with limiter.acquire():
                return await client.request(urls[i], headers=h)

        seen = await asyncio.gather(*[fetch_headers(i) for i in range(len(urls))])
        out["user_agents"] = sorted({r["headers"]["User-Agent"][0] for r in seen})
        out["traces"] = [r["headers"]["X-Trace"][0] for r in seen]

        async def flaky():
            r = await client.request(f"{BASE}/x/status-then-ok?key={KEY}&fail=2&status=503", return_type="response")
            if r.status_code in DEFAULT_RETRYABLE_STATUSES:
                raise RetryableResponse(f"status {r.status_code}", status_code=r.status_code, url=r.url)
            return r.json()

        out["flaky"] = await strategy.execute(flaky)

        out["via_proxy"] = []
        for _ in range(3):
            proxy = await pool.acquire()
            assert validate_proxy(proxy)
            try:
                await client.request(f"{BASE}/x/json", proxy=proxy)
                await pool.mark_success(proxy)
                out["via_proxy"].append(proxy)
            except Exception:
                await pool.mark_failed(proxy)
        out["available_proxies"] = pool.count_available()
    print(json.dumps(out))


asyncio.run(main())
'''


def test_a_3x_program_runs_unchanged(server, key):
    env = {
        "FASTREQ_BACKEND": "httpx", "FASTREQ_CONCURRENCY": "5", "FASTREQ_MAX_RETRIES": "0",
        "FASTREQ_RATE_LIMIT": "200", "FASTREQ_RATE_LIMIT_BURST": "10", "FASTREQ_HTTP2": "false",
        "FASTREQ_PROXIES": server.proxy_addr, "PARALLEL_CONCURRENCY": "99", "PARALLEL_RANDOM_PROXY": "true",
    }
    out = run_python(PROGRAM, server.http.rstrip("/"), key, env=env)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["backend"] == "httpx" and res["concurrency"] == 5  # FASTREQ_ wins over PARALLEL_
    assert set(res["user_agents"]) <= {"Bot1/1.0", "Bot2/1.0"}
    assert res["traces"] == [str(i) for i in range(6)]
    assert res["flaky"]["attempts"] == 3
    proxy = "http://" + server.proxy_addr
    assert res["via_proxy"] == [proxy, proxy]  # the dead proxy failed once and sits out
    assert res["available_proxies"] == 1
