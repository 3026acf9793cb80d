"""HTTP/3: backend="http3" (every request over QUIC) and http3=True (the
auto backend moves an origin to HTTP/3 after its Alt-Svc). The engine's
own tests cover the fallback to TCP, the connection budget and the error
kinds (core/http3_test.go)."""

from __future__ import annotations

import asyncio

import pytest

from fastreq import ConfigurationError, FastRequests, ValidationError, fastreq, fastreq_async
from fastreq.backends import get_available_backends, resolve_backend


def h3_url(server) -> str:
    return server.info["h3_url"]


def test_backend_http3_reports_http3(server):
    r = fastreq(h3_url(server) + "/x/proto", backend="http3", ca_file=server.ca_file, return_type="response")
    assert r.status_code == 200
    assert r.http_version == "HTTP/3.0"
    assert r.text == "HTTP/3.0"  # what the server saw
    t = r.timings
    assert t is not None and t.connect > 0 and t.tls == 0  # the QUIC handshake is reported as connect


def test_many_requests_and_async(server):
    urls = [h3_url(server) + "/x/json"] * 200
    with FastRequests("http3", ca_file=server.ca_file, concurrency=32) as c:
        results = c.request_sync(urls, return_type="response")
        assert {r.http_version for r in results} == {"HTTP/3.0"}
        assert all(r.json()["id"] == 12345 for r in results)

    async def main():
        async with FastRequests("h3", ca_file=server.ca_file) as c:
            return await c.request(h3_url(server) + "/get", return_type="response")

    assert asyncio.run(main()).http_version == "HTTP/3.0"
    assert fastreq([h3_url(server) + "/x/json"], backend="http3", ca_file=server.ca_file)[0]["id"] == 12345
    assert asyncio.run(fastreq_async(h3_url(server) + "/x/json", backend="http3", ca_file=server.ca_file))["id"] == 12345


def test_alt_svc_upgrade(server):
    with FastRequests(http3=True, ca_file=server.ca_file) as c:
        first = c.request_sync(h3_url(server) + "/get", return_type="response")
        second = c.request_sync(h3_url(server) + "/get", return_type="response")
    assert first.http_version == "HTTP/2.0"  # over TCP: the answer advertises h3
    assert first.headers.get("alt-svc", "").startswith('h3=":')
    assert second.http_version == "HTTP/3.0"
    with FastRequests(ca_file=server.ca_file) as c:  # http3 is off by default
        for _ in range(2):
            r = c.request_sync(h3_url(server) + "/get", return_type="response")
        assert r.http_version == "HTTP/2.0"


def test_http3_refusals(server):
    with pytest.raises(ValidationError) as e:
        fastreq(server.http + "/get", backend="http3", max_retries=0)
    assert "https" in str(e.value)
    with pytest.raises(ConfigurationError) as ce:
        FastRequests("http3", proxies=[server.proxy_addr])
    assert ce.value.config_key == "backend"
    with pytest.raises(ConfigurationError) as ce:
        FastRequests("http3", impersonate="chrome")
    assert ce.value.config_key == "impersonate"
    # With http3=True (auto) both stay valid: such requests stay on TCP.
    FastRequests(http3=True, impersonate="chrome", proxies=[server.proxy_addr]).close_sync()
    assert "http3" in get_available_backends() and resolve_backend("H3") == "http3"
