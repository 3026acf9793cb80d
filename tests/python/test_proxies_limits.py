"""Proxies (HTTP forward proxy, SOCKS5, pools, webshare files, the
environment), User-Agent lists, rate limit and concurrency."""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit

import pytest

from fastreq import FastRequests, PartialFailureError, ProxyError, fastreq as get

JSON_DOC_ID = 12345


def creds_url(url: str, user: str, pw: str) -> str:
    u = urlsplit(url)
    host = u.netloc.split("@")[-1]
    return f"{u.scheme}://{user}:{pw}@{host}"


def test_http_proxy_plain_and_connect(server):
    assert get(server.url("/x/json"), proxy=server.proxy_url)["id"] == JSON_DOC_ID
    assert get(server.tls + "/x/json", proxy=server.proxy_url, verify_ssl=False)["id"] == JSON_DOC_ID
    assert get(server.url("/x/json"), proxy=server.proxy_addr)["id"] == JSON_DOC_ID  # host:port form


def test_socks5_proxy(server):
    assert get(server.url("/x/json"), proxy=server.socks5_url)["id"] == JSON_DOC_ID
    assert get(server.tls + "/x/proto", proxy=server.socks5_url, verify_ssl=False, return_type="text") == "HTTP/2.0"


def test_proxy_credentials(auth_server):
    target = auth_server.url("/x/json")
    # Through the proxy without credentials: the proxy answers 407, a proxy error.
    with pytest.raises(PartialFailureError) as ei:
        get(target, proxy=auth_server.proxy_addr, max_retries=0)
    err = ei.value.failures[target].error
    assert isinstance(err, ProxyError) and "407" in str(err)
    assert get(target, proxy=auth_server.proxy_url)["id"] == JSON_DOC_ID  # user:pass in the URL
    host, port = auth_server.proxy_addr.split(":")
    assert get(target, proxy=f"{host}:{port}:puser:ppass")["id"] == JSON_DOC_ID  # host:port:user:pass
    # CONNECT refused (https target, no credentials): a proxy error.
    tls = auth_server.tls + "/x/json"
    with pytest.raises(PartialFailureError) as ei:
        get(tls, proxy=auth_server.proxy_addr, verify_ssl=False, max_retries=0)
    err = ei.value.failures[tls].error
    assert isinstance(err, ProxyError) and err.proxy_url == "http://" + auth_server.proxy_addr


def test_socks5_credentials(auth_server):
    target = auth_server.url("/x/json")
    assert get(target, proxy=auth_server.socks5_url)["id"] == JSON_DOC_ID
    bad = creds_url(auth_server.socks5_url, "suser", "wrong")
    with pytest.raises(PartialFailureError) as ei:
        get(target, proxy=bad, max_retries=0)
    err = ei.value.failures[target].error
    assert "authentication failed" in str(err)
    assert "wrong" not in str(err)  # password redacted


def test_socks5_auth_failure_is_a_proxy_error(auth_server):
    target = auth_server.url("/x/json")
    bad = creds_url(auth_server.socks5_url, "suser", "wrong")
    with pytest.raises(PartialFailureError) as ei:
        get(target, proxy=bad, max_retries=0)
    err = ei.value.failures[target].error
    assert isinstance(err, ProxyError) and "wrong" not in str(err.proxy_url)


def test_proxy_pool_and_explicit_proxy_wins(auth_server):
    target = auth_server.url("/x/json")
    # The pool's only proxy lacks credentials: every request gets the proxy's 407.
    res = get([target] * 3, proxies=[auth_server.proxy_addr], max_retries=0, return_none_on_failure=True)
    assert res == [None] * 3
    # An explicit proxy= wins over the pool.
    assert get(target, proxies=[auth_server.proxy_addr], proxy=auth_server.proxy_url,
               max_retries=0)["id"] == JSON_DOC_ID


def test_dead_proxy_in_pool_cools_down(auth_server):
    target = auth_server.url("/x/json")
    res = get([target] * 6, proxies=["http://127.0.0.1:1", auth_server.proxy_url], concurrency=1,
              max_retries=2, backoff_multiplier=0.01, proxy_selection="round_robin")
    assert [r["id"] for r in res] == [JSON_DOC_ID] * 6


def test_webshare_file(auth_server, tmp_path):
    host, port = auth_server.proxy_addr.split(":")
    f = tmp_path / "proxies.txt"
    f.write_text(f"# webshare export\n{host}:{port}:puser:ppass\n")
    assert get(auth_server.url("/x/json"), webshare_file=str(f))["id"] == JSON_DOC_ID
    f.write_text(f"{host}:{port}:puser:nope\n")
    with pytest.raises(PartialFailureError) as ei:
        get(auth_server.url("/x/json"), webshare_file=f, max_retries=0)
    assert "407" in str(ei.value.results[0])


def test_fastreq_proxies_environment(auth_server, monkeypatch):
    monkeypatch.setenv("FASTREQ_PROXIES", auth_server.proxy_addr)
    with pytest.raises(PartialFailureError) as ei:  # went through the pool from the environment
        get(auth_server.url("/x/json"), random_proxy=True, max_retries=0)
    assert isinstance(ei.value.results[0], ProxyError)
    assert get(auth_server.url("/x/json"))["id"] == JSON_DOC_ID  # random_proxy off: direct


def test_user_agents_environment(server, monkeypatch):
    monkeypatch.setenv("USER_AGENTS", "UA-one, UA-two")
    res = get([server.url("/x/echo")] * 64)  # both agents show up but for a 2**-63 chance
    assert {r["headers"]["user-agent"][0] for r in res} == {"UA-one", "UA-two"}


def test_rate_limit(server):
    t = time.monotonic()
    res = get([server.url("/x/json")] * 7, rate_limit=10, rate_limit_burst=2)
    elapsed = time.monotonic() - t
    assert [r["id"] for r in res] == [JSON_DOC_ID] * 7
    assert 0.45 <= elapsed < 3  # 2 at once, then 5 more at 10/s


def test_rate_limit_is_shared_by_calls_of_a_client(server):
    with FastRequests(rate_limit=20, rate_limit_burst=1) as c:
        t = time.monotonic()
        threads = [threading.Thread(target=c.request_sync, args=([server.url("/x/json")] * 5,)) for _ in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(10)
        assert time.monotonic() - t >= 0.4  # 10 requests at 20/s, whichever call they belong to


def test_concurrency_limit(server):
    t = time.monotonic()
    res = get([server.url("/x/stall?seconds=0.25")] * 4, concurrency=2, return_type="text")
    elapsed = time.monotonic() - t
    assert res == ["done\n"] * 4
    assert 0.45 <= elapsed < 2
    t = time.monotonic()
    get([server.url("/x/stall?seconds=0.25")] * 4, concurrency=4, return_type="text")
    assert time.monotonic() - t < 0.45
