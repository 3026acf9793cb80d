"""Every public name of API.md: presence, signatures and defaults,
data classes, ReturnType, exceptions, GlobalConfig, backends."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest

import fastreq
from fastreq import (
    Backend,
    BackendError,
    ConfigurationError,
    FailureDetails,
    FastRequests,
    FastRequestsError,
    GlobalConfig,
    NormalizedResponse,
    ParallelRequests,
    ParallelRequestsError,
    PartialFailureError,
    ProxyError,
    RateLimitExceededError,
    RequestConfig,
    RequestOptions,
    RetryExhaustedError,
    ReturnType,
    ValidationError,
    fastreq as fastreq_fn,
    fastreq_async,
)

PUBLIC = [
    "fastreq", "fastreq_async", "FastRequests", "ReturnType", "RequestOptions", "RequestConfig",
    "NormalizedResponse", "Backend", "GlobalConfig", "FastRequestsError", "BackendError", "ProxyError",
    "RetryExhaustedError", "RateLimitExceededError", "ValidationError", "ConfigurationError",
    "PartialFailureError", "FailureDetails", "__version__", "ParallelRequests", "ParallelRequestsError",
]

CLIENT_PARAMS = {
    "backend": "auto", "concurrency": 20, "max_retries": 3, "rate_limit": None, "rate_limit_burst": 5,
    "http2": True, "follow_redirects": True, "verify_ssl": True, "timeout": None, "cookies": None,
    "random_user_agent": True, "random_proxy": False, "proxies": None, "proxy_selection": "round_robin",
    "proxy_cooldown": 60.0, "webshare_file": None, "headers": None, "debug": False, "verbose": True,
    "return_none_on_failure": False,
}

REQUEST_PARAMS = {
    "method": "GET", "params": None, "data": None, "json": None, "headers": None, "timeout": None,
    "proxy": None, "return_type": ReturnType.JSON, "follow_redirects": None, "verify_ssl": None,
    "parse_func": None, "stream_callback": None, "progress": None, "progress_callback": None, "keys": None,
}


def test_public_names():
    for name in PUBLIC:
        assert hasattr(fastreq, name), name
        assert name in fastreq.__all__, name
    assert ParallelRequests is FastRequests
    assert ParallelRequestsError is FastRequestsError
    assert isinstance(fastreq.__version__, str) and fastreq.__version__


def test_import_does_not_load_the_engine():
    from conftest import run_python

    out = run_python("import fastreq, fastreq.engine as e; print(e.loaded())")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def _params(fn):
    return inspect.signature(fn).parameters


@pytest.mark.parametrize("fn", [fastreq_fn, fastreq_async])
def test_function_signatures(fn):
    ps = _params(fn)
    assert list(ps)[0] == "urls" and ps["urls"].default is inspect.Parameter.empty
    for name, default in CLIENT_PARAMS.items():
        assert name in ps, name
        assert ps[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert ps[name].default == default, name
    for name, default in REQUEST_PARAMS.items():
        if name in ("headers", "timeout", "follow_redirects", "verify_ssl"):
            continue  # these are the client parameters of the same name
        assert name in ps, name
        assert ps[name].default == default, name
    assert inspect.iscoroutinefunction(fastreq_async)
    assert not inspect.iscoroutinefunction(fastreq_fn)


def test_client_signature_and_attributes():
    ps = _params(FastRequests.__init__)
    assert list(ps)[1] == "backend"
    for name, default in CLIENT_PARAMS.items():
        assert ps[name].default == default, name
        if name != "backend":
            assert ps[name].kind is inspect.Parameter.KEYWORD_ONLY
    rq = _params(FastRequests.request)
    for name, default in REQUEST_PARAMS.items():
        assert rq[name].default == default, name
    assert inspect.iscoroutinefunction(FastRequests.request)
    assert inspect.iscoroutinefunction(FastRequests.close)
    c = FastRequests("niquests", concurrency=7, timeout=3.5, follow_redirects=False, verify_ssl=False,
                     random_user_agent=False, random_proxy=False, return_none_on_failure=True,
                     max_retries=2, rate_limit=4.0, rate_limit_burst=2, headers={"X-A": "1"}, cookies={"c": "1"})
    try:
        assert c.backend_name == "niquests"
        assert c.concurrency == 7 and c.timeout == 3.5 and c.follow_redirects is False
        assert c.verify_ssl is False and c.random_user_agent is False and c.random_proxy is False
        assert c.return_none_on_failure is True and c.max_retries == 2 and c.rate_limit == 4.0
        assert c.rate_limit_burst == 2 and c.headers == {"X-A": "1"} and c.cookies == {"c": "1"}
        assert c.debug is False and c.verbose is True and c.http2 is True
        assert c.proxy_selection == "round_robin" and c.proxy_cooldown == 60.0
        assert c.backend.name == "auto" and c.backend.supports_http2()
        assert isinstance(c.backend, Backend)
    finally:
        c.close_sync()


def test_constructing_a_client_does_not_load_the_engine():
    from conftest import run_python

    code = "import fastreq; c = fastreq.FastRequests(concurrency=3); print(fastreq.engine.loaded())"
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_return_type():
    assert issubclass(ReturnType, str)
    assert {r.name: r.value for r in ReturnType} == {
        "JSON": "json", "TEXT": "text", "CONTENT": "content", "RESPONSE": "response", "STREAM": "stream",
        "BUFFER": "buffer"}  # BUFFER is ours; the original API's five come first, in order
    assert ReturnType("json") is ReturnType.JSON
    assert ReturnType.TEXT == "text"


def _fields(cls):
    return {f.name: f.default for f in dataclasses.fields(cls)}


def test_request_config_fields():
    f = _fields(RequestConfig)
    expected = {"url": dataclasses.MISSING, "method": "GET", "params": None, "data": None, "json": None,
                "headers": None, "cookies": None, "timeout": None, "proxy": None, "http2": True,
                "stream": False, "follow_redirects": True, "verify_ssl": True}
    for k, v in expected.items():
        assert f[k] == v, k
    assert list(f)[:13] == list(expected)


def test_request_options_fields():
    f = _fields(RequestOptions)
    assert list(f) == ["url", "method", "params", "data", "json", "headers", "timeout", "proxy",
                       "return_type", "stream_callback"]
    assert f["method"] == "GET" and f["return_type"] == ReturnType.JSON


def test_normalized_response_fields():
    names = [f.name for f in dataclasses.fields(NormalizedResponse)]
    assert names[:7] == ["status_code", "headers", "content", "text", "json_data", "url", "is_json"]
    r = NormalizedResponse.from_backend(200, {"Content-Type": "application/json"}, b'{"a": 1}', "http://x/")
    assert r.headers == {"content-type": "application/json"}
    assert r.json_data == {"a": 1} and r.is_json and r.text == '{"a": 1}'


def test_failure_details():
    err = ValueError("x")
    fd = FailureDetails(url="http://a", error=err)
    assert fd.attempt == 0 and fd.url == "http://a" and fd.error is err
    assert [f.name for f in dataclasses.fields(FailureDetails)][:3] == ["url", "error", "attempt"]


def test_exception_hierarchy_and_attributes():
    for cls in (BackendError, ProxyError, RetryExhaustedError, RateLimitExceededError, ValidationError,
                ConfigurationError, PartialFailureError):
        assert issubclass(cls, FastRequestsError)
    assert issubclass(FastRequestsError, Exception)
    e = FastRequestsError("msg")
    assert e.args[0] == "msg" and str(e) == "msg"
    assert BackendError("m", backend_name="b").backend_name == "b"
    assert BackendError("m").backend_name is None
    assert ProxyError("m", proxy_url="http://p").proxy_url == "http://p"
    last = ValueError("last")
    r = RetryExhaustedError("m", attempts=4, last_error=last, url="http://u")
    assert (r.attempts, r.last_error, r.url) == (4, last, "http://u")
    assert RateLimitExceededError("m", retry_after=1.5).retry_after == 1.5
    assert ValidationError("m", field_name="url").field_name == "url"
    assert ConfigurationError("m", config_key="backend").config_key == "backend"
    fd = FailureDetails("http://a", last)
    p = PartialFailureError("m", failures={"http://a": fd}, successes=2, total=3)
    assert p.failures == {"http://a": fd} and p.successes == 2 and p.total == 3
    assert p.get_failed_urls() == ["http://a"]
    assert PartialFailureError("m").failures == {}


def test_global_config_defaults_and_env(tmp_path: Path, monkeypatch):
    g = GlobalConfig()
    assert dataclasses.asdict(g) == {
        "backend": "auto", "default_concurrency": 20, "default_max_retries": 3, "rate_limit": None,
        "rate_limit_burst": 5, "http2_enabled": True, "random_user_agent": True, "random_proxy": False,
        "proxy_enabled": False, "free_proxies_enabled": False, "impersonate": None, "proxies": None, "debug": False}
    env = g.to_env("PARALLEL_")
    assert env == {
        "PARALLEL_BACKEND": "auto", "PARALLEL_CONCURRENCY": "20", "PARALLEL_MAX_RETRIES": "3",
        "PARALLEL_RATE_LIMIT": "", "PARALLEL_RATE_LIMIT_BURST": "5", "PARALLEL_HTTP2": "true",
        "PARALLEL_RANDOM_USER_AGENT": "true", "PARALLEL_RANDOM_PROXY": "false",
        "PARALLEL_PROXY_ENABLED": "false", "PARALLEL_FREE_PROXIES": "false", "PARALLEL_IMPERSONATE": "",
        "PARALLEL_PROXIES": "", "PARALLEL_DEBUG": "false"}
    path = tmp_path / ".env"
    GlobalConfig(backend="httpx", rate_limit=2.5).save_to_env(path, prefix="X_")
    lines = path.read_text().splitlines()
    assert "X_BACKEND=httpx" in lines and "X_RATE_LIMIT=2.5" in lines
    assert all("=" in ln and not ln.endswith("=") for ln in lines)  # empty values skipped
    GlobalConfig().save_to_env(str(path))
    assert "PARALLEL_RATE_LIMIT=" not in path.read_text()

    for k, v in {"BACKEND": "requests", "CONCURRENCY": "7", "MAX_RETRIES": "1", "RATE_LIMIT": "3.5",
                 "RATE_LIMIT_BURST": "9", "HTTP2": "false", "RANDOM_USER_AGENT": "FALSE",
                 "RANDOM_PROXY": "true", "PROXY_ENABLED": "True", "FREE_PROXIES": "yes"}.items():
        monkeypatch.setenv("PARALLEL_" + k, v)
    g2 = GlobalConfig.load_from_env()
    assert dataclasses.asdict(g2) == {
        "backend": "requests", "default_concurrency": 7, "default_max_retries": 1, "rate_limit": 3.5,
        "rate_limit_burst": 9, "http2_enabled": False, "random_user_agent": False, "random_proxy": True,
        "proxy_enabled": True, "free_proxies_enabled": False, "impersonate": None, "proxies": None, "debug": False}
    monkeypatch.setenv("FR_CONCURRENCY", "3")
    assert GlobalConfig.load_from_env(prefix="FR_").default_concurrency == 3
    kw = g2.client_kwargs()
    c = FastRequests(**kw)
    assert c.concurrency == 7 and c.backend_name == "requests" and c.backend.name == "http1"
    c.close_sync()


@pytest.mark.parametrize("name,canonical", [
    ("auto", "auto"), ("niquests", "auto"), ("httpx", "auto"), ("curl_cffi", "auto"),
    ("aiohttp", "http1"), ("requests", "http1"), ("http1", "http1"), ("http2", "http2"), ("h2", "http2"),
    ("HTTPX", "auto")])
def test_backend_aliases(name, canonical):
    c = FastRequests(name)
    assert c.backend.name == canonical
    c.close_sync()


def test_unknown_backend_lists_valid_ones():
    with pytest.raises(ConfigurationError) as ei:
        FastRequests("pycurl")
    assert ei.value.config_key == "backend"
    for n in ("auto", "niquests", "aiohttp", "requests", "httpx", "curl_cffi", "http1", "http2"):
        assert n in str(ei.value)
    with pytest.raises(ConfigurationError):
        fastreq_fn("http://127.0.0.1:1/", backend="nope")


def test_backend_is_abstract():
    with pytest.raises(TypeError):
        Backend()  # type: ignore[abstract]
