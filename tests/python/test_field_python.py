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
def json_mode(request):
    """Each test twice: with the JSON module fastreq picks (orjson when it
    is installed and safe) and with the standard library's."""
    if request.param == "stdlib":
        _json.use_stdlib(True)
        yield request.param
        _json.use_stdlib(False)
    else:
        yield request.param


def base64_url(server, body: bytes, content_type: str = "") -> str:
    """A go-httpbin URL whose response body is exactly body."""
    u = server.url("/base64/" + base64.urlsafe_b64encode(body).decode())
    if content_type:
        u += "?content-type=" + quote(content_type, safe="")
    return u


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


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
