"""Fault injection: hostile servers (tests/testserver/hostile.go) against
the behaviour the engine must have in the field.

Credentials and Referer across redirects, decompression bombs and endless
bodies, silent servers and read/connect timeouts, the circuit breaker
against a closed port, no automatic retry of non-idempotent requests,
bounded descriptors over many hosts, a space in the query, a client-level
Host header.

Measurements of memory and descriptors run in a fresh interpreter (see
CHILD) so that the figures are the test's own.
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any, Dict
from urllib.parse import quote, urlsplit

import pytest

from conftest import run_python
from fastreq import BackendError, FastRequests, PartialFailureError, ValidationError, fastreq as get

MiB = 1 << 20
JSON_DOC_ID = 12345
FAST = dict(backoff_multiplier=0.01, max_delay=0.05)  # quick retries
#: Headers a caller sets that must never reach another origin.
CREDENTIALS = {
    "Authorization": "Bearer tok-s3cr3t",
    "Cookie": "sid=cookie-s3cr3t",
    "Proxy-Authorization": "Basic cHJveHk6czNjcjN0",
}

# Server introspection goes through urllib (never through a proxy from the
# environment), so it does not depend on the engine under test.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def probe(url: str) -> Any:
    with _OPENER.open(url, timeout=10) as r:
        return json.loads(r.read())


def hits(server, key: str) -> int:
    return probe(server.url(f"/x/count?key={key}"))["count"]


def many(server, ip: str) -> str:
    """The many-hosts server at ip (any 127.X.Y.Z)."""
    return f"http://{ip}:{server.info['many_hosts_port']}"


def redirect(start: str, target: str, status: int = 302, extra: str = "") -> str:
    """go-httpbin's /redirect-to on the origin start, to target."""
    return f"{start}/redirect-to?status_code={status}{extra}&url={quote(target, safe='')}"


def lower_headers(doc: Dict[str, Any]) -> Dict[str, list]:
    return {k.lower(): v for k, v in doc["headers"].items()}


def root_error(exc: BaseException) -> BaseException:
    """The error of the last attempt when retries ran out."""
    last = getattr(exc, "last_error", None)
    return last if getattr(exc, "kind", None) == "retries_exhausted" and last is not None else exc


def only_failure(ei) -> BaseException:
    fails = ei.value.failures_by_index
    assert len(fails) == 1, fails
    return next(iter(fails.values())).error


# ---- a child interpreter that measures itself ---------------------------------------

CHILD = r'''
import json, os, sys, threading, time
from collections import Counter

import fastreq
from fastreq import FastRequests, PartialFailureError

def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0

def rss():
    return status("VmRSS")

def fds():
    return len(os.listdir("/proc/self/fd"))

def describe(e):
    root = e
    if getattr(e, "kind", None) == "retries_exhausted" and getattr(e, "last_error", None) is not None:
        root = e.last_error
    return {"type": type(e).__name__, "kind": getattr(e, "kind", None), "msg": str(e),
            "root_kind": getattr(root, "kind", None), "root_msg": str(root)}

class Sampler:
    """Samples RSS and descriptors every 2 ms; past kill_rss it reports and
    exits, so a broken bound cannot take the machine's memory."""
    def __init__(self, kill_rss):
        self.kill_rss = kill_rss
        self.peak_rss = rss()
        self.peak_fds = fds()
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()
    def run(self):
        while not self.stop.is_set():
            r, n = rss(), fds()
            self.peak_rss = max(self.peak_rss, r)
            self.peak_fds = max(self.peak_fds, n)
            if r > self.kill_rss:
                print(json.dumps({"killed": True, "rss": r}), flush=True)
                os._exit(3)
            time.sleep(0.002)
    def close(self):
        self.stop.set()
        self.t.join()

cfg = json.loads(sys.stdin.read())
mode = cfg["mode"]
fastreq.fastreq(cfg["warm"], return_type="content")  # loads the engine, starts its threads
time.sleep(0.2)
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # restart VmHWM from here
except OSError:
    pass
base_rss, base_fds = rss(), fds()
out = {"base_rss": base_rss, "base_fds": base_fds}
s = Sampler(base_rss + cfg.get("kill_growth", 2 << 30))
t0 = time.monotonic()

if mode == "call":
    try:
        res = fastreq.fastreq(cfg["urls"], **cfg["kw"])
        errors = {}
    except PartialFailureError as e:
        res = e.results
        errors = {i: describe(fd.error) for i, fd in e.failures_by_index.items()}
    out["elapsed"] = time.monotonic() - t0
    out["fds_after"] = fds()
    out["errors"] = {str(i): v for i, v in errors.items()}
    out["results"] = [None if i in errors else (r if isinstance(r, (dict, list, str)) else repr(r)[:200])
                      for i, r in enumerate(res)]
    del res
elif mode == "completions":
    # Stop at a deadline so a slow engine gives figures, not a hang.
    total = len(cfg["urls"])
    done, kinds, circuit, ok, ok_urls = 0, Counter(), 0, 0, 0
    with FastRequests(**cfg["client"]) as c:
        it = c.as_completed_sync(cfg["urls"], **cfg.get("kw", {}))
        try:
            for d in it:
                done += 1
                if d.error is None:
                    ok += 1
                else:
                    info = describe(d.error)
                    kinds[info["root_kind"]] += 1
                    if info["root_kind"] == "connect" and "circuit" in info["root_msg"].lower():
                        circuit += 1
                if time.monotonic() - t0 > cfg["deadline"]:
                    break
        finally:
            it.close()
    out.update(elapsed=time.monotonic() - t0, total=total, done=done, ok=ok, circuit=circuit, kinds=dict(kinds))
else:
    raise SystemExit("unknown mode " + mode)

s.close()
out["peak_rss_growth"] = max(s.peak_rss, status("VmHWM")) - base_rss
out["peak_fds"] = s.peak_fds
# Back to the start within settle seconds?
deadline = time.monotonic() + cfg.get("settle", 3)
settle_rss = cfg.get("settle_rss", 32 << 20)
while True:
    r, n = rss(), fds()
    if (r <= base_rss + settle_rss and n <= base_fds) or time.monotonic() > deadline:
        break
    time.sleep(0.02)
out["settled_after"] = time.monotonic() - t0 - out["elapsed"]
out["rss_growth_after"] = r - base_rss
out["fds_settled"] = n
print(json.dumps(out), flush=True)
'''


def run_child(cfg: Dict[str, Any], timeout: float = 120) -> Dict[str, Any]:
    p = run_python(CHILD, input=json.dumps(cfg), timeout=timeout)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"child failed (rc {p.returncode}):\n{p.stderr[-3000:]}"
    out = json.loads(lines[-1])
    assert not out.get("killed"), f"child killed at RSS {out['rss'] / MiB:.0f} MiB (bound far exceeded)"
    assert p.returncode == 0, f"child failed (rc {p.returncode}):\n{p.stderr[-3000:]}"
    return out


# ---- credentials and Referer across redirects ---------------------------------------


def _cross_origin_cases(server):
    alt = server.info["http_alt_url"]
    return {
        # http://127.0.0.1:P -> http://127.0.0.1:Q
        "cross-port": (redirect(server.http, alt + "/headers"), {}),
        # https://127.0.0.1:T -> http://127.0.0.1:P
        "https-to-http": (redirect(server.tls, server.http + "/headers"), {"verify_ssl": False}),
        # http://127.0.0.1:M -> http://127.0.0.2:M (same port, another host)
        "other-host": (redirect(many(server, "127.0.0.1"), many(server, "127.0.0.2") + "/headers"), {}),
    }


@pytest.mark.parametrize("case", ["cross-port", "https-to-http", "other-host"])
def test_credentials_do_not_cross_origins(server, case):
    url, kw = _cross_origin_cases(server)[case]
    doc = get(url, headers=CREDENTIALS, max_retries=0, **kw)
    h = lower_headers(doc)
    leaked = sorted(k for k in ("authorization", "cookie", "proxy-authorization") if k in h)
    assert not leaked, f"{case}: {leaked} reached the redirect target: {h}"
    assert "s3cr3t" not in json.dumps(doc)


@pytest.mark.parametrize("relative", [False, True])
def test_credentials_follow_same_origin_redirects(server, relative):
    target = "/headers" if relative else server.http + "/headers"
    doc = get(redirect(server.http, target), headers=CREDENTIALS, max_retries=0)
    h = lower_headers(doc)
    for name, value in CREDENTIALS.items():
        assert h.get(name.lower()) == [value], (name, h)


def test_client_headers_do_not_cross_origins(server):
    """The same with the credentials set on the client, not the call."""
    url, _ = _cross_origin_cases(server)["cross-port"]
    with FastRequests(headers=CREDENTIALS, max_retries=0) as c:
        h = lower_headers(c.request_sync(url))
        assert not {"authorization", "cookie", "proxy-authorization"} & set(h), h
        same = lower_headers(c.request_sync(redirect(server.http, "/headers")))
        assert same.get("authorization") == [CREDENTIALS["Authorization"]], same


def test_jar_cookies_follow_cookie_rules_across_redirects(server):
    """Cookies a server set live in the session jar and go where cookie
    rules send them: to the same host on any port, not to another host."""
    alt = server.info["http_alt_url"]
    with FastRequests(max_retries=0) as c:
        c.request_sync(server.url("/x/set-cookie?jar=yes"))
        assert c.request_sync(redirect(server.http, alt + "/x/cookies"))["cookies"] == {"jar": "yes"}
        other = many(server, "127.0.0.2") + "/x/cookies"
        assert c.request_sync(redirect(server.http, other))["cookies"] == {}


@pytest.mark.parametrize("case", ["cross-port", "other-host"])
def test_no_automatic_referer(server, case):
    start = server.http if case == "cross-port" else many(server, "127.0.0.1")
    target = (server.info["http_alt_url"] if case == "cross-port" else many(server, "127.0.0.2")) + "/headers"
    doc = get(redirect(start, target, extra="&api_key=SECRET"), max_retries=0)
    h = lower_headers(doc)
    assert "referer" not in h, h["referer"]
    assert "SECRET" not in json.dumps(h)


# ---- bombs and endless bodies ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["/x/bomb/gzip?size=1073741824", "/x/bomb/deflate?size=1073741824", "/x/endless"])
def test_body_limit_holds_against_bombs(server, path):
    """max_body_size=64 MiB against a 1 GiB bomb (or an endless body):
    that request fails with body_too_large, memory stays near the limit
    and comes back, and the call's other requests succeed."""
    limit = 64 * MiB
    out = run_child({
        "mode": "call",
        "warm": server.url("/x/json"),
        "urls": [server.url(path), server.url("/x/json"), server.url("/get?other=1")],
        "kw": {"max_body_size": limit, "max_retries": 0, "timeout": 60},
        "kill_growth": 1 << 30,
        "settle": 3,
        "settle_rss": 32 * MiB,
    })
    errs = out["errors"]
    assert set(errs) == {"0"}, errs
    assert errs["0"]["kind"] == "body_too_large" and errs["0"]["type"] == BackendError.__name__, errs
    assert out["results"][1]["id"] == JSON_DOC_ID and out["results"][2]["args"] == {"other": ["1"]}
    bound = 1.25 * limit + 32 * MiB
    assert out["peak_rss_growth"] < bound, (
        f"peak RSS growth {out['peak_rss_growth'] / MiB:.0f} MiB > {bound / MiB:.0f} MiB")
    assert out["rss_growth_after"] <= 32 * MiB, (
        f"RSS still {out['rss_growth_after'] / MiB:.0f} MiB above the start "
        f"{out['settled_after']:.1f} s after the call")


# ---- silent servers and timeouts ------------------------------------------------------------


@pytest.mark.parametrize("which", ["silent_url", "silent_read_url"])
def test_read_timeout_on_a_silent_server(server, which):
    u = server.info[which] + "/get"
    t0 = time.monotonic()
    with pytest.raises(PartialFailureError) as ei:
        get(u, read_timeout=1, timeout=10, max_retries=0)
    el = time.monotonic() - t0
    err = only_failure(ei)
    assert err.kind == "timeout", err
    assert 0.8 <= el < 2.5, el


def test_read_timeout_on_a_stalled_body(server):
    u = server.url("/x/stall-body?seconds=8")
    t0 = time.monotonic()
    with pytest.raises(PartialFailureError) as ei:
        get(u, read_timeout=1, timeout=10, max_retries=0, return_type="content")
    assert only_failure(ei).kind == "timeout"
    assert 0.8 <= time.monotonic() - t0 < 2.5


def test_read_timeout_is_per_read_not_per_request(server):
    """A body that keeps coming, never 1 s apart, outlives read_timeout=1."""
    u = server.url("/x/slow-chunks?n=7&size=16&interval_ms=400")
    t0 = time.monotonic()
    body = get(u, read_timeout=1, timeout=10, max_retries=0, return_type="content")
    assert len(body) == 7 * 16 and time.monotonic() - t0 >= 2.4


def test_connect_timeout_against_a_full_backlog(server):
    """The blackhole's accept queue is full, so the SYN goes unanswered."""
    u = server.info["blackhole_url"]
    if not u:
        pytest.skip("the test server has no blackhole on this system")
    t0 = time.monotonic()
    with pytest.raises(PartialFailureError) as ei:
        get(u + "/get", connect_timeout=1, timeout=10, max_retries=0)
    el = time.monotonic() - t0
    assert only_failure(ei).kind in ("timeout", "connect")
    assert 0.8 <= el < 2.5, el


# ---- the circuit breaker against a closed port ----------------------------------------------


def test_closed_port_storm_trips_the_circuit(server):
    """5,000 requests at concurrency 64 with max_retries=2 to a port where
    nothing listens: after the threshold (default 20) the rest fail fast
    with a "circuit" connect error; another host is not affected; quick,
    small memory."""
    closed = server.info["closed_url"]
    if not closed:
        pytest.skip("the test server has no closed port on this system")
    healthy = many(server, "127.0.0.3") + "/x/json"
    urls = [closed + f"/get?i={i}" for i in range(5000)]
    for i in range(0, 5000, 100):
        urls.insert(i, healthy)
    out = run_child({
        "mode": "completions",
        "warm": server.url("/x/json"),
        "urls": urls,
        "client": {"concurrency": 64, "max_retries": 2, "return_none_on_failure": True, "verbose": False},
        "deadline": 30,
        "kill_growth": 1 << 30,
    }, timeout=90)
    assert out["done"] == out["total"], f"{out['done']} of {out['total']} done after {out['elapsed']:.1f} s"
    assert out["ok"] == 50, out
    assert out["elapsed"] < 10, out
    assert out["circuit"] >= 4500, f"only {out['circuit']} of 5000 failed on the open circuit: {out['kinds']}"
    assert set(out["kinds"]) == {"connect"}, out["kinds"]
    assert out["peak_rss_growth"] < 64 * MiB, f"peak RSS growth {out['peak_rss_growth'] / MiB:.0f} MiB"


def test_circuit_breaker_can_be_turned_off(server):
    closed = server.info["closed_url"]
    if not closed:
        pytest.skip("the test server has no closed port on this system")
    with pytest.raises(PartialFailureError) as ei:
        get([closed + f"/get?i={i}" for i in range(300)], concurrency=16, max_retries=0,
            circuit_breaker_threshold=0)
    errs = [root_error(fd.error) for fd in ei.value.failures_by_index.values()]
    assert len(errs) == 300
    assert all(e.kind == "connect" and "circuit" not in str(e).lower() for e in errs)


# ---- no automatic retry of non-idempotent requests ------------------------------------------


def test_post_is_not_retried_by_default(server, key):
    u = server.url(f"/x/drop-after-read?key={key}")
    with pytest.raises(PartialFailureError):
        get(u, method="POST", data="payload", max_retries=3, timeout=10, **FAST)
    assert hits(server, key) == 1


def test_post_is_retried_when_allowed(server, key):
    u = server.url(f"/x/drop-after-read?key={key}")
    with pytest.raises(PartialFailureError):
        get(u, method="POST", data="payload", max_retries=3, timeout=10, retry_non_idempotent=True, **FAST)
    assert hits(server, key) == 4


def test_retry_non_idempotent_per_request(server, key):
    ka, kb = key + "-a", key + "-b"
    with FastRequests(max_retries=3, timeout=10, return_none_on_failure=True, **FAST) as c:
        c.request_sync([{"url": server.url(f"/x/drop-after-read?key={ka}"), "method": "POST", "data": "x",
                         "retry_non_idempotent": True}])
    with FastRequests(max_retries=3, timeout=10, return_none_on_failure=True, retry_non_idempotent=True,
                      **FAST) as c:
        c.request_sync([{"url": server.url(f"/x/drop-after-read?key={kb}"), "method": "POST", "data": "x",
                         "retry_non_idempotent": False}])
    assert (hits(server, ka), hits(server, kb)) == (4, 1)


def test_get_is_retried(server, key):
    u = server.url(f"/x/drop-after-read?key={key}")
    with pytest.raises(PartialFailureError):
        get(u, max_retries=3, timeout=10, **FAST)
    assert hits(server, key) == 4


# ---- many hosts: descriptors stay bounded ----------------------------------------------------


def test_many_hosts_keep_descriptors_bounded(server):
    """5,000 requests over 500 hosts at concurrency 32: open descriptors
    never exceed concurrency + 16 over the baseline, and are back at the
    baseline once fastreq() has returned (it closes its client)."""
    hosts = [f"127.0.{1 + k // 250}.{1 + k % 250}" for k in range(500)]
    urls = [many(server, hosts[i % 500]) + "/x/json" for i in range(5000)]
    stats_url = server.url("/x/many-hosts/stats")
    open_before = probe(stats_url)["open"]
    out = run_child({
        "mode": "call",
        "warm": many(server, "127.0.0.1") + "/x/json",
        "urls": urls,
        "kw": {"concurrency": 32, "max_retries": 0, "timeout": 30, "return_type": "content"},
        "settle": 1,
        "settle_rss": 1 << 40,
    })
    assert not out["errors"], list(out["errors"].values())[:3]
    growth = out["peak_fds"] - out["base_fds"]
    assert growth <= 32 + 16, f"peak {growth} descriptors over the baseline"
    assert out["fds_settled"] <= out["base_fds"], (
        f"{out['fds_after'] - out['base_fds']} descriptors over the baseline right after the call, "
        f"{out['fds_settled'] - out['base_fds']} a second later")
    deadline = time.monotonic() + 3
    while probe(stats_url)["open"] > open_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert probe(stats_url)["open"] <= open_before


def test_max_connections_keeps_a_connection_per_host(server):
    """max_connections above the number of hosts: a second round over 40
    hosts reuses every connection; with the default (concurrency + 8)
    most hosts connect again. A bad value names itself."""
    urls = [many(server, f"127.0.3.{1 + k}") + "/x/json" for k in range(40)]

    def second_round(**kw):
        with FastRequests(concurrency=8, max_retries=0, **kw) as c:
            c.request_sync(urls, return_type="response")
            return c.request_sync(urls, return_type="response")

    kept = second_round(max_connections=48)
    assert all(r.status_code == 200 and r.timings.reused for r in kept), [
        (r.status_code, r.timings.reused) for r in kept]
    default = second_round()
    assert sum(not r.timings.reused for r in default) >= 20
    for bad in (0, -1):
        with pytest.raises(ValidationError) as ei:
            FastRequests(max_connections=bad)
        assert ei.value.field_name == "max_connections"
    with pytest.raises(ValidationError) as ei:  # the engine's check, when the client starts
        with FastRequests(concurrency=10, max_connections=9) as c:
            c.request_sync(urls[0])
    assert ei.value.field_name == "max_connections" and "at least concurrency" in str(ei.value)


# ---- requests the engine must send as meant ---------------------------------------------------


def test_space_in_query_is_encoded(server):
    r = get(server.url("/get?a b=c d"), max_retries=0, return_type="response")
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.json_data["args"] == {"a b": ["c d"]}


def test_client_host_header_reaches_the_server(server):
    with FastRequests(headers={"Host": "fastreq.test"}, max_retries=0) as c:
        doc = c.request_sync(server.url("/headers"))
    assert doc["headers"]["Host"] == ["fastreq.test"]


def test_hostile_endpoints_are_there(server):
    """The test server's side of this file (independent of the engine)."""
    for name in ("http_alt_url", "many_hosts_url", "silent_url", "silent_read_url", "closed_url", "blackhole_url"):
        assert urlsplit(server.info[name]).hostname == "127.0.0.1", name
    assert probe(many(server, "127.0.9.9") + "/headers")["headers"]["Host"] == [
        f"127.0.9.9:{server.info['many_hosts_port']}"]
    assert set(probe(server.url("/x/many-hosts/stats"))) == {"open", "accepted", "rejected"}
