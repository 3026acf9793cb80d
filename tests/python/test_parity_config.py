"""GlobalConfig from the environment as fastreq 3.x reads it (FASTREQ_)
and as 2.x did (PARALLEL_), the 3.x fields, and its settings feeding a
client."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from fastreq import FastRequests, GlobalConfig, fastreq
from fastreq._params import ClientParams
from fastreq.config import ENV_PREFIXES

NAMES = ["BACKEND", "IMPERSONATE", "CONCURRENCY", "MAX_RETRIES", "RATE_LIMIT", "RATE_LIMIT_BURST", "HTTP2",
         "RANDOM_USER_AGENT", "RANDOM_PROXY", "PROXIES", "PROXY_ENABLED", "FREE_PROXIES", "DEBUG"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No setting of the surrounding environment leaks into these tests."""
    for prefix in ENV_PREFIXES + ("X_",):
        for name in NAMES:
            monkeypatch.delenv(prefix + name, raising=False)


def test_3x_fields_and_defaults_are_the_clients():
    g = GlobalConfig()
    assert (g.impersonate, g.proxies, g.debug) == (None, None, False)
    assert g.backend == ClientParams.backend and g.default_concurrency == ClientParams.concurrency
    assert g.default_max_retries == ClientParams.max_retries and g.rate_limit == ClientParams.rate_limit
    assert g.http2_enabled is ClientParams.http2 and g.debug is ClientParams.debug
    # Each field is declared once with its variable and client parameter.
    env_names = {f.metadata["env"] for f in dataclasses.fields(GlobalConfig)}
    assert env_names == set(NAMES)
    clients = {f.metadata["client"] for f in dataclasses.fields(GlobalConfig)} - {None}
    assert clients <= {f.name for f in dataclasses.fields(ClientParams)}


def test_load_from_env_reads_the_3x_variables(monkeypatch):
    values = {"BACKEND": "httpx", "IMPERSONATE": "chrome131", "CONCURRENCY": "10", "MAX_RETRIES": "1",
              "RATE_LIMIT": "5.0", "RATE_LIMIT_BURST": "3", "HTTP2": "false", "RANDOM_USER_AGENT": "false",
              "RANDOM_PROXY": "true", "PROXIES": "http://p1:8080, 10.0.0.2:3128", "PROXY_ENABLED": "true",
              "DEBUG": "True"}
    for k, v in values.items():
        monkeypatch.setenv("FASTREQ_" + k, v)
    g = GlobalConfig.load_from_env()
    assert g == GlobalConfig(backend="httpx", impersonate="chrome131", default_concurrency=10,
                             default_max_retries=1, rate_limit=5.0, rate_limit_burst=3, http2_enabled=False,
                             random_user_agent=False, random_proxy=True, proxies="http://p1:8080, 10.0.0.2:3128",
                             proxy_enabled=True, debug=True)
    assert GlobalConfig.load_from_env(prefix="FASTREQ_") == g


def test_both_prefixes_fastreq_wins(monkeypatch):
    monkeypatch.setenv("PARALLEL_CONCURRENCY", "7")
    monkeypatch.setenv("PARALLEL_BACKEND", "aiohttp")
    monkeypatch.setenv("PARALLEL_RATE_LIMIT", "2")
    monkeypatch.setenv("FASTREQ_CONCURRENCY", "11")
    monkeypatch.setenv("FASTREQ_BACKEND", "")  # empty: unset, PARALLEL_ applies
    g = GlobalConfig.load_from_env()
    assert (g.default_concurrency, g.backend, g.rate_limit) == (11, "aiohttp", 2.0)
    # An explicit prefix reads that prefix only.
    assert GlobalConfig.load_from_env(prefix="PARALLEL_").default_concurrency == 7
    p = GlobalConfig.load_from_env(prefix="FASTREQ_")
    assert (p.default_concurrency, p.backend, p.rate_limit) == (11, "auto", None)
    monkeypatch.setenv("X_CONCURRENCY", "3")
    assert GlobalConfig.load_from_env(prefix="X_").default_concurrency == 3
    assert GlobalConfig.load_from_env().default_concurrency == 11


def test_to_env_writes_fastreq_by_default():
    g = GlobalConfig(backend="httpx", impersonate="chrome", rate_limit=2.5, proxies="a:1,b:2", debug=True)
    env = g.to_env()
    assert set(env) == {"FASTREQ_" + n for n in NAMES}
    assert env["FASTREQ_BACKEND"] == "httpx" and env["FASTREQ_IMPERSONATE"] == "chrome"
    assert env["FASTREQ_RATE_LIMIT"] == "2.5" and env["FASTREQ_PROXIES"] == "a:1,b:2"
    assert env["FASTREQ_DEBUG"] == "true" and env["FASTREQ_HTTP2"] == "true"
    # 3.x writes unset optional values as "".
    d = GlobalConfig().to_env()
    assert d["FASTREQ_RATE_LIMIT"] == d["FASTREQ_IMPERSONATE"] == d["FASTREQ_PROXIES"] == ""
    assert set(GlobalConfig().to_env("PARALLEL_")) == {"PARALLEL_" + n for n in NAMES}


def test_round_trips(tmp_path: Path, monkeypatch):
    g = GlobalConfig(backend="curl_cffi", impersonate="safari", default_concurrency=9, default_max_retries=0,
                     rate_limit=1.5, rate_limit_burst=2, http2_enabled=False, random_user_agent=False,
                     random_proxy=True, proxy_enabled=True, free_proxies_enabled=True,
                     proxies="127.0.0.1:1,http://u:p@h:2", debug=True)
    # to_env -> the environment -> load_from_env.
    for k, v in g.to_env().items():
        monkeypatch.setenv(k, v)
    assert GlobalConfig.load_from_env() == g
    # Unset values ("" in to_env) come back as the defaults.
    for k, v in GlobalConfig().to_env().items():
        monkeypatch.setenv(k, v)
    assert GlobalConfig.load_from_env() == GlobalConfig()

    # save_to_env -> a .env file -> the environment -> load_from_env.
    path = tmp_path / ".env"
    g.save_to_env(path)
    lines = path.read_text().splitlines()
    assert "FASTREQ_BACKEND=curl_cffi" in lines and "FASTREQ_PROXIES=127.0.0.1:1,http://u:p@h:2" in lines
    assert all(ln.startswith("FASTREQ_") and not ln.endswith("=") for ln in lines)
    GlobalConfig().save_to_env(str(path))
    assert "FASTREQ_RATE_LIMIT=" not in path.read_text()  # empty values are skipped
    g.save_to_env(path, prefix="X_")
    for k in list(os.environ):
        if k.startswith("FASTREQ_") and k[len("FASTREQ_"):] in NAMES:
            monkeypatch.delenv(k)
    for ln in path.read_text().splitlines():
        k, _, v = ln.partition("=")
        monkeypatch.setenv(k, v)
    assert GlobalConfig.load_from_env(prefix="X_") == g
    assert GlobalConfig.load_from_env() == GlobalConfig()


def test_client_kwargs_turn_proxies_into_a_list():
    kw = GlobalConfig(proxies=" 127.0.0.1:1 , http://u:p@h:2,,", impersonate=None, debug=True).client_kwargs()
    assert kw["proxies"] == ["127.0.0.1:1", "http://u:p@h:2"]
    assert kw["debug"] is True and kw["impersonate"] is None
    assert GlobalConfig().client_kwargs()["proxies"] is None
    assert GlobalConfig(proxies="").client_kwargs()["proxies"] is None
    assert "proxy_enabled" not in kw and "free_proxies_enabled" not in kw


def test_client_kwargs_feed_a_client(server, monkeypatch):
    monkeypatch.setenv("FASTREQ_CONCURRENCY", "4")
    monkeypatch.setenv("FASTREQ_MAX_RETRIES", "0")
    monkeypatch.setenv("PARALLEL_BACKEND", "requests")
    monkeypatch.setenv("FASTREQ_RANDOM_PROXY", "true")
    monkeypatch.setenv("FASTREQ_PROXIES", server.proxy_addr)
    g = GlobalConfig.load_from_env()
    with FastRequests(**g.client_kwargs()) as client:
        assert client.concurrency == 4 and client.max_retries == 0 and client.backend.name == "http1"
        assert client.random_proxy and client.proxies == [server.proxy_addr]
        out = client.request_sync([server.url("/x/json")] * 3, return_type="response")
        assert [r.status_code for r in out] == [200, 200, 200]
    # fastreq() takes the same keywords.
    assert fastreq(server.url("/x/json"), **g.client_kwargs())["id"] is not None
