"""Request behaviour against the real test server: result shapes, return
types, bodies, headers, redirects, compression, retries, failures."""

from __future__ import annotations

import time

import pytest

from fastreq import (
    BackendError,
    ConfigurationError,
    FastRequests,
    NormalizedResponse,
    PartialFailureError,
    ProxyError,
    RateLimitExceededError,
    RetryExhaustedError,
    ReturnType,
    ValidationError,
    fastreq,
)

JSON_DOC_ID = 12345
FAST = dict(backoff_multiplier=0.01, max_delay=0.05)  # quick retries


# ---- result shapes ------------------------------------------------------


def test_single_url_gives_one_result(server):
    r = fastreq(server.url("/x/json"))
    assert isinstance(r, dict) and r["id"] == JSON_DOC_ID and r["tags"] == ["http", "client", "bench"]


def test_list_keeps_order(server):
    urls = [server.url(f"/x/echo?i={i}") for i in range(60)]
    res = fastreq(urls, concurrency=16)
    assert [r["query"]["i"] for r in res] == [[str(i)] for i in range(60)]


def test_keys_give_a_dict_in_order(server):
    keys = ["c", "a", "b"]
    res = fastreq([server.url(f"/x/echo?k={k}") for k in keys], keys=keys)
    assert list(res) == keys
    assert {k: v["query"]["k"][0] for k, v in res.items()} == {"c": "c", "a": "a", "b": "b"}


def test_keys_length_mismatch(server):
    with pytest.raises(ConfigurationError) as ei:
        fastreq([server.url("/x/json")] * 2, keys=["only-one"])
    assert ei.value.config_key == "keys"


def test_empty_list(server):
    assert fastreq([]) == []
    assert fastreq([], keys=[]) == {}


def test_tuple_and_generator_of_urls(server):
    assert len(fastreq((server.url("/x/json"), server.url("/x/json")))) == 2
    assert len(fastreq(server.url("/x/json") for _ in range(3))) == 3


# ---- return types -----------------------------------------------------------


def test_return_type_json_text_content(server):
    u = server.url("/x/json")
    raw = fastreq(u, return_type="content")
    assert isinstance(raw, bytes) and raw.startswith(b'{"id":12345')
    text = fastreq(u, return_type=ReturnType.TEXT)
    assert isinstance(text, str) and text == raw.decode()
    assert fastreq(u, return_type="json")["id"] == JSON_DOC_ID


def test_json_of_non_json_body_is_none(server):
    assert fastreq(server.url("/x/bytes/16")) is None
    assert fastreq(server.url("/robots.txt")) is None


def test_text_replaces_invalid_utf8(server):
    text = fastreq(server.url("/x/bytes/300"), return_type="text")
    assert isinstance(text, str) and "\ufffd" in text and len(text) <= 300


def test_return_type_response(server):
    r = fastreq(server.url("/x/redirect-chain?n=2"), return_type="response")
    assert isinstance(r, NormalizedResponse)
    assert r.status_code == 200
    assert r.url.endswith("/x/redirect-chain?n=0")  # final URL after redirects
    assert r.headers["content-type"] == "application/json"
    assert all(k == k.lower() for k in r.headers)
    assert r.is_json and r.json_data["redirected"] is True
    assert r.content and r.text == r.content.decode()
    assert r.http_version.startswith("HTTP/")
    assert r.attempts == 1 and r.elapsed > 0


def test_unknown_return_type(server):
    with pytest.raises(ValidationError) as ei:
        fastreq(server.url("/x/json"), return_type="xml")
    assert ei.value.field_name == "return_type"


def test_stream_return_type_calls_back_with_chunks(server):
    chunks = []
    res = fastreq(server.url("/x/slow-chunks?n=4&size=100&interval_ms=20"), return_type="stream",
                  stream_callback=chunks.append)
    assert res is None
    assert b"".join(chunks) == bytes(range(100)) * 4
    assert len(chunks) >= 2  # delivered as they arrived, not at the end


def test_parse_func(server):
    res = fastreq([server.url("/x/json")] * 3, parse_func=lambda d: d["name"])
    assert res == ["fastreq"] * 3


def test_http_error_status_is_a_result_not_a_failure(server):
    r = fastreq(server.url("/status/404"), return_type="response")
    assert r.status_code == 404
    assert fastreq(server.url("/status/418"), return_type="text") is not None
    assert fastreq(server.url("/status/404")) is None  # not JSON


# ---- request bodies and parameters --------------------------------------------


def test_params_keep_order_and_lists(server):
    r = fastreq(server.url("/x/echo?pre=0"), params={"b": 2, "a": [1, "x"], "t": True, "none": None})
    assert r["url"] == "/x/echo?pre=0&b=2&a=1&a=x&t=True"


def test_params_as_pairs(server):
    r = fastreq(server.url("/x/echo"), params=[("z", "1"), ("a", "2"), ("z", "3")])
    assert r["url"] == "/x/echo?z=1&a=2&z=3"


def test_json_body(server):
    r = fastreq(server.url("/x/echo"), method="POST", json={"a": [1, 2], "b": None, "u": "é"})
    assert r["method"] == "POST"
    assert r["json"] == {"a": [1, 2], "b": None, "u": "é"}
    assert r["headers"]["content-type"] == ["application/json"]


def test_form_body(server):
    r = fastreq(server.url("/x/echo"), method="PUT", data={"x": "1", "y": ["2", "3"]})
    assert r["method"] == "PUT"
    assert r["form"] == {"x": ["1"], "y": ["2", "3"]}
    assert r["body"] == "x=1&y=2&y=3"


def test_text_and_bytes_bodies(server):
    r = fastreq(server.url("/x/echo"), method="POST", data="hello text")
    assert r["body"] == "hello text"
    payload = bytes(range(256))
    r = fastreq(server.url("/anything"), method="POST", data=payload, return_type="response")
    assert r.status_code == 200
    r = fastreq(server.url("/x/echo"), method="POST", data=b"\x00\x01binary", return_type="json")
    assert r["body_size"] == 8 and r["body"].startswith("\x00\x01")


def test_method_is_case_insensitive(server):
    assert fastreq(server.url("/x/echo"), method="delete")["method"] == "DELETE"
    r = fastreq(server.url("/get"), method="head", return_type="response")
    assert r.status_code == 200 and r.content == b""


def test_head_with_content_length(server):
    r = fastreq(server.url("/x/json"), method="HEAD", return_type="response", max_retries=0)
    assert r.status_code == 200 and r.content == b""


def test_headers_client_and_call(server):
    with FastRequests(headers={"X-Client": "c", "X-Both": "client"}) as c:
        r = c.request_sync(server.url("/x/echo"), headers={"X-Call": "k", "X-Both": "call"})
    h = r["headers"]
    assert h["x-client"] == ["c"] and h["x-call"] == ["k"] and h["x-both"] == ["call"]


# ---- user agents --------------------------------------------------------------


def test_random_user_agent_rotates_browser_strings(server):
    res = fastreq([server.url("/x/echo")] * 30, concurrency=5)
    agents = {r["headers"]["user-agent"][0] for r in res}
    assert len(agents) > 1 and all(a.startswith("Mozilla/5.0") for a in agents)


def test_user_agent_header_wins_and_rotation_off(server):
    r = fastreq(server.url("/x/echo"), headers={"User-Agent": "mine/1"})
    assert r["headers"]["user-agent"] == ["mine/1"]
    r = fastreq(server.url("/x/echo"), random_user_agent=False)
    assert r["headers"]["user-agent"][0].startswith("fastreq/")


# ---- redirects, compression, multi headers --------------------------------------


def test_follow_redirects_client_and_per_call(server):
    u = server.url("/x/redirect-chain?n=1")
    assert fastreq(u)["redirected"] is True
    r = fastreq(u, follow_redirects=False, return_type="response")
    assert r.status_code == 302 and r.headers["location"].endswith("n=0")
    with FastRequests(follow_redirects=False) as c:
        assert c.request_sync(u, return_type="response").status_code == 302
        assert c.request_sync(u, follow_redirects=True)["redirected"] is True
        c.follow_redirects = True  # attributes are read at call time, as in the original
        assert c.request_sync(u)["redirected"] is True


def test_redirect_loop_fails(server):
    with pytest.raises(PartialFailureError) as ei:
        fastreq(server.url("/x/redirect-loop"), max_retries=0)
    err = ei.value.failures[server.url("/x/redirect-loop")].error
    assert isinstance(err, BackendError) and err.kind == "too_many_redirects"
    assert ei.value.failures[server.url("/x/redirect-loop")].attempt == 0


@pytest.mark.parametrize("path", ["/x/gzip", "/x/deflate", "/x/br", "/x/zstd"])
def test_compressed_bodies_are_decoded(server, path):
    r = fastreq(server.url(path))
    assert r["compressed"] is True and r["message"].startswith("fastreq ")


def test_repeated_headers(server):
    r = fastreq(server.url("/x/headers-multi"), return_type="response")
    assert r.headers["x-multi"] == "one, two"
    assert r.headers["set-cookie"].split("\n") == ["multi_a=1; Path=/", "multi_b=2; Path=/"]


# ---- protocols and TLS ----------------------------------------------------------------


def test_tls_http2_and_http1(server):
    assert fastreq(server.tls + "/x/proto", verify_ssl=False, return_type="text") == "HTTP/2.0"
    assert fastreq(server.tls + "/x/proto", verify_ssl=False, http2=False, return_type="text") == "HTTP/1.1"
    assert fastreq(server.tls_h1 + "/x/proto", verify_ssl=False, return_type="text") == "HTTP/1.1"
    assert fastreq(server.tls + "/x/proto", verify_ssl=False, backend="requests", return_type="text") == "HTTP/1.1"


def test_h2c_with_http2_backend(server):
    assert fastreq(server.url("/x/proto"), backend="http2", return_type="text") == "HTTP/2.0"
    assert fastreq(server.url("/x/proto"), return_type="text") == "HTTP/1.1"


def test_verify_ssl(server):
    """Certificate checks: the test CA is unknown to the process, so verification
    fails (kind "tls", not retried) unless verify_ssl=False, per client or per call;
    with SSL_CERT_FILE naming the CA (read by Go at start) it succeeds."""
    u = server.tls + "/x/json"
    with pytest.raises(PartialFailureError) as ei:
        fastreq(u, max_retries=2)
    err = ei.value.failures[u].error
    assert isinstance(err, BackendError) and err.kind == "tls"
    assert ei.value.failures[u].attempt == 0  # certificate errors are never retried
    assert fastreq(u, verify_ssl=False)["id"] == JSON_DOC_ID
    with FastRequests() as c:
        assert c.request_sync(u, verify_ssl=False)["id"] == JSON_DOC_ID
    assert fastreq(u, ca_file=server.ca_file)["id"] == JSON_DOC_ID  # trust the private CA
    with pytest.raises(ConfigurationError) as ei2:
        FastRequests(ca_file="/nonexistent/ca.pem")
    assert ei2.value.config_key == "ca_file"
    from conftest import env_with_ca, run_python

    out = run_python("import sys, fastreq; print(fastreq.fastreq(sys.argv[1])['id'])", u, env=env_with_ca(server))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(JSON_DOC_ID)


# ---- timeouts and failures ------------------------------------------------------------


def test_timeout_fails_after_retries(server):
    u = server.url("/x/stall?seconds=5")
    t = time.monotonic()
    with pytest.raises(PartialFailureError) as ei:
        fastreq(u, timeout=0.2, max_retries=1, **FAST)
    assert time.monotonic() - t < 2
    err = ei.value.failures[u].error
    assert isinstance(err, RetryExhaustedError) and err.attempts == 2 and err.url == u
    assert isinstance(err.last_error, BackendError) and err.last_error.kind == "timeout"


def test_per_call_timeout_overrides_client(server):
    with FastRequests(timeout=10, max_retries=0) as c:
        with pytest.raises(PartialFailureError):
            c.request_sync(server.url("/x/stall?seconds=3"), timeout=0.2)
        assert c.request_sync(server.url("/x/stall?seconds=0.05"), return_type="text") == "done\n"


def test_connection_refused(server):
    u = "http://127.0.0.1:1/"
    with pytest.raises(PartialFailureError) as ei:
        fastreq(u, max_retries=0)
    e = ei.value
    assert e.total == 1 and e.successes == 0 and e.get_failed_urls() == [u]
    err = e.failures[u].error  # no retries: the error itself
    assert isinstance(err, BackendError) and err.kind == "connect" and err.backend_name == "auto"
    assert err.url == u and e.failures[u].attempt == 0
    with pytest.raises(PartialFailureError) as ei:
        fastreq(u, max_retries=1, **FAST)
    err = ei.value.failures[u].error  # retries ran out
    assert isinstance(err, RetryExhaustedError) and err.attempts == 2 and err.url == u
    assert isinstance(err.last_error, BackendError) and err.last_error.kind == "connect"
    assert ei.value.failures[u].attempt == 1


def test_partial_failure_after_all_finished(server):
    urls = [server.url("/x/json"), server.url("/x/reset"), server.url("/x/truncate"), server.url("/x/echo?i=3")]
    with pytest.raises(PartialFailureError) as ei:
        fastreq(urls, max_retries=1, **FAST)
    e = ei.value
    assert str(e) == "Partial failure: 2 of 4 requests failed"
    assert e.total == 4 and e.successes == 2
    assert sorted(e.get_failed_urls()) == sorted(urls[1:3])
    assert e.results[0]["id"] == JSON_DOC_ID and e.results[3]["query"]["i"] == ["3"]
    assert isinstance(e.results[1], RetryExhaustedError) and e.results[1].last_error.kind == "transport"
    assert sorted(e.failures_by_index) == [1, 2]
    assert e.failures[urls[1]].attempt == 1 and e.failures[urls[1]].index == 1


def test_return_none_on_failure(server):
    urls = [server.url("/x/json"), server.url("/x/reset")]
    res = fastreq(urls, return_none_on_failure=True, max_retries=0)
    assert res[0]["id"] == JSON_DOC_ID and res[1] is None
    assert fastreq(server.url("/x/reset"), return_none_on_failure=True, max_retries=0) is None
    assert fastreq(urls, keys=["a", "b"], return_none_on_failure=True, max_retries=0)["b"] is None


def test_retry_then_success_with_retry_after(server, key):
    u = server.url(f"/x/status-then-ok?key={key}&fail=2&status=503&retry_after=0")
    r = fastreq(u, max_retries=3, **FAST)
    assert r == {"key": key, "attempts": 3}


def test_retry_after_is_honoured(server, key):
    u = server.url(f"/x/status-then-ok?key={key}&fail=1&status=503&retry_after=1")
    t = time.monotonic()
    r = fastreq(u, max_retries=1, **dict(FAST, max_delay=5))
    assert r["attempts"] == 2 and time.monotonic() - t >= 0.9


def test_flaky_reset_is_retried(server, key):
    assert fastreq(server.url(f"/x/flaky-reset?key={key}&fail=1"), max_retries=2, **FAST)["attempts"] == 2


def test_429_exhausted_maps_to_rate_limit_error(server, key):
    u = server.url(f"/x/status-then-ok?key={key}&fail=9&status=429&retry_after=0")
    with pytest.raises(PartialFailureError) as ei:
        fastreq(u, max_retries=1, **FAST)
    err = ei.value.failures[u].error
    assert isinstance(err, RetryExhaustedError) and err.attempts == 2 and err.status_code == 429
    assert isinstance(err.last_error, RateLimitExceededError) and err.last_error.retry_after is None
    u2 = server.url(f"/x/status-then-ok?key={key}x&fail=9&status=429&retry_after=0.01")
    with pytest.raises(PartialFailureError) as ei:
        fastreq(u2, max_retries=0)
    err = ei.value.failures[u2].error  # no retries: the 429 itself
    assert isinstance(err, RateLimitExceededError) and err.retry_after == pytest.approx(0.01)
    assert err.status_code == 429 and err.kind == "http_status"


def test_500_exhausted_maps_to_backend_error_with_status(server, key):
    u = server.url(f"/x/status-then-ok?key={key}&fail=9&status=500")
    with pytest.raises(PartialFailureError) as ei:
        fastreq(u, max_retries=1, **FAST)
    last = ei.value.failures[u].error.last_error
    assert isinstance(last, BackendError) and last.kind == "http_status" and last.status_code == 500


def test_body_too_large(server):
    with FastRequests(max_body_size=1000, max_retries=0) as c:
        with pytest.raises(PartialFailureError) as ei:
            c.request_sync(server.url("/x/bytes/5000"))
        err = ei.value.failures[server.url("/x/bytes/5000")].error
        assert err.kind == "body_too_large"
        assert len(c.request_sync(server.url("/x/bytes/1000"), return_type="content")) == 1000


def test_dead_proxy_is_a_proxy_error(server):
    u = server.url("/x/json")
    with pytest.raises(PartialFailureError) as ei:
        fastreq(u, proxy="http://127.0.0.1:1", max_retries=0)
    err = ei.value.failures[u].error
    assert isinstance(err, ProxyError) and err.proxy_url == "http://127.0.0.1:1" and err.kind == "proxy"
    with pytest.raises(PartialFailureError) as ei:
        fastreq(u, proxy="http://127.0.0.1:1", max_retries=1, **FAST)
    assert isinstance(ei.value.failures[u].error.last_error, ProxyError)


# ---- validation ------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["ftp://example.com/", "example.com", "", "http//x", 42, None, b"http://x/"])
def test_invalid_url(server, bad):
    with pytest.raises(ValidationError) as ei:
        fastreq([server.url("/x/json"), bad])
    assert ei.value.field_name == "url"


def test_invalid_url_detected_by_engine(server):
    with pytest.raises(ValidationError) as ei:
        fastreq("http://")
    assert ei.value.field_name == "url"
    with pytest.raises(ValidationError):
        fastreq("http://host:99999/")


@pytest.mark.parametrize("headers", [{"X": 1}, {1: "x"}, {"X": None}, ["X", "1"], {"X": b"1"}])
def test_headers_must_be_str_to_str(server, headers):
    with pytest.raises(ValidationError) as ei:
        fastreq(server.url("/x/json"), headers=headers)
    assert ei.value.field_name == "headers"
    with pytest.raises(ValidationError):
        FastRequests(headers=headers)


def test_invalid_header_characters_and_method(server):
    with pytest.raises(ValidationError) as ei:
        fastreq(server.url("/x/json"), headers={"X-Bad": "a\r\nInjected: 1"})
    assert ei.value.field_name == "headers"
    with pytest.raises(ValidationError) as ei:
        fastreq(server.url("/x/json"), method="GE T")
    assert ei.value.field_name == "method"


def test_data_and_json_together(server):
    with pytest.raises(ValidationError):
        fastreq(server.url("/x/echo"), method="POST", data="a", json={"b": 1})


def test_unserializable_json(server):
    with pytest.raises(ValidationError) as ei:
        fastreq(server.url("/x/echo"), method="POST", json={"a": object()})
    assert ei.value.field_name == "json"


def test_client_setting_validation():
    with pytest.raises(ValidationError) as ei:
        FastRequests(concurrency=0)
    assert ei.value.field_name == "concurrency"
    with pytest.raises(ValidationError):
        FastRequests(max_retries=-1)
    with pytest.raises(ValidationError):
        FastRequests(timeout=-1)
    with pytest.raises(ConfigurationError) as ei2:
        FastRequests(proxy_selection="fastest")
    assert ei2.value.config_key == "proxy_selection"
    with pytest.raises(ConfigurationError) as ei2:
        FastRequests(webshare_file="/nonexistent/proxies.txt")
    assert ei2.value.config_key == "webshare_file"


def test_engine_rejects_bad_proxy_list_with_configuration_or_validation_error(server):
    with pytest.raises((ConfigurationError, ValidationError)):
        fastreq(server.url("/x/json"), proxies=["ftp://nope:1"])
