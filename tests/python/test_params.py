"""The parameter lists are declared once, in fastreq._params, and every
public signature is derived from them: these tests fail when a signature,
a default or the engine's config names drift from that declaration."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect

import pytest

import fastreq
from fastreq import FastRequests, GlobalConfig
from fastreq._params import (
    CLIENT_NAMES,
    CallSettings,
    ClientParams,
    ClientSettings,
    OneShotParams,
    RequestParams,
    RequestSettings,
    split_one_shot,
)

KW = inspect.Parameter.KEYWORD_ONLY


def declared(cls):
    return {f.name: f.default for f in dataclasses.fields(cls)}


def shown(fn, skip_self=False):
    ps = list(inspect.signature(fn).parameters.values())
    return ps[1:] if skip_self else ps


@pytest.mark.parametrize("fn, cls, skip_self", [
    (FastRequests.__init__, ClientParams, True),
    (FastRequests.request, RequestParams, True),
    (FastRequests.request_sync, RequestParams, True),
    (FastRequests.as_completed, RequestParams, True),
    (FastRequests.as_completed_sync, RequestParams, True),
    (fastreq.fastreq, OneShotParams, False),
    (fastreq.fastreq_async, OneShotParams, False),
    (fastreq.fastreq_as_completed, OneShotParams, False),
    (fastreq.fastreq_as_completed_async, OneShotParams, False),
])
def test_signatures_are_the_declared_parameters(fn, cls, skip_self):
    ps = shown(fn, skip_self)
    first = ps[0]
    assert first.name == cls.POSITIONAL and first.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert {p.name: p.default for p in ps} == {
        k: (inspect.Parameter.empty if v is dataclasses.MISSING else v) for k, v in declared(cls).items()}
    assert all(p.kind is KW for p in ps[1:])
    assert all(p.annotation is not inspect.Parameter.empty for p in ps)


def test_the_groups_fit_together():
    client, call, request = declared(ClientSettings), declared(CallSettings), declared(RequestSettings)
    # fastreq() takes every client setting (backend as a keyword, default as
    # FastRequests') and the call's; the per-call overrides of request()
    # are the client settings of the same names there.
    urls = {"urls": dataclasses.MISSING}
    assert declared(OneShotParams) == {**urls, **call, **client, "backend": ClientParams.backend}
    assert declared(RequestParams) == {**urls, **request}
    assert set(request) - set(call) == {"headers", "timeout", "follow_redirects", "verify_ssl"} <= set(client)
    assert CLIENT_NAMES == set(client) | {"backend"}
    assert not set(call) & CLIENT_NAMES
    c, r = split_one_shot({name: None for name in declared(OneShotParams) if name != "urls"})
    assert set(c) == CLIENT_NAMES and set(r) == set(call)


def test_global_config_defaults_are_the_clients():
    kw = GlobalConfig().client_kwargs()
    assert kw == {k: getattr(ClientParams, k) for k in kw}


def test_attributes_are_the_client_settings():
    c = FastRequests()
    try:
        for name, default in declared(ClientSettings).items():
            assert getattr(c, name) == ({} if name == "cookies" else default), name
        assert c.backend_name == ClientParams.backend
    finally:
        c.close_sync()


def test_the_engine_takes_every_client_setting(server, tmp_path):
    """The engine decodes its config strictly (an unknown name is an
    error): a client with every setting changed from its default starts and
    runs a request."""
    ws = tmp_path / "proxies.txt"
    ws.write_text("127.0.0.1:1:u:p\n")
    values = dict(
        concurrency=3, max_connections=5, max_retries=1, rate_limit=100.0, rate_limit_burst=2, concurrency_per_host=2,
        rate_limit_per_host=100.0, rate_limit_per_host_burst=2, http2=False, follow_redirects=False,
        verify_ssl=False, timeout=5.0, cookies={"a": "b"}, random_user_agent=False, random_proxy=False,
        proxies=None, proxy_selection="random", proxy_cooldown=1.0, webshare_file=None, headers={"X-A": "1"},
        debug=False, verbose=False, return_none_on_failure=True, impersonate=None, max_redirects=3,
        max_body_size=1 << 20, backoff_multiplier=0.01, jitter=0.0, max_delay=1.0, ca_file=server.ca_file,
        connect_timeout=0, read_timeout=0, retry_non_idempotent=True, circuit_breaker_threshold=0,
        circuit_breaker_cooldown=1.0, dns_cache_ttl=0, auto_throttle=True, http3=True)
    assert set(values) == set(declared(ClientSettings))
    with FastRequests("http1", **values) as c:
        assert c.request_sync(server.url("/x/json"))["id"] == 12345
    # The proxy settings, with a pool that only has a dead proxy.
    with FastRequests(random_proxy=True, proxies=["127.0.0.1:1"], webshare_file=ws, max_retries=0,
                      return_none_on_failure=True, verbose=False) as c:
        assert c.request_sync(server.url("/x/json")) is None


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError):
        fastreq.fastreq("http://127.0.0.1:1/", bogus=1)
    with pytest.raises(TypeError):
        asyncio.run(fastreq.fastreq_async("http://127.0.0.1:1/", bogus=1))
    with pytest.raises(TypeError):
        FastRequests(bogus=1)
    with pytest.raises(TypeError):
        FastRequests("auto", 5)
    with FastRequests() as c:
        with pytest.raises(TypeError):
            c.request_sync("http://127.0.0.1:1/", bogus=1)


@pytest.mark.parametrize("urls", [
    {"http://127.0.0.1:1/a", "http://127.0.0.1:1/b"},
    frozenset({"http://127.0.0.1:1/a"}),
    {"http://127.0.0.1:1/a": 1}.keys(),
    {1: "http://127.0.0.1:1/a"}.values(),
    {"http://127.0.0.1:1/a": 1}.items(),
])
def test_unordered_urls_are_refused(urls):
    with pytest.raises(fastreq.ValidationError) as ei:
        fastreq.fastreq(urls)
    assert ei.value.field_name == "urls" and "ordered" in str(ei.value)
    assert fastreq.engine.live_handles() == 0
