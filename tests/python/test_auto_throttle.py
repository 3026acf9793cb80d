"""auto_throttle: a host answering 429 above its rate gets its per-host
rate lowered (and raised again on success), logged at INFO."""

from __future__ import annotations

import json
import logging
import urllib.request
import uuid

import pytest

import fastreq
from fastreq import FastRequests

RATE, N = 50, 100


def _served(server, key: str, what: str) -> int:
    with urllib.request.urlopen(server.url(f"/x/count?key=ratelimit-{what}:{key}")) as r:
        return int(json.load(r)["count"])


def _run(server, auto: bool):
    key = uuid.uuid4().hex
    url = server.url(f"/x/ratelimit?key={key}&rate={RATE}&burst=2")
    results = fastreq.fastreq([url] * N, auto_throttle=auto, concurrency=8, max_retries=0,
                              return_none_on_failure=True)
    refused = sum(r is None for r in results)
    assert refused == _served(server, key, "429")
    return refused


def test_auto_throttle_keeps_a_rate_limited_host_happy(server, caplog):
    with caplog.at_level(logging.INFO, logger="fastreq"):
        refused = _run(server, True)
    assert refused <= N // 5, f"{refused} of {N} refused with auto_throttle"
    slowed = [r for r in caplog.records if "auto_throttle: slowing down a host" in r.getMessage()]
    assert slowed and slowed[0].levelno == logging.INFO and "cause=429" in slowed[0].getMessage()

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fastreq"):
        refused = _run(server, False)
    assert refused >= N // 2, f"only {refused} of {N} refused without auto_throttle"
    assert not any("auto_throttle" in r.getMessage() for r in caplog.records)


def test_auto_throttle_reaches_the_engine():
    assert "auto_throttle" not in FastRequests().engine_config()
    assert FastRequests(auto_throttle=True).engine_config()["auto_throttle"] is True
    assert FastRequests(auto_throttle=1).auto_throttle is True


@pytest.mark.parametrize("flag, want", [([], False), (["--auto-throttle"], True)])
def test_cli_flag(flag, want):
    from fastreq import cli

    a = cli.build_parser().parse_args(["fetch", "-", *flag])
    assert cli.client_kwargs(a)["auto_throttle"] is want
