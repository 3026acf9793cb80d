"""fastreq 3.x's helpers under their 3.x names, each with the examples of
its 3.x reference page: fastreq.utils.validators (asking the engine),
.proxies, .retry, .rate_limiter, .headers, fastreq.backends and the
top-level RetryableResponse and TransportKey."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import re
import time
from pathlib import Path
from typing import List

import pytest

import fastreq
from fastreq import FastRequests, fastreq as fastreq_fn
from fastreq.exceptions import FastRequestsError, RetryExhaustedError

PYTHON_DIR = Path(__file__).resolve().parents[2] / "python"


def run(coro):
    return asyncio.run(coro)


# ---- importing -------------------------------------------------------------


def test_helpers_do_not_load_the_engine():
    from conftest import run_python

    code = """
import fastreq
from fastreq.utils import *
from fastreq.utils.proxies import ProxyPool, ProxyPoolConfig, ProxySelection, ProxyError
from fastreq.utils.validators import validate_url, validate_headers, validate_proxy, normalize_urls
from fastreq.utils.retry import RetryStrategy, RetryConfig
from fastreq.utils.rate_limiter import AsyncRateLimiter, RateLimitConfig, TokenBucket
from fastreq.utils.headers import HeaderManager
from fastreq.backends import get_available_backends
from fastreq.backends.base import Backend, RequestConfig, NormalizedResponse, TransportKey
from fastreq import RetryableResponse, TransportKey
pool = ProxyPool(["1.2.3.4:80"])
HeaderManager().get_headers()
TokenBucket(1, 1).available()
RetryStrategy()._calculate_delay(0)
AsyncRateLimiter(RateLimitConfig(1, 1)).available()
normalize_urls("http://a/")
get_available_backends()
print(fastreq.engine.loaded())
"""
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_wheel_lists_every_subpackage():
    if not (PYTHON_DIR / "pyproject.toml").is_file():
        pytest.skip("no python/pyproject.toml here (tests run from a copy against an installed wheel)")
    text = (PYTHON_DIR / "pyproject.toml").read_text()
    listed = set(re.findall(r'"(fastreq(?:\.\w+)*)"', re.search(r"^packages = \[(.*)\]$", text, re.M).group(1)))
    on_disk = {".".join(p.parent.relative_to(PYTHON_DIR).parts) for p in (PYTHON_DIR / "fastreq").rglob("__init__.py")}
    assert on_disk <= listed


def test_top_level_names():
    for name in ("RetryableResponse", "TransportKey"):
        assert name in fastreq.__all__ and hasattr(fastreq, name)
    e = fastreq.RetryableResponse("busy", status_code=503, retry_after=2.0, url="http://a/")
    assert isinstance(e, FastRequestsError)
    assert (e.status_code, e.retry_after, e.url, str(e)) == (503, 2.0, "http://a/", "busy")
    assert fastreq.RetryableResponse("x", 429).retry_after is None


# ---- fastreq.backends ------------------------------------------------------


def test_get_available_backends():
    from fastreq.backends import get_available_backends

    names = get_available_backends()
    assert names[:3] == ["auto", "http1", "http2"]
    assert {"niquests", "httpx", "curl_cffi", "aiohttp", "requests"} <= set(names)
    names.append("x")
    assert "x" not in get_available_backends()
    for name in get_available_backends():
        FastRequests(name).close_sync()  # every one is accepted


def test_backends_base_and_transport_key():
    from fastreq.backends import base

    assert base.Backend is fastreq.Backend and base.TransportKey is fastreq.TransportKey
    assert base.RequestConfig is fastreq.RequestConfig and base.NormalizedResponse is fastreq.NormalizedResponse
    k = fastreq.TransportKey()
    assert (k.proxy, k.verify_ssl, k.follow_redirects, k.http2) == (None, True, True, True)
    assert fastreq.TransportKey(proxy="http://p:1") == fastreq.TransportKey("http://p:1", True, True, True)
    assert len({k, fastreq.TransportKey(), fastreq.TransportKey(http2=False)}) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        k.proxy = "x"  # type: ignore[misc]


# ---- fastreq.utils.validators ----------------------------------------------


def test_validate_url_reference_examples():
    from fastreq.utils.validators import ValidationError, validate_url

    assert ValidationError is fastreq.ValidationError
    assert validate_url("https://example.com") is True
    assert validate_url("http://example.com/path") is True
    for bad in ("ftp://example.com", "not-a-url", "invalid-url"):
        with pytest.raises(ValidationError) as ei:
            validate_url(bad)
        assert ei.value.field_name == "url"
        assert "must start with http:// or https://" in str(ei.value)


@pytest.mark.parametrize("url", [
    "ftp://example.com", "not-a-url", "", "http://", "http:///path", "://x", "http://ex ample.com",
    "https://example.com:0", "https://example.com:70000", "https://[::1", "mailto:a@b.c", "//example.com/"])
def test_validate_url_refuses_what_a_request_refuses(url):
    from fastreq.utils.validators import validate_url

    with pytest.raises(fastreq.ValidationError) as ei:
        validate_url(url)
    assert ei.value.field_name == "url"
    with pytest.raises(fastreq.ValidationError):
        fastreq_fn(url)  # the engine refuses it before sending anything


@pytest.mark.parametrize("url", ["https://example.com", "http://127.0.0.1:8080/x?a=1#f", "HTTP://EXAMPLE.COM/",
                                 "https://[::1]:443/", "http://user:pw@host/"])
def test_validate_url_accepts_what_a_request_accepts(url):
    from fastreq._handles import check_requests
    from fastreq._json import dumps
    from fastreq.utils.validators import validate_url

    assert validate_url(url) is True
    check_requests(dumps([{"url": url}]))


def test_validate_url_non_str():
    from fastreq.utils.validators import validate_url

    for v in (None, 123, b"http://a/"):
        with pytest.raises(fastreq.ValidationError):
            validate_url(v)  # type: ignore[arg-type]


def test_validate_proxy_reference_examples():
    from fastreq.utils.validators import validate_proxy

    for ok in ("192.168.1.1:8080", "192.168.1.1:8080:user:pass", "192.168.1.1:8080:admin:password",
               "http://user:pass@proxy:8080", "https://user:pass@proxy:8080",
               "http://user:pass@proxy.example.com:8080"):
        assert validate_proxy(ok) is True, ok
    for bad in ("not-a-proxy", "192.168.1.1", "", None):
        assert validate_proxy(bad) is False, bad


@pytest.mark.parametrize("proxy,ok", [
    ("proxy1:8080", True), ("socks5://u:p@h:1080", True), ("socks5h://h:1080", True), ("[::1]:3128", True),
    ("http://proxy", False), ("http://h:1/path", False), ("ftp://h:21", False), ("h:0", False),
    ("h:99999", False), ("1.2.3.4:80:user", False), ("   ", False)])
def test_validate_proxy_is_what_a_client_takes(proxy, ok):
    from fastreq.utils.validators import validate_proxy

    assert validate_proxy(proxy) is ok
    c = FastRequests(proxies=[proxy], random_proxy=True)
    try:
        if ok:
            c._client()
        elif proxy.strip():
            with pytest.raises(fastreq.ValidationError):
                c._client()
    finally:
        c.close_sync()


def test_validate_headers_reference_examples():
    from fastreq.utils.validators import ValidationError, validate_headers

    assert validate_headers({"Content-Type": "application/json", "Authorization": "Bearer token"}) is True
    assert validate_headers({}) is True
    cases = [("not-a-dict", "Headers must be a dictionary"),
             ({123: "value"}, "Header key must be a string, got int"),
             ({"key": 123}, "Header value for key 'key' must be a string, got int")]
    for headers, message in cases:
        with pytest.raises(ValidationError) as ei:
            validate_headers(headers)  # type: ignore[arg-type]
        assert str(ei.value) == message and ei.value.field_name == "headers"


@pytest.mark.parametrize("headers", [{"Bad Header": "x"}, {"X-A": "a\r\nb"}, {"": "x"}])
def test_validate_headers_refuses_what_a_request_refuses(server, headers):
    from fastreq.utils.validators import validate_headers

    with pytest.raises(fastreq.ValidationError) as ei:
        validate_headers(headers)
    assert ei.value.field_name == "headers"
    with pytest.raises(fastreq.ValidationError):
        fastreq_fn(server.url("/get"), headers=headers)


def test_normalize_urls_reference_examples():
    from fastreq.utils.validators import normalize_urls

    assert normalize_urls("https://example.com") == ["https://example.com"]
    urls = ["https://a.com", "https://b.com", "https://c.com"]
    assert normalize_urls(urls) is urls
    assert normalize_urls(None) is None
    assert normalize_urls([]) == []
    assert normalize_urls(("https://a.com",)) == ["https://a.com"]


# ---- fastreq.utils.proxies -------------------------------------------------


def test_proxy_pool_reference_example():
    from fastreq.utils.proxies import ProxyPool, ProxyPoolConfig

    config = ProxyPoolConfig(proxies=["192.168.1.1:8080", "192.168.1.2:8080:user:pass"], cooldown=60.0)
    pool = ProxyPool(config=config)
    assert pool.count() == 2 and pool.count_available() == 2
    assert pool.proxies == ["http://192.168.1.1:8080", "http://user:pass@192.168.1.2:8080"]

    async def main():
        proxy = await pool.acquire()
        assert proxy == "http://192.168.1.1:8080"
        await pool.mark_failed(proxy)
        assert pool.count_available() == 1
        await pool.mark_success(proxy)
        assert pool.count_available() == 2

    run(main())


def test_proxy_pool_config_defaults():
    from fastreq.utils.proxies import ProxyPool, ProxyPoolConfig, ProxySelection

    c = ProxyPoolConfig()
    assert (c.proxies, c.selection, c.cooldown) == (None, ProxySelection.ROUND_ROBIN, 60.0)
    assert ProxySelection("random") is ProxySelection.RANDOM and ProxySelection.ROUND_ROBIN == "round_robin"
    pool = ProxyPool()
    assert pool.count() == 0 and run(pool.acquire()) is None
    assert pool.selection is ProxySelection.ROUND_ROBIN and pool.cooldown == 60.0
    # Proxies given to the pool win over the config's.
    assert ProxyPool(["a:1"], config=ProxyPoolConfig(proxies=["b:2"])).proxies == ["http://a:1"]


def test_proxy_pool_health_tracking():
    from fastreq.utils.proxies import ProxyPool, ProxyPoolConfig

    pool = ProxyPool(config=ProxyPoolConfig(proxies=["proxy1:8080", "proxy2:8080", "proxy3:8080"], cooldown=0.2))

    async def main():
        proxy = await pool.acquire()
        assert proxy == "http://proxy1:8080"
        await pool.mark_failed(proxy)
        assert await pool.acquire() == "http://proxy2:8080"  # not proxy1
        assert await pool.acquire() == "http://proxy3:8080"
        assert await pool.acquire() == "http://proxy2:8080"  # proxy1 still sits out
        assert pool.count() - pool.count_available() == 1
        await pool.mark_failed("proxy2:8080")  # the form given to the pool names its URL
        await pool.mark_failed("http://proxy3:8080")
        assert await pool.acquire() is None  # all cooling down
        await asyncio.sleep(0.25)
        assert pool.count_available() == 3
        assert await pool.acquire() == "http://proxy3:8080"  # round robin goes on from proxy2
        assert await pool.acquire() == "http://proxy1:8080"  # back after the cooldown
        await pool.mark_failed("not-in-pool:1")  # ignored
        assert pool.count_available() == 3

    run(main())


def test_proxy_pool_random_selection_skips_cooling_proxies():
    from fastreq.utils.proxies import ProxyPool, ProxyPoolConfig, ProxySelection

    pool = ProxyPool(["a:1", "b:2", "c:3"], config=ProxyPoolConfig(selection=ProxySelection.RANDOM))

    async def main():
        await pool.mark_failed("a:1")
        got = {await pool.acquire() for _ in range(200)}
        assert got == {"http://b:2", "http://c:3"}

    run(main())


def test_proxy_pool_formats_and_filtering():
    from fastreq.utils.proxies import ProxyPool, _is_valid_proxy
    from fastreq.utils.validators import validate_proxy

    assert _is_valid_proxy("192.168.1.10:8080") is True
    assert _is_valid_proxy("invalid") is False
    assert _is_valid_proxy("256.168.1.1:8080") is False  # octet > 255
    assert _is_valid_proxy("192.168.1:8080") is False  # missing octet
    pool = ProxyPool(["192.168.1.1:8080", "192.168.1.2:8080:admin:password", "http://user:pass@192.168.1.12:8080",
                      "https://h:443", "socks5://u:p@h:1080", "192.168.1.1:8080", "invalid", "h:port", ""])
    assert pool.proxies == ["http://192.168.1.1:8080", "http://admin:password@192.168.1.2:8080",
                            "http://user:pass@192.168.1.12:8080", "https://h:443", "socks5://u:p@h:1080"]
    # Every proxy the pool hands out is one a client takes.
    assert all(validate_proxy(p) for p in pool.proxies)


def test_proxy_pool_from_env_and_webshare(monkeypatch, tmp_path):
    from fastreq.utils.proxies import ProxyError, ProxyPool, ProxySelection, load_webshare_from_file

    monkeypatch.setenv("FASTREQ_PROXIES", "192.168.1.1:8080,192.168.1.2:8080,http://user:pass@proxy:8080")
    pool = ProxyPool.from_env()
    assert pool.count() == 3 and pool.proxies[2] == "http://user:pass@proxy:8080"
    monkeypatch.delenv("FASTREQ_PROXIES")
    assert ProxyPool.from_env().count() == 0
    monkeypatch.setenv("MY_PROXIES", " a:1 ,, b:2")
    assert ProxyPool.from_env("MY_PROXIES", selection=ProxySelection.RANDOM, cooldown=5).cooldown == 5

    text = "1.2.3.4:8080:user1:pw1\n\n  5.6.7.8:3128:user2:pw2  \n9.9.9.9:80\n"
    pool = ProxyPool.from_webshare_text(text, cooldown=30.0)
    assert pool.proxies == ["http://user1:pw1@1.2.3.4:8080", "http://user2:pw2@5.6.7.8:3128", "http://9.9.9.9:80"]
    assert pool.cooldown == 30.0
    with pytest.raises(ProxyError):
        ProxyPool.from_webshare_text("invalid-text")
    assert ProxyError is fastreq.ProxyError

    f = tmp_path / "webshare.txt"
    f.write_text(text)
    assert load_webshare_from_file(str(f)) == pool.proxies
    with pytest.raises(ProxyError):
        load_webshare_from_file(str(tmp_path / "missing.txt"))


# ---- fastreq.utils.retry ---------------------------------------------------


def test_retry_config_reference_defaults():
    from fastreq.utils.retry import DEFAULT_RETRYABLE_STATUSES, RetryConfig, RetryStrategy

    c = RetryConfig()
    assert (c.max_retries, c.backoff_multiplier, c.jitter, c.max_delay) == (3, 1.0, 0.1, 60.0)
    assert c.retry_on is None and c.dont_retry_on is None
    assert c.retryable_statuses == DEFAULT_RETRYABLE_STATUSES == frozenset({429, 500, 502, 503, 504})
    assert RetryStrategy().config == RetryConfig()


def test_backoff_formula_example_table():
    from fastreq.utils.retry import RetryConfig, RetryStrategy

    s = RetryStrategy(RetryConfig(max_retries=3, backoff_multiplier=1.0, jitter=0.1))
    for attempt, (lo, hi) in enumerate([(0.9, 1.1), (1.8, 2.2), (3.6, 4.4)]):
        delays = [s._calculate_delay(attempt) for _ in range(200)]
        assert all(lo <= d <= hi for d in delays), attempt
        assert max(delays) - min(delays) > (hi - lo) / 4  # jitter spreads them
    exact = RetryStrategy(RetryConfig(backoff_multiplier=0.5, jitter=0.0, max_delay=3.0))
    assert [exact._calculate_delay(n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]  # capped at max_delay


def _flaky(errors: List[BaseException], result: str = "ok"):
    calls = []

    async def func(*args, **kwargs):
        calls.append((args, kwargs))
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return result

    return func, calls


def test_execute_retries_and_passes_arguments():
    from fastreq.utils.retry import RetryConfig, RetryStrategy

    s = RetryStrategy(RetryConfig(max_retries=3, backoff_multiplier=0.001))
    func, calls = _flaky([ConnectionError("a"), ValueError("b")])
    assert run(s.execute(func, "https://example.com", timeout=5)) == "ok"  # all errors retried by default
    assert calls == [(("https://example.com",), {"timeout": 5})] * 3


def test_execute_exhausted():
    from fastreq.utils.retry import RetryConfig, RetryStrategy

    s = RetryStrategy(RetryConfig(max_retries=2, backoff_multiplier=0.001))
    last = fastreq.BackendError("down", backend_name="auto")
    last.url = "http://x/"
    func, calls = _flaky([ConnectionError("1"), ConnectionError("2"), last])
    with pytest.raises(RetryExhaustedError) as ei:
        run(s.execute(func))
    assert len(calls) == 3
    assert ei.value.attempts == 2 and ei.value.last_error is last and ei.value.url == "http://x/"


def test_retry_on_and_dont_retry_on():
    from fastreq.utils.retry import RetryConfig, RetryStrategy

    only = RetryStrategy(RetryConfig(max_retries=3, backoff_multiplier=0.001, retry_on={ConnectionError, TimeoutError}))
    func, calls = _flaky([TimeoutError(), ConnectionError()])
    assert run(only.execute(func)) == "ok" and len(calls) == 3
    func, calls = _flaky([ValueError("not listed")])
    with pytest.raises(ValueError):
        run(only.execute(func))
    assert len(calls) == 1

    never = RetryStrategy(RetryConfig(max_retries=3, backoff_multiplier=0.001, dont_retry_on={KeyError}))
    func, calls = _flaky([ConnectionError(), KeyError("k")])
    with pytest.raises(KeyError):
        run(never.execute(func))
    assert len(calls) == 2
    both = RetryStrategy(RetryConfig(retry_on={OSError}, dont_retry_on={ConnectionError}))
    assert both._should_retry(TimeoutError()) and not both._should_retry(ConnectionRefusedError())


def test_never_retried_and_statuses():
    from fastreq.utils.retry import RetryConfig, RetryStrategy

    s = RetryStrategy(RetryConfig(backoff_multiplier=0.001))
    for e in (fastreq.ValidationError("v"), fastreq.ConfigurationError("c")):
        func, calls = _flaky([e])
        with pytest.raises(type(e)):
            run(s.execute(func))
        assert len(calls) == 1
    assert s._classify(fastreq.RetryableResponse("r", 503, retry_after=1.5)) == (True, 1.5)
    assert s._classify(fastreq.RetryableResponse("r", 404)) == (False, None)
    assert s._classify(fastreq.RateLimitExceededError("r", retry_after=2.0)) == (True, 2.0)
    b = fastreq.BackendError("http_status: 404")
    b.status_code = 404
    assert s._should_retry(b) is False
    assert s._should_retry(fastreq.BackendError("timeout")) is True


def test_retry_after_wins_capped(monkeypatch):
    from fastreq.utils import retry as retry_mod

    slept: List[float] = []

    async def fake_sleep(d):
        slept.append(d)

    monkeypatch.setattr(retry_mod.asyncio, "sleep", fake_sleep)
    s = retry_mod.RetryStrategy(retry_mod.RetryConfig(max_retries=3, max_delay=10.0, jitter=0.0))
    func, _ = _flaky([fastreq.RetryableResponse("a", 429, retry_after=2.5),
                      fastreq.RetryableResponse("b", 503, retry_after=3600.0), ConnectionError()])
    assert run(s.execute(func)) == "ok"
    assert slept == [2.5, 10.0, 4.0]


# ---- fastreq.utils.rate_limiter --------------------------------------------


def test_token_bucket_reference_example():
    from fastreq.utils.rate_limiter import TokenBucket

    bucket = TokenBucket(requests_per_second=10, burst=5)
    assert bucket.available() == 5

    async def main():
        await bucket.acquire()
        assert bucket.available() == 4
        await bucket.acquire(4)
        assert bucket.available() == 0
        t = time.monotonic()
        await bucket.acquire()  # waits ~0.1 s for a token
        assert 0.05 < time.monotonic() - t < 1.0

    run(main())
    with pytest.raises(ValueError):
        run(bucket.acquire(6))
    with pytest.raises(ValueError):
        TokenBucket(0, 5)


def test_burst_then_rate():
    from fastreq.utils.rate_limiter import AsyncRateLimiter, RateLimitConfig

    limiter = AsyncRateLimiter(RateLimitConfig(requests_per_second=50, burst=5))

    async def main():
        t = time.monotonic()
        for _ in range(5):
            await limiter.acquire()  # the burst: at once
        burst = time.monotonic() - t
        for _ in range(5):
            await limiter.acquire()  # then 50 a second
        return burst, time.monotonic() - t

    burst, total = run(main())
    assert burst < 0.05 and 0.08 < total < 1.0


def test_async_rate_limiter_reference_example():
    from fastreq.utils.rate_limiter import AsyncRateLimiter, RateLimitConfig

    config = RateLimitConfig(requests_per_second=100, burst=5, max_concurrency=2)
    assert (config.requests_per_second, config.burst, config.max_concurrency) == (100, 5, 2)
    limiter = AsyncRateLimiter(config)
    active = peak = 0

    async def make_request(i):
        nonlocal active, peak
        async with limiter.acquire():
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.02)
            active -= 1
        return i

    async def main():
        return await asyncio.gather(*[make_request(i) for i in range(8)])

    assert run(main()) == list(range(8))
    assert peak == 2
    assert 0 <= limiter.available() <= 5
    assert RateLimitConfig(10, 5).max_concurrency is None


# ---- fastreq.utils.headers -------------------------------------------------


def test_header_manager_reference_examples(monkeypatch):
    from fastreq.utils.headers import HeaderManager

    monkeypatch.delenv("USER_AGENTS", raising=False)
    monkeypatch.delenv("USER_AGENTS_URL", raising=False)
    manager = HeaderManager(random_user_agent=True, user_agents=["Custom UA 1", "Custom UA 2"])
    headers = manager.get_headers({"Authorization": "Bearer token"})
    assert headers["user-agent"] in ("Custom UA 1", "Custom UA 2") and headers["Authorization"] == "Bearer token"
    assert HeaderManager(random_user_agent=False).get_headers() == {}
    assert HeaderManager(random_user_agent=True, custom_user_agent="MyBot/1.0").get_headers() == {
        "user-agent": "MyBot/1.0"}
    default = HeaderManager()
    assert default.get_user_agents() == HeaderManager.DEFAULT_USER_AGENTS and len(HeaderManager.DEFAULT_USER_AGENTS) == 8
    assert default.get_headers()["user-agent"] in HeaderManager.DEFAULT_USER_AGENTS
    agents = HeaderManager(user_agents=["UA1", "UA2", "UA3"]).get_user_agents()
    assert agents == ["UA1", "UA2", "UA3"]
    agents.append("x")  # a copy
    # Priority: custom > provided list > USER_AGENTS > defaults.
    monkeypatch.setenv("USER_AGENTS", "Env UA 1,Env UA 2")
    assert HeaderManager().get_user_agents() == ["Env UA 1", "Env UA 2"]
    m = HeaderManager(user_agents=["Custom UA"], random_user_agent=True)
    assert m.get_headers() == {"user-agent": "Custom UA"}
    m.set_custom_user_agent("Fixed UA")
    assert m.get_headers() == {"user-agent": "Fixed UA"}
    assert m.get_headers({"user-agent": "Mine"}) == {"user-agent": "Mine"}


def test_header_manager_remote_agents(server, monkeypatch):
    from fastreq.utils.headers import HeaderManager

    monkeypatch.delenv("USER_AGENTS", raising=False)
    url = server.url("/base64/" + base64.urlsafe_b64encode(b"Bot1/1.0\n\nBot2/1.0\nBot3/1.0\n").decode())
    m = HeaderManager(random_user_agent=True)
    m.update_agents_from_remote(url)
    assert m.get_user_agents() == ["Bot1/1.0", "Bot2/1.0", "Bot3/1.0"]
    with pytest.raises(ValueError):
        m.update_agents_from_remote(server.url("/status/404"))
    with pytest.raises(ValueError):
        m.update_agents_from_remote("not-a-url")
    assert m.get_user_agents() == ["Bot1/1.0", "Bot2/1.0", "Bot3/1.0"]
    monkeypatch.setenv("USER_AGENTS_URL", url)
    assert HeaderManager().get_user_agents() == ["Bot1/1.0", "Bot2/1.0", "Bot3/1.0"]
    monkeypatch.setenv("USER_AGENTS_URL", server.url("/status/500"))
    assert HeaderManager().get_user_agents() == HeaderManager.DEFAULT_USER_AGENTS  # a failed fetch is ignored
