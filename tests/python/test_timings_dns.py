"""NormalizedResponse.timings (where an attempt's time went) and the
client's DNS cache setting, dns_cache_ttl."""

from __future__ import annotations

import dataclasses

import pytest

import fastreq
from fastreq import FastRequests, Timings, ValidationError


def _check(t, *, fresh: bool, tls: bool = False) -> None:
    assert isinstance(t, Timings)
    assert 0 < t.ttfb <= t.total
    if fresh:
        assert not t.reused and t.connect > 0
        assert (t.tls > 0) == tls
        assert t.dns + t.connect + t.tls <= t.ttfb
    else:
        assert t.reused and t.dns == t.connect == t.tls == 0


def test_one_shot_response_has_timings(server):
    r = fastreq.fastreq(server.url("/x/json"), return_type="response")
    _check(r.timings, fresh=True)
    assert r.timings.dns == 0  # an IP address
    assert r.timings.total <= r.elapsed


def test_a_kept_connection_is_reused(server):
    with FastRequests(concurrency=1) as c:
        first = c.request_sync(server.url("/x/json"), return_type="response")
        second = c.request_sync(server.url("/x/json"), return_type="response")
    _check(first.timings, fresh=True)
    _check(second.timings, fresh=False)


@pytest.mark.parametrize("backend", ["auto", "http1"])
def test_tls_is_timed(server, backend):
    with FastRequests(backend, ca_file=server.ca_file) as c:
        r = c.request_sync(server.tls + "/x/json", return_type="response")
    _check(r.timings, fresh=True, tls=True)


def test_timings_are_a_frozen_record():
    t = Timings.from_json({"dns_ns": 1_000, "connect_ns": 2_000_000, "tls_ns": 0, "ttfb_ns": 3_000_000,
                           "total_ns": 4_000_000_000, "reused": False})
    assert t == Timings(1e-6, 2e-3, 0.0, 3e-3, 4.0, False)
    assert Timings.from_json(None) is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.dns = 1.0  # type: ignore[misc]


def test_other_return_types_are_unchanged(server):
    assert fastreq.fastreq(server.url("/x/json"))["id"] == 12345


def test_dns_cache_ttl_reaches_the_engine():
    assert "dns_cache_ttl" not in FastRequests().engine_config()
    assert FastRequests(dns_cache_ttl=0).engine_config()["dns_cache_ttl"] == -1  # 0: keep nothing
    assert FastRequests(dns_cache_ttl=5).engine_config()["dns_cache_ttl"] == 5.0
    for bad in (-1, "60", True, float("nan")):
        with pytest.raises(ValidationError) as ei:
            FastRequests(dns_cache_ttl=bad)
        assert ei.value.field_name == "dns_cache_ttl"


@pytest.mark.parametrize("ttl", [None, 0, 30])
def test_a_host_name_is_resolved_and_timed(server, ttl):
    url = server.url("/x/json").replace("127.0.0.1", "localhost")
    with FastRequests(dns_cache_ttl=ttl, concurrency=1) as c:
        rs = c.request_sync([url, url], return_type="response")
    assert [r.status_code for r in rs] == [200, 200]
    assert rs[0].timings.dns > 0 and not rs[0].timings.reused
    assert rs[1].timings.reused and rs[1].timings.dns == 0
