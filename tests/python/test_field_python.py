"""Field safety of the Python layer, against the real test server: a
password in a URL is never shown, one body never takes a batch down, NaN
never goes out as JSON, declared charsets are honoured, a Host header
reaches the engine, the connection and circuit-breaker options reach the
engine, and Ctrl-C on a million queued requests is prompt and leaks
nothing."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import quote

import pytest

import fastreq
from fastreq import (
    FastRequests,
    NormalizedResponse,
    PartialFailureError,
    ValidationError,
    fastreq_as_completed,
    fastreq_async,
)
from fastreq import _json
from conftest import PYTHON_DIR, run_python

JSON_DOC_ID = 12345
PW = "s3cret-pw"


@pytest.fixture(params=["default", "stdlib"])
def json_mode(request, monkeypatch):
    """Each test twice: with the JSON module fastreq picks (orjson when it
    is installed and safe) and with the standard library's."""
    if request.param == "stdlib":
        monkeypatch.setattr(_json, "loads", _json._std_loads)
        monkeypatch.setattr(_json, "dumps", _json._std_dumps)
    yield request.param


def base64_url(server, body: bytes, content_type: str = "") -> str:
    """A go-httpbin URL whose response body is exactly body."""
    u = server.url("/base64/" + base64.urlsafe_b64encode(body).decode())
    if content_type:
        u += "?content-type=" + quote(content_type, safe="")
    return u


_HELD: list = []


def closed_port() -> int:
    """A port that refuses connections: bound and never listened on, and
    kept bound for the session so that no other process takes it."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _HELD.append(s)
    return s.getsockname()[1]


# ---- 1. a password in a URL is never shown ------------------------------


def with_password(server, path: str) -> str:
    return server.http.replace("://", f"://user:{PW}@") + path


def test_password_in_url_is_redacted_wherever_shown(server, caplog):
    caplog.set_level(logging.DEBUG, logger="fastreq")
    ok = with_password(server, f"/basic-auth/user/{PW}")
    bad = with_password(server, "/status/500")
    refused = f"http://user:{PW}@127.0.0.1:{closed_port()}/x"
    shown_bad = server.http.replace("://", "://user:xxxxx@") + "/status/500"
    with pytest.raises(PartialFailureError) as ei:
        fastreq.fastreq([ok, bad, refused], max_retries=0)
    e = ei.value
    # The request itself used the credentials.
    assert e.results[0] == {"authenticated": True, "authorized": True, "user": "user"}
    assert e.get_failed_urls() == list(e.failures) == [shown_bad, refused.replace(PW, "xxxxx")]
    for fd in e.failures.values():
        assert fd.url == fd.error.url
    with pytest.raises(PartialFailureError) as one:  # the single-request path
        fastreq.fastreq(bad, max_retries=0)
    assert one.value.get_failed_urls() == [shown_bad]
    with pytest.raises(PartialFailureError) as aone:  # and its asyncio twin
        asyncio.run(fastreq_async(bad, max_retries=0))
    assert aone.value.get_failed_urls() == [shown_bad]

    with pytest.raises(ValidationError) as ve:
        fastreq.fastreq(f"ftp://user:{PW}@example.org/x")
    with pytest.raises(ValidationError) as ve_spec:
        fastreq.fastreq([{"url": f"user:{PW}@example.org/x"}])

    shown = [caplog.text, repr(e.failures), repr(e.failures_by_index), str(e), repr(e.results),
             repr(one.value.failures), repr(aone.value.failures), str(ve.value), str(ve_spec.value)]
    assert "request 1 failed: " + shown_bad in caplog.text
    for text in shown:
        assert PW not in text, text


# ---- 2. one body never takes the batch down --------------------------------


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_deeply_nested_body_gives_none_not_an_exception(server, json_mode):
    deep = base64_url(server, nested(100_000))
    ok = server.url("/x/json")
    for none_on_failure in (False, True):
        res = fastreq.fastreq([deep, ok], return_none_on_failure=none_on_failure)
        assert res[0] is None and res[1]["id"] == JSON_DOC_ID
    assert fastreq.fastreq(deep) is None  # the single-request paths
    assert asyncio.run(fastreq_async(deep)) is None
    with fastreq_as_completed([deep, ok]) as it:
        assert sorted((c.index, c.result is None, c.error) for c in it) == [(0, True, None), (1, False, None)]
    r, r_ok = fastreq.fastreq([deep, ok], return_type="response")
    assert (r.status_code, r.json_data, r.is_json, r.content) == (200, None, False, nested(100_000))
    assert r_ok.json_data["id"] == JSON_DOC_ID and r_ok.is_json
    built = NormalizedResponse.from_backend(200, {}, nested(100_000), "http://h/")
    assert built.json_data is None and not built.is_json


def test_deeply_nested_body_does_not_crash_the_process(server):
    """A body deep enough to overflow the C stack of a parser without a
    depth limit (orjson before 3.9.15) is not handed to one."""
    code = ("import sys, fastreq\n"
            "r = fastreq.fastreq(sys.stdin.read().split())\n"
            "print(r[0] is None, r[1]['id'])\n")
    urls = base64_url(server, nested(250_000)) + " " + server.url("/x/json")  # too long for argv
    out = run_python(code, input=urls)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    assert out.stdout.split() == ["True", str(JSON_DOC_ID)]


# ---- 3. NaN and Infinity are refused ---------------------------------------


@pytest.mark.parametrize("body", [
    {"a": float("nan")},
    {"a": [1, {"b": float("inf")}]},
    [1.5, (2, -float("inf"))],
])
def test_nan_and_infinity_in_json_are_refused_before_any_request(server, key, json_mode, body):
    counted = server.url(f"/x/status-then-ok?fail=0&key={key}")
    calls = [
        lambda: fastreq.fastreq([counted, counted], method="POST", json=body),
        lambda: fastreq.fastreq(counted, method="POST", json=body),
        lambda: fastreq.fastreq([counted, {"url": counted, "method": "POST", "json": body}]),
    ]
    for call in calls:
        with pytest.raises(ValidationError) as ei:
            call()
        assert ei.value.field_name == "json"
    assert fastreq.fastreq(counted)["attempts"] == 1  # nothing went out before
    # None is still sent as null.
    fine = {"a": None, "b": [1.5, None, {"c": 1e308}]}
    assert fastreq.fastreq([server.url("/x/echo")], method="POST", json=fine)[0]["json"] == fine
    spec = {"url": server.url("/x/echo?null=1"), "method": "POST", "json": fine}
    assert fastreq.fastreq([spec])[0]["json"] == fine


# ---- 4. the declared charset decodes text ----------------------------------


def test_text_is_decoded_with_the_declared_charset(server):
    latin1 = base64_url(server, b"caf\xe9", "text/plain; charset=iso-8859-1")
    quoted = base64_url(server, "caf\u00e9 \u20ac".encode("cp1252"), 'text/plain; charset="Windows-1252"')
    utf8 = base64_url(server, "caf\u00e9".encode(), "text/plain")
    unknown = base64_url(server, b"caf\xe9", "text/plain; charset=no-such-charset")
    not_text = base64_url(server, b"caf\xe9", "text/plain; charset=hex")
    assert fastreq.fastreq(latin1, return_type="text") == "caf\u00e9"
    assert asyncio.run(fastreq_async(latin1, return_type="text")) == "caf\u00e9"
    assert fastreq.fastreq([latin1, quoted, utf8, unknown, not_text], return_type="text") == [
        "caf\u00e9", "caf\u00e9 \u20ac", "caf\u00e9", "caf\ufffd", "caf\ufffd"]
    r = fastreq.fastreq(latin1, return_type="response")
    assert r.headers["content-type"] == "text/plain; charset=iso-8859-1" and r.text == "caf\u00e9"
    assert r.content == b"caf\xe9"
    mixed = fastreq.fastreq([latin1, {"url": latin1, "return_type": "text"}])
    assert mixed == [None, "caf\u00e9"]
    built = NormalizedResponse.from_backend(200, {"Content-Type": "text/plain; charset=ISO-8859-1"},
                                            b"caf\xe9", "http://h/")
    assert built.text == "caf\u00e9"


# ---- 5. a Host header reaches the server -----------------------------------


def test_host_header_reaches_the_server(server):
    url = server.url("/headers")
    assert fastreq.fastreq(url, headers={"Host": "per-call.example"})["headers"]["Host"] == ["per-call.example"]
    with FastRequests(headers={"Host": "client.example"}) as c:
        assert c.request_sync(url)["headers"]["Host"] == ["client.example"]
        assert c.request_sync([url], headers={"host": "request.example"})[0]["headers"]["Host"] == [
            "request.example"]
        spec = {"url": url, "headers": {"HOST": "spec.example"}}
        assert c.request_sync([spec])[0]["headers"]["Host"] == ["spec.example"]


# ---- 6. connection and circuit-breaker options ----------------------------

NEW_CLIENT_OPTIONS = {
    "connect_timeout": None,
    "read_timeout": None,
    "retry_non_idempotent": False,
    "circuit_breaker_threshold": None,
    "circuit_breaker_cooldown": None,
}


@pytest.mark.parametrize("fn", [fastreq.fastreq, fastreq_async, FastRequests.__init__])
def test_new_client_options_in_every_signature(fn):
    import inspect

    from fastreq._params import CLIENT_NAMES as _CLIENT_KEYS

    ps = inspect.signature(fn).parameters
    for name, default in NEW_CLIENT_OPTIONS.items():
        assert ps[name].default == default and ps[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert name in _CLIENT_KEYS


@pytest.mark.parametrize("name, bad", [
    ("connect_timeout", -1), ("connect_timeout", "5"), ("connect_timeout", True),
    ("connect_timeout", float("nan")), ("read_timeout", -0.5), ("read_timeout", [1]),
    ("circuit_breaker_threshold", -1), ("circuit_breaker_threshold", 2.5),
    ("circuit_breaker_threshold", True), ("circuit_breaker_cooldown", -1),
    ("circuit_breaker_cooldown", 0), ("circuit_breaker_cooldown", "30"),
])
def test_new_client_options_are_validated(name, bad):
    with pytest.raises(ValidationError) as ei:
        FastRequests(**{name: bad})
    assert ei.value.field_name == name
    with pytest.raises(ValidationError) as ei:
        fastreq.fastreq("http://127.0.0.1:1/", **{name: bad})
    assert ei.value.field_name == name


def test_engine_config_of_the_new_options():
    """What reaches the engine: Python's 0 ("no limit", "off") is the
    engine's negative number, None is left out (the engine's default)."""
    cfg = FastRequests().engine_config()
    assert not set(NEW_CLIENT_OPTIONS) & set(cfg)
    cfg = FastRequests(connect_timeout=0, read_timeout=0, circuit_breaker_threshold=0,
                       circuit_breaker_cooldown=0.5, retry_non_idempotent=True).engine_config()
    assert {k: cfg[k] for k in NEW_CLIENT_OPTIONS} == {
        "connect_timeout": -1, "read_timeout": -1, "retry_non_idempotent": True,
        "circuit_breaker_threshold": -1, "circuit_breaker_cooldown": 0.5}
    cfg = FastRequests(connect_timeout=2, read_timeout=1.5, circuit_breaker_threshold=7).engine_config()
    assert (cfg["connect_timeout"], cfg["read_timeout"], cfg["circuit_breaker_threshold"]) == (2.0, 1.5, 7)


def test_read_timeout_fails_a_stalled_request(server):
    t = time.monotonic()
    with pytest.raises(PartialFailureError) as ei:
        fastreq.fastreq([server.url("/x/stall")], read_timeout=0.5, max_retries=0, timeout=10)
    assert time.monotonic() - t < 2.5
    assert ei.value.failures_by_index[0].error.kind == "timeout"
    with FastRequests(read_timeout=0, max_retries=0) as c:  # 0: no limit
        assert c.request_sync(server.url("/x/stall?seconds=0.3"), return_type="text") == "done\n"


def test_connect_timeout_fails_a_connection_that_is_never_accepted():
    # A listener whose accept queue is full: the kernel drops further SYNs,
    # so a connect hangs.
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    fillers = []
    try:
        for _ in range(8):
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(ls.getsockname())
            fillers.append(f)
        url = "http://%s:%d/" % ls.getsockname()
        t = time.monotonic()
        with pytest.raises(PartialFailureError) as ei:
            fastreq.fastreq([url], connect_timeout=0.5, max_retries=0, timeout=10)
        assert time.monotonic() - t < 3
        assert ei.value.failures_by_index[0].error.kind in ("timeout", "connect")
    finally:
        for f in fillers:
            f.close()
        ls.close()


def test_retry_non_idempotent(server, key):
    def post(k, status=500):
        return server.url(f"/x/status-then-ok?fail=1&status={status}&key={key}-{k}")

    fast = dict(max_retries=1, backoff_multiplier=0.001)
    with pytest.raises(PartialFailureError) as ei:  # a POST answered 500 may have been processed: not retried
        fastreq.fastreq([post("a")], method="POST", **fast)
    assert ei.value.failures_by_index[0].error.status_code == 500
    # 503 says the server did not act on it: retried.
    assert fastreq.fastreq([post("e", 503)], method="POST", **fast)[0]["attempts"] == 2
    assert fastreq.fastreq([post("b")], method="POST", retry_non_idempotent=True, **fast)[0]["attempts"] == 2
    spec = {"url": post("c"), "method": "POST", "retry_non_idempotent": True}
    assert fastreq.fastreq([spec], **fast)[0]["attempts"] == 2
    assert fastreq.fastreq([post("d")], **fast)[0]["attempts"] == 2  # GET is retried either way


def test_circuit_breaker_options():
    """A refused connection fails with the same message every time; a
    request the open breaker fails fast says something else."""
    dead = f"http://127.0.0.1:{closed_port()}/"
    one_at_a_time = dict(concurrency=1, max_retries=0)

    def errors(client, n):
        with fastreq_as_completed([dead] * n, **one_at_a_time, **client) as it:
            return [str(c.error) for c in sorted(it, key=lambda c: c.index)]

    refused = errors({}, 1)[0]
    # Off (0): every request tries to connect, past the default threshold of 20.
    assert errors(dict(circuit_breaker_threshold=0), 25) == [refused] * 25
    # After 2 refused connections the rest fail fast.
    got = errors(dict(circuit_breaker_threshold=2), 6)
    assert got[:2] == [refused] * 2 and refused not in got[2:]
    # After the cooldown one probe goes out (and is refused again).
    with FastRequests(circuit_breaker_threshold=1, circuit_breaker_cooldown=0.3, return_none_on_failure=True,
                      **one_at_a_time) as c:
        c.request_sync([dead, dead])
        time.sleep(0.5)
        with pytest.raises(PartialFailureError) as ei:
            c.return_none_on_failure = False
            c.request_sync([dead])
        assert str(ei.value.failures_by_index[0].error) == refused


# ---- 7. Ctrl-C with a million queued requests ---------------------------------

CTRL_C_MILLION = r"""
import signal, sys, time, fastreq
stall, fast = sys.argv[1], sys.argv[2]
urls = [fast] + [stall] * 999_999
caught = []

def on_sigint(signum, frame):
    caught.append(time.monotonic())
    raise KeyboardInterrupt

def progress(done, total):
    print("submitted", flush=True)  # the first request finished: the batch is in

signal.signal(signal.SIGINT, on_sigint)
try:
    fastreq.fastreq(urls, concurrency=64, max_retries=0, progress_callback=progress)
    print("finished?!", flush=True)
except KeyboardInterrupt:
    took = time.monotonic() - caught[0]
    print("interrupt-to-except %.3f handles=%d" % (took, fastreq.engine.live_handles()), flush=True)
    sys.exit(42)
"""


def test_ctrl_c_with_a_million_queued_requests_is_prompt(server):
    env = dict(os.environ, PYTHONPATH=str(PYTHON_DIR))
    p = subprocess.Popen([sys.executable, "-c", CTRL_C_MILLION, server.url("/x/stall"), server.url("/x/json")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert p.stdout.readline().strip() == "submitted", p.stderr.read()
        time.sleep(0.5)
        p.send_signal(signal.SIGINT)
        rc = p.wait(timeout=60)
        out = p.stdout.read().split()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rc == 42, p.stderr.read()
    assert out[0] == "interrupt-to-except" and out[2] == "handles=0", out
    assert float(out[1]) < 0.2, out


CTRL_C_DURING_SUBMIT = r"""
import os, signal, sys, threading, fastreq
from fastreq import _ffi
lb = _ffi.lib()
submit = lb.batch_submit

def interrupted_submit(*args):
    # Ctrl-C while the engine reads a million requests.
    threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
    return submit(*args)

lb.batch_submit = interrupted_submit
client = fastreq.FastRequests(concurrency=64, max_retries=0)
try:
    client.request_sync([sys.argv[1]] * 1_000_000)
except KeyboardInterrupt:
    print("handles=%d" % fastreq.engine.live_handles(), flush=True)  # the client's only
client.close_sync()
"""


def test_ctrl_c_during_the_submit_leaks_no_batch(server):
    out = run_python(CTRL_C_DURING_SUBMIT, server.url("/x/stall"), timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["handles=1"]
