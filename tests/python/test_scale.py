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
