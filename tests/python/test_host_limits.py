"""Per-host limits: concurrency_per_host and rate_limit_per_host against
two hosts (the test server's two plain ports), the server counting the
requests each runs at once."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid

import pytest

from fastreq import FastRequests, ValidationError, fastreq

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def busy_stats(base: str, key: str) -> dict:
    with _OPENER.open(f"{base}/x/busy-stats?key={key}", timeout=10) as r:
        return json.load(r)


def test_a_host_at_its_limit_does_not_hold_up_the_other(server):
    a, b = server.url(""), server.info["http_alt_url"]
    ka, kb = uuid.uuid4().hex, uuid.uuid4().hex
    # Host a's requests hold 0.3 s each: 10 of them, 2 at a time, take
    # 1.5 s. Host b's hold 0.01 s and come after them in the list.
    urls = [f"{a}/x/busy?key={ka}&hold=0.3"] * 10 + [f"{b}/x/busy?key={kb}&hold=0.01"] * 10
    done = {}
    with FastRequests(concurrency=16, concurrency_per_host=2, max_retries=0) as c:
        start = time.monotonic()
        for comp in c.as_completed_sync(urls):
            assert comp.ok, comp.error
            done[comp.index] = time.monotonic() - start
    assert busy_stats(a, ka)["max"] == 2
    assert busy_stats(b, kb)["max"] <= 2
    # b's requests ran beside a's, not after them.
    assert max(done[i] for i in range(10, 20)) < 0.9 * max(done[i] for i in range(10))


def test_rate_limit_per_host(server):
    a, b = server.url(""), server.info["http_alt_url"]
    ka, kb = uuid.uuid4().hex, uuid.uuid4().hex
    urls = [f"{a}/x/busy?key={ka}&hold=0"] * 6 + [f"{b}/x/busy?key={kb}&hold=0"] * 6
    start = time.monotonic()
    fastreq(urls, rate_limit_per_host=5, concurrency=16, max_retries=0)
    took = time.monotonic() - start
    # 6 per host at 5/s, burst 1: 1 s with the hosts side by side, 2.2 s
    # if one waited for the other.
    assert 0.95 <= took < 1.8, took
    assert busy_stats(a, ka)["served"] == 6 and busy_stats(b, kb)["served"] == 6


@pytest.mark.parametrize("kw", [dict(concurrency_per_host=0), dict(rate_limit_per_host=-1),
                                dict(rate_limit_per_host_burst=0)])
def test_per_host_settings_are_checked(kw):
    with pytest.raises(ValidationError) as ei:
        FastRequests(**kw)
    assert ei.value.field_name == next(iter(kw))
