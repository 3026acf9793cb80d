"""impersonate=: https requests pass for a browser (its TLS ClientHello,
HTTP/2 frames and request headers, set in the engine); the engine's own
tests check the ClientHello and the HTTP/2 frames against the browsers'
(core/impersonate_test.go)."""

from __future__ import annotations

import pytest

from fastreq import ConfigurationError, FastRequests, fastreq
from fastreq.backends import IMPERSONATE_TARGETS


def test_impersonate_request_over_h2_and_h1(server):
    r = fastreq(server.tls + "/headers", impersonate="chrome131", ca_file=server.ca_file, return_type="response")
    assert r.status_code == 200
    assert r.http_version == "HTTP/2.0"
    assert "Chrome/131.0.0.0" in r.json()["headers"]["User-Agent"][0]
    r = fastreq(server.tls_h1 + "/headers", impersonate="firefox135", ca_file=server.ca_file, return_type="response")
    assert r.http_version == "HTTP/1.1"
    assert "Firefox/135.0" in r.json()["headers"]["User-Agent"][0]


def test_impersonate_sends_the_browsers_headers_where_the_caller_sets_none(server):
    got = fastreq(server.tls + "/headers", impersonate="chrome136", ca_file=server.ca_file,
                  headers={"Accept": "application/json"})["headers"]
    assert got["Sec-Ch-Ua"] == ['"Chromium";v="136", "Google Chrome";v="136", "Not.A/Brand";v="99"']
    assert got["Sec-Fetch-Mode"] == ["navigate"]
    assert got["Accept"] == ["application/json"]
    got = fastreq(server.tls + "/headers", impersonate="firefox133", ca_file=server.ca_file)["headers"]
    assert got["Accept-Language"] == ["en-US,en;q=0.5"]
    assert "Sec-Ch-Ua" not in got


def test_impersonate_keeps_the_callers_user_agent_and_proxies(server):
    with FastRequests(impersonate="random", headers={"User-Agent": "mine"}, verify_ssl=False) as c:
        assert c.random_user_agent is False
        got = c.request_sync(server.tls + "/headers", proxy=server.proxy_url)
        assert got["headers"]["User-Agent"] == ["mine"]
        assert c.request_sync(server.tls + "/x/proto", proxy=server.socks5_url, return_type="text") == "HTTP/2.0"


def test_unknown_target_is_a_configuration_error():
    with pytest.raises(ConfigurationError) as ei:
        FastRequests(impersonate="chrome99")
    assert ei.value.config_key == "impersonate"
    for name in IMPERSONATE_TARGETS + ["random"]:
        assert name in str(ei.value)
    assert FastRequests(impersonate="Chrome").impersonate == "chrome136"


def test_environment_default(server, monkeypatch):
    monkeypatch.setenv("FASTREQ_IMPERSONATE", "safari184")
    with FastRequests(ca_file=server.ca_file) as c:
        assert c.impersonate == "safari184"
        assert "Version/18.4" in c.request_sync(server.tls + "/headers")["headers"]["User-Agent"][0]
    assert FastRequests(impersonate="firefox133").impersonate == "firefox133"  # the argument wins
    monkeypatch.setenv("FASTREQ_IMPERSONATE", "netscape4")
    with pytest.raises(ConfigurationError):
        FastRequests()


def test_command_line_flag(server):
    from fastreq import cli

    a = cli.build_parser().parse_args(["fetch", "--impersonate", "safari180", "-"])
    assert cli.client_kwargs(a)["impersonate"] == "safari180"
