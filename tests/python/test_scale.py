"""A large batch, memory and buffer accounting."""

from __future__ import annotations

import asyncio

import fastreq
from fastreq import FastRequests, fastreq as get, fastreq_async


def test_10k_requests_ordered(server):
    n = 10_000
    urls = [server.url(f"/x/echo?i={i}") for i in range(n)]
    res = get(urls, concurrency=100, max_retries=2, backoff_multiplier=0.01)
    assert len(res) == n
    assert all(r["query"]["i"][0] == str(i) for i, r in enumerate(res))
    assert fastreq.engine.live_buffers() == 0 and fastreq.engine.live_handles() == 0


def test_10k_same_url_async_with_keys(server):
    n = 10_000

    async def main():
        return await fastreq_async([server.url("/x/json")] * n, keys=range(n), concurrency=100)

    res = asyncio.run(main())
    assert list(res) == list(range(n)) and all(v["id"] == 12345 for v in res.values())


def test_buffers_freed_exactly_once(server):
    """Every drained record is released once; an abandoned iterator and a
    failing callback release theirs too."""
    from fastreq import _ffi

    lib = _ffi.lib()
    assert lib.live_buffers() == 0
    get([server.url("/x/bytes/3000")] * 300, return_type="content")
    assert lib.live_buffers() == 0
    with FastRequests() as c:
        it = c.as_completed_sync([server.url("/x/bytes/100")] * 200)
        next(it)
        it.close()
    assert lib.live_buffers() == 0
    try:
        get([server.url("/x/json")] * 50, parse_func=lambda d: 1 / 0)
    except ZeroDivisionError:
        pass
    assert lib.live_buffers() == 0
    # Releasing the same records twice is harmless (pointers are nulled).
    arr = _ffi.RecordArray()
    lib.records_release(arr, _ffi.DRAIN_CHUNK)
    lib.records_release(arr, _ffi.DRAIN_CHUNK)
    assert lib.live_buffers() == 0


def test_many_small_calls_do_not_leak(server):
    with FastRequests() as c:
        for _ in range(200):
            assert c.request_sync(server.url("/x/json"))["id"] == 12345
    for _ in range(50):
        get(server.url("/x/json"))
    assert fastreq.engine.live_handles() == 0 and fastreq.engine.live_buffers() == 0


def test_memory_controls():
    prev = fastreq.engine.set_memory_limit(-1)
    assert prev > 0
    assert fastreq.engine.set_memory_limit(1 << 34) == prev
    fastreq.engine.set_memory_limit(prev)
    fastreq.engine.free_os_memory()


def test_whole_batch_calls_are_woken_per_bunch(server, monkeypatch):
    """fastreq()/fastreq_async() without progress ask the library to wake
    them per bunch of records (fastreq_batch_set_wake), so a batch smaller
    than a bunch wakes its driver at its end or at a 100 ms wait slice, not
    once per burst of completions; with progress it is woken as results land."""
    import time

    from fastreq import _drive, _ffi

    lib = _ffi.lib()
    real_next = lib.batch_next
    calls = []

    def counting_next(*args):
        calls.append(1)
        return real_next(*args)

    monkeypatch.setattr(lib, "batch_next", counting_next)
    urls = [server.url(f"/x/echo?i={i}") for i in range(400)]
    t0 = time.monotonic()
    res = get(urls, concurrency=4)
    slices = (time.monotonic() - t0) / (_drive.WAIT_SLICE_MS / 1000)
    assert [r["query"]["i"][0] for r in res] == [str(i) for i in range(400)]
    assert len(calls) <= slices + 2, (len(calls), slices)

    calls.clear()
    seen = []
    get(urls, concurrency=4, progress_callback=lambda done, total: seen.append(done))
    assert seen[-1] == 400 and len(calls) > 2 * (slices + 2)  # results as they land

    wakeups = []
    real_readable = _drive.AsyncPump._on_readable

    def counting_readable(self):
        wakeups.append(1)
        real_readable(self)

    monkeypatch.setattr(_drive.AsyncPump, "_on_readable", counting_readable)
    res = asyncio.run(fastreq_async(urls, concurrency=4))
    assert [r["query"]["i"][0] for r in res] == [str(i) for i in range(400)]
    assert len(wakeups) <= 2, wakeups
