"""The client beyond one call: synchronous use, threads, cookies,
per-request specs, as-completed iteration, streaming, downloads,
progress and logging."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import types
from pathlib import Path

import pytest

import fastreq
from fastreq import (
    ClientClosedError,
    FastRequests,
    PartialFailureError,
    RequestConfig,
    RequestOptions,
    ValidationError,
    fastreq_as_completed,
)

JSON_DOC_ID = 12345


def pattern(n: int) -> bytes:
    return bytes(i % 256 for i in range(n))


# ---- synchronous client ----------------------------------------------------


def test_sync_client_with_statement(server):
    with FastRequests(concurrency=4) as c:
        a = c.request_sync([server.url("/x/json")] * 5)
        b = c.request_sync(server.url("/x/echo?q=1"))
    assert [r["id"] for r in a] == [JSON_DOC_ID] * 5 and b["query"] == {"q": ["1"]}
    assert c.closed
    with pytest.raises(ClientClosedError):
        c.request_sync(server.url("/x/json"))
    c.close_sync()  # idempotent


def test_closed_async_client_raises(server):
    import asyncio

    async def main():
        c = FastRequests()
        await c.close()
        await c.close()
        with pytest.raises(ClientClosedError):
            await c.request(server.url("/x/json"))

    asyncio.run(main())


def test_threads_share_one_client(server):
    errors = []
    results = {}
    with FastRequests(concurrency=8) as c:
        def work(t):
            try:
                results[t] = c.request_sync([server.url(f"/x/echo?t={t}&i={i}") for i in range(25)])
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
    assert not errors
    for t, res in results.items():
        assert [(r["query"]["t"][0], r["query"]["i"][0]) for r in res] == [(str(t), str(i)) for i in range(25)]


def test_close_while_another_thread_waits(server):
    c = FastRequests(max_retries=0)
    c.request_sync(server.url("/x/json"))  # start the engine client
    box = {}

    def work():
        try:
            c.request_sync(server.url("/x/stall?seconds=30"))
        except BaseException as exc:
            box["exc"] = exc

    th = threading.Thread(target=work)
    th.start()
    import time
    time.sleep(0.3)
    c.close_sync()
    th.join(5)
    assert not th.is_alive()
    err = box["exc"]
    assert isinstance(err, PartialFailureError)
    assert list(err.failures.values())[0].error.kind == "cancelled"


# ---- cookies ------------------------------------------------------------------


def test_cookies_persist_set_and_reset(server):
    with FastRequests(cookies={"init": "1"}) as c:
        assert c.request_sync(server.url("/x/cookies"))["cookies"] == {"init": "1"}
        c.request_sync(server.url("/x/set-cookie?srv=abc"))
        assert c.request_sync(server.url("/x/cookies"))["cookies"] == {"init": "1", "srv": "abc"}
        c.set_cookies({"mine": "2", "init": "3"})
        assert c.request_sync(server.url("/x/cookies"))["cookies"] == {"init": "3", "srv": "abc", "mine": "2"}
        assert c.cookies == {"init": "3", "mine": "2"}
        c.reset_cookies()
        assert c.request_sync(server.url("/x/cookies"))["cookies"] == {}
        assert c.cookies == {}


def test_set_cookies_before_first_use(server):
    c = FastRequests()
    c.set_cookies({"early": "yes"})
    try:
        assert c.request_sync(server.url("/x/cookies"))["cookies"] == {"early": "yes"}
    finally:
        c.close_sync()
    with pytest.raises(ValidationError):
        FastRequests().set_cookies({"a": 1})


def test_each_fastreq_call_is_a_fresh_session(server):
    fastreq.fastreq(server.url("/x/set-cookie?sess=1"))
    assert fastreq.fastreq(server.url("/x/cookies"))["cookies"] == {}
    assert fastreq.fastreq(server.url("/x/cookies"), cookies={"a": "b"})["cookies"] == {"a": "b"}


def test_big_bodies_sync_async_and_response(server):
    # 64 KiB and up travel in pooled pages of their own; every byte must
    # arrive, for every return type and driver, across many reuses.
    sizes = [65535, 65536, 200000, 1 << 20] * 10
    urls = [server.url(f"/x/bytes/{n}") for n in sizes]
    res = fastreq.fastreq(urls, return_type="content", concurrency=16)
    assert [len(b) for b in res] == sizes and all(b == pattern(n) for b, n in zip(res, sizes))
    res = asyncio.run(fastreq.fastreq_async(urls[:8], return_type="response"))
    assert [r.content for r in res] == [pattern(n) for n in sizes[:8]]
    assert res[3].headers["content-length"] == str(1 << 20)



def test_copied_bodies_are_plain_bytes(server):
    # From 32 KiB on, a body is copied by fastreq_copy_body into a bytes
    # object made for it: the result must be an ordinary, owned bytes on
    # every path (batch, single request sync and async, text, response).
    sizes = [32767, 32768, 40001, 65536, 300000]
    urls = [server.url(f"/x/bytes/{n}") for n in sizes]
    res = fastreq.fastreq(urls, return_type="content")
    for b, n in zip(res, sizes):
        assert type(b) is bytes and b == pattern(n) and hash(b) == hash(pattern(n))
    del b
    assert [sys.getrefcount(res[i]) for i in range(len(res))] == [2] * len(res)  # the list's and the argument's
    assert fastreq.fastreq(urls[2:4], return_type="text") == [pattern(n).decode("utf-8", "replace")
                                                                 for n in sizes[2:4]]
    with FastRequests() as c:
        one = c.request_sync(urls[4], return_type="content")
        assert type(one) is bytes and one == pattern(sizes[4])
        r = c.request_sync(urls[3], return_type="response")
        assert type(r.content) is bytes and r.content == pattern(sizes[3])

    async def single() -> bytes:
        async with FastRequests() as ac:
            return await ac.request(urls[2], return_type="content")

    assert asyncio.run(single()) == pattern(sizes[2])

def test_buffer_bodies_are_views_the_library_frees(server):
    # return_type "buffer": a read-only memoryview; from 32 KiB on it reads
    # the engine's memory, freed when the last view of it goes (slices too).
    sizes = [0, 100, 32767, 32768, 65536, 65537, 300000, 1 << 20]
    urls = [server.url(f"/x/bytes/{n}") for n in sizes]
    base = fastreq.engine.live_buffers()
    res = fastreq.fastreq(urls, return_type="buffer", concurrency=8)
    for v, n in zip(res, sizes):
        assert type(v) is memoryview and v.readonly and v.format == "B" and v.nbytes == n
        assert v == pattern(n) and bytes(v) == pattern(n)
        assert v.obj is None or len(v.obj) == n  # the exporter holds exactly the body
    kept = fastreq.engine.live_buffers() - base
    assert kept == sum(1 for n in sizes if n >= 32768)
    tail = res[-1][-10:]  # a slice keeps the whole body alive
    del v, res
    gc.collect()
    assert fastreq.engine.live_buffers() - base == 1
    assert tail == pattern(1 << 20)[-10:]
    with pytest.raises(TypeError):
        tail[0] = 1  # read-only
    del tail
    gc.collect()
    assert fastreq.engine.live_buffers() == base


def test_buffer_bodies_on_every_path(server):
    # async, a client's batch, a per-request spec among other return types,
    # a failure, and as many distinct lengths as the type cache holds and more.
    n = 70000
    url = server.url(f"/x/bytes/{n}")
    base = fastreq.engine.live_buffers()
    one = asyncio.run(fastreq.fastreq_async(url, return_type=fastreq.ReturnType.BUFFER))
    assert isinstance(one, memoryview) and one == pattern(n)
    with FastRequests(max_retries=0, return_none_on_failure=True) as c:
        single = c.request_sync(url, return_type="buffer")
        assert isinstance(single, memoryview) and single == pattern(n)
        mixed = c.request_sync([{"url": url, "return_type": "buffer"}, {"url": url, "return_type": "content"},
                                {"url": server.url("/x/reset"), "return_type": "buffer"}])
        assert isinstance(mixed[0], memoryview) and type(mixed[1]) is bytes and mixed[0] == mixed[1]
        assert mixed[2] is None
        lengths = [40000 + i for i in range(300)]
        many = c.request_sync([server.url(f"/x/bytes/{m}") for m in lengths], return_type="buffer")
        assert [len(v) for v in many] == lengths and all(v == pattern(m) for v, m in zip(many, lengths))
    from fastreq import _records

    info = _records._kept_type.cache_info()
    assert info.currsize <= info.maxsize
    assert fastreq.engine.live_buffers() - base == 3 + 300  # one, single, mixed[0] and many
    digests = fastreq.fastreq([url] * 20, return_type="buffer", parse_func=lambda v: bytes(v[:4]))
    assert digests == [pattern(4)] * 20  # the views parse_func saw are gone
    del one, single, mixed, many
    gc.collect()
    assert fastreq.engine.live_buffers() == base


# ---- per-request specs ------------------------------------------------------------


def test_per_request_specs(server):
    specs = [
        server.url("/x/echo?plain=1"),
        {"url": server.url("/x/echo"), "method": "POST", "json": {"n": 1}},
        {"url": server.url("/x/echo"), "method": "PUT", "data": {"f": "v"}, "headers": {"X-Spec": "s"}},
        RequestConfig(server.url("/x/echo"), method="PATCH", params={"p": "q"}, data="raw"),
        RequestOptions(server.url("/x/json"), return_type="text"),
        {"url": server.url("/x/bytes/10"), "return_type": "content"},
        {"url": server.url("/x/echo"), "method": "POST", "content": b"\x00\xff"},
        {"url": server.url("/x/cookies"), "cookies": {"only": "this"}},
    ]
    res = fastreq.fastreq(specs, headers={"X-Call": "c"})
    assert res[0]["method"] == "GET" and res[0]["query"] == {"plain": ["1"]}
    assert res[1]["method"] == "POST" and res[1]["json"] == {"n": 1}
    assert res[2]["method"] == "PUT" and res[2]["form"] == {"f": ["v"]}
    assert res[2]["headers"]["x-spec"] == ["s"] and res[2]["headers"]["x-call"] == ["c"]
    assert res[3]["method"] == "PATCH" and res[3]["query"] == {"p": ["q"]} and res[3]["body"] == "raw"
    assert isinstance(res[4], str) and '"id":12345' in res[4]
    assert res[5] == pattern(10)
    assert res[6]["body_size"] == 2
    assert res[7]["cookies"] == {"only": "this"}


def test_specs_inherit_call_settings(server):
    res = fastreq.fastreq(
        [{"url": server.url("/x/echo")}, {"url": server.url("/x/echo"), "method": "GET"},
         RequestConfig(server.url("/x/echo"))],
        method="POST", json={"call": True})
    assert res[0]["method"] == "POST" and res[0]["json"] == {"call": True}
    assert res[1]["method"] == "GET"
    assert res[2]["method"] == "POST"


def test_spec_validation(server):
    with pytest.raises(ValidationError) as ei:
        fastreq.fastreq([{"url": server.url("/x/json"), "bogus": 1}])
    assert ei.value.field_name == "bogus"
    with pytest.raises(ValidationError):
        fastreq.fastreq([{"method": "GET"}])
    with pytest.raises(ValidationError):
        fastreq.fastreq([{"url": "gopher://x"}])
    with pytest.raises(ValidationError):
        fastreq.fastreq([12])


def test_single_spec_gives_single_result(server):
    r = fastreq.fastreq({"url": server.url("/x/echo"), "method": "POST"})
    assert r["method"] == "POST"


def test_per_request_timeout_and_failure_urls(server):
    specs = [{"url": server.url("/x/stall?seconds=5"), "timeout": 0.2}, server.url("/x/json")]
    with pytest.raises(PartialFailureError) as ei:
        fastreq.fastreq(specs, max_retries=0)
    assert ei.value.get_failed_urls() == [server.url("/x/stall?seconds=5")]
    assert ei.value.results[1]["id"] == JSON_DOC_ID


# ---- as completed, sync ----------------------------------------------------------------


def test_as_completed_sync(server):
    urls = [server.url("/x/stall?seconds=0.3"), server.url("/x/json"), server.url("/x/reset")]
    with FastRequests(max_retries=0) as c:
        seen = list(c.as_completed_sync(urls))
    assert len(seen) == 3 and seen[-1].index == 0
    by = {d.index: d for d in seen}
    assert by[1].result["id"] == JSON_DOC_ID and by[1].key == 1 and by[1].error is None
    assert by[2].result is None and by[2].error.kind in ("retries_exhausted", "transport")
    assert by[0].result is None and by[0].error is None  # "done\n" is not JSON


def test_fastreq_as_completed_closes_everything(server):
    count = 0
    with fastreq_as_completed([server.url("/x/json")] + [server.url("/x/stall?seconds=30")] * 2,
                              max_retries=0, return_type="json") as it:
        for done in it:
            count += 1
            assert done.result["id"] == JSON_DOC_ID
            break
    assert count == 1
    assert fastreq.engine.live_handles() == 0
    assert list(fastreq_as_completed([])) == []


def test_as_completed_progress_and_parse(server):
    calls = []
    it = fastreq_as_completed([server.url("/x/json")] * 4, parse_func=lambda d: d["id"],
                              progress_callback=lambda done, total: calls.append((done, total)))
    assert [d.result for d in it] == [JSON_DOC_ID] * 4
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


# ---- streaming and downloads ---------------------------------------------------------------


def test_stream_many_and_per_request_callbacks(server):
    a, b = [], []
    res = fastreq.fastreq(
        [{"url": server.url("/x/slow-chunks?n=3&size=50&interval_ms=10"), "stream_callback": a.append},
         {"url": server.url("/x/bytes/70000"), "stream_callback": b.append}],
        return_type="stream")
    assert res == [None, None]
    assert b"".join(a) == pattern(50) * 3
    assert b"".join(b) == pattern(70000)


def test_stream_callbacks_are_not_bunched(server, monkeypatch):
    """Whole-batch calls ask the library to wake them per bunch of records
    (fastreq_batch_set_wake), except when a stream callback waits for
    chunks: those must reach it as they land."""
    from fastreq import _handles, _records

    calls = []
    real = _handles.BatchHandle.set_wake
    monkeypatch.setattr(_handles.BatchHandle, "set_wake", lambda self, n: (calls.append(n), real(self, n)))
    got = []
    fastreq.fastreq([{"url": server.url("/x/slow-chunks?n=2&size=10&interval_ms=20"), "stream": True,
                      "stream_callback": got.append}, server.url("/x/json")])
    assert b"".join(got) == pattern(10) * 2 and calls == []
    fastreq.fastreq([server.url("/x/bytes/10"), server.url("/x/json")], return_type="stream",
                    stream_callback=got.append)
    assert calls == []
    fastreq.fastreq([server.url("/x/json")] * 2)
    assert calls == [_records.BUNCH]


def test_stream_spec_flag(server):
    got = []
    res = fastreq.fastreq([RequestConfig(server.url("/x/bytes/1000"), stream=True), server.url("/x/json")],
                          stream_callback=got.append)
    assert res[0] is None and res[1]["id"] == JSON_DOC_ID
    assert b"".join(got) == pattern(1000)


def test_stream_callback_exception_propagates(server):
    def boom(chunk):
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        fastreq.fastreq(server.url("/x/bytes/100000"), return_type="stream", stream_callback=boom)


def test_download_to_files(server, tmp_path: Path):
    one = tmp_path / "one.bin"
    r = fastreq.fastreq(server.url("/x/bytes/200000"), save_to=one)
    assert r == one and one.read_bytes() == pattern(200000)
    paths = [tmp_path / f"f{i}.bin" for i in range(3)]
    res = fastreq.fastreq([server.url(f"/x/bytes/{1000 * (i + 1)}") for i in range(3)], save_to=paths)
    assert res == paths and [p.stat().st_size for p in paths] == [1000, 2000, 3000]
    res = fastreq.fastreq([server.url("/x/bytes/5"), server.url("/x/json")],
                          save_to=lambda i, u: str(tmp_path / "cb.bin") if i == 0 else None)
    assert res[0] == tmp_path / "cb.bin" and res[1]["id"] == JSON_DOC_ID
    r = fastreq.fastreq({"url": server.url("/x/bytes/64"), "save_to": tmp_path / "spec.bin"},
                        return_type="response")
    assert r.path == str(tmp_path / "spec.bin") and r.status_code == 200 and r.content == b""


def test_download_bigger_than_max_body_size(server, tmp_path: Path):
    p = tmp_path / "big.bin"
    with FastRequests(max_body_size=1000) as c:
        assert c.request_sync(server.url("/x/bytes/300000"), save_to=p) == p
    assert p.stat().st_size == 300000


def test_download_errors(server, tmp_path: Path):
    with pytest.raises(ValidationError):
        fastreq.fastreq([server.url("/x/bytes/1")] * 2, save_to=tmp_path / "x")
    with pytest.raises(ValidationError):
        fastreq.fastreq([server.url("/x/bytes/1")] * 2, save_to=[tmp_path / "x"])
    with pytest.raises(PartialFailureError) as ei:
        fastreq.fastreq(server.url("/x/bytes/10"), save_to=tmp_path / "no" / "such" / "dir.bin", max_retries=0)
    assert list(ei.value.failures.values())[0].error.kind == "io"


# ---- progress -------------------------------------------------------------------------------


def test_progress_callback(server):
    calls = []
    fastreq.fastreq([server.url("/x/json")] * 5, progress_callback=lambda d, t: calls.append((d, t)))
    assert calls == [(i, 5) for i in range(1, 6)]


def test_progress_tqdm(server, monkeypatch):
    bars = []

    class FakeTqdm:
        def __init__(self, total, desc, unit, disable):
            self.total, self.desc, self.unit, self.n, self.closed = total, desc, unit, 0, False
            bars.append(self)

        def update(self, k):
            self.n += k

        def close(self):
            self.closed = True

    auto = types.ModuleType("tqdm.auto")
    auto.tqdm = FakeTqdm
    pkg = types.ModuleType("tqdm")
    pkg.auto = auto
    monkeypatch.setitem(sys.modules, "tqdm", pkg)
    monkeypatch.setitem(sys.modules, "tqdm.auto", auto)
    monkeypatch.setitem(sys.modules, "rich", None)  # progress=True falls back to tqdm
    fastreq.fastreq([server.url("/x/json")] * 3, progress="tqdm")
    fastreq.fastreq([server.url("/x/json")] * 2, progress=True)
    assert [(b.total, b.n, b.closed, b.desc, b.unit) for b in bars] == [
        (3, 3, True, "HTTP requests", "req"), (2, 2, True, "HTTP requests", "req")]


def test_progress_missing_package(server, monkeypatch):
    monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.setitem(sys.modules, "rich.progress", None)
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    for mode in ("rich", "tqdm", True):
        with pytest.raises(RuntimeError):
            fastreq.fastreq(server.url("/x/json"), progress=mode)


# ---- logging ---------------------------------------------------------------------------------


def test_logging_to_the_fastreq_logger(server, caplog):
    caplog.set_level(logging.DEBUG, logger="fastreq")
    fastreq.fastreq([server.url("/x/json"), server.url("/x/reset")], max_retries=0, debug=True,
                    return_none_on_failure=True)
    msgs = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "fastreq"]
    assert any(lv == logging.INFO and "Using backend: auto" in m for lv, m in msgs)
    assert any(lv == logging.INFO and "2 requests, 1 failed" in m for lv, m in msgs)
    assert any(lv == logging.DEBUG and "/x/reset" in m for lv, m in msgs)
    caplog.clear()
    assert fastreq.fastreq(server.url("/x/reset"), max_retries=0, return_none_on_failure=True) is None  # one request
    msgs = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "fastreq"]
    assert any(lv == logging.INFO and "1 requests, 1 failed" in m for lv, m in msgs)
    assert any(lv == logging.DEBUG and "/x/reset" in m for lv, m in msgs)
    caplog.clear()
    fastreq.fastreq(server.url("/x/json"), verbose=False)
    assert not [r for r in caplog.records if r.name == "fastreq" and r.levelno == logging.INFO]


def test_json_without_orjson(server, monkeypatch):
    from fastreq import _json

    monkeypatch.setattr(_json, "loads", _json._std_loads)
    monkeypatch.setattr(_json, "dumps", _json._std_dumps)
    res = fastreq.fastreq([server.url("/x/json"), {"url": server.url("/x/echo"), "method": "POST",
                                                   "json": {"é": [1.5, None]}}])
    assert res[0]["id"] == JSON_DOC_ID and res[1]["json"] == {"é": [1.5, None]}


def test_engine_logs_reach_the_fastreq_logger(server, caplog):
    """The Go engine's own records (here a retry) are forwarded to the
    "fastreq" logger at the level debug/verbose ask for."""
    import uuid

    caplog.set_level(logging.DEBUG, logger="fastreq")
    url = server.url(f"/x/status-then-ok?fail=1&status=503&key={uuid.uuid4().hex}")
    assert fastreq.fastreq(url, max_retries=2, backoff_multiplier=0.001, debug=True)["attempts"] == 2
    retries = [r for r in caplog.records if r.name == "fastreq" and r.getMessage().startswith("retrying")]
    assert len(retries) == 1 and retries[0].levelno == logging.DEBUG
    assert "attempt=1" in retries[0].getMessage() and "503" in retries[0].getMessage()

    caplog.clear()
    url = server.url(f"/x/status-then-ok?fail=1&status=503&key={uuid.uuid4().hex}")
    fastreq.fastreq(url, max_retries=2, backoff_multiplier=0.001)  # verbose: info and up only
    assert not [r for r in caplog.records if r.getMessage().startswith("retrying")]
