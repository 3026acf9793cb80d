"""asyncio: fastreq_async, the FastRequests async client, cancellation,
the event loop staying free, the thread fallback, as-completed."""

from __future__ import annotations

import asyncio
import time

import pytest

import fastreq
from fastreq import Completion, FastRequests, PartialFailureError, fastreq_async
from fastreq import _drive

JSON_DOC_ID = 12345


def run(coro):
    return asyncio.run(coro)


def test_fastreq_async_shapes(server):
    async def main():
        one = await fastreq_async(server.url("/x/json"))
        many = await fastreq_async([server.url(f"/x/echo?i={i}") for i in range(20)], concurrency=4)
        keyed = await fastreq_async([server.url("/x/json")] * 2, keys=["x", "y"], parse_func=lambda d: d["id"])
        return one, many, keyed

    one, many, keyed = run(main())
    assert one["id"] == JSON_DOC_ID
    assert [r["query"]["i"][0] for r in many] == [str(i) for i in range(20)]
    assert keyed == {"x": JSON_DOC_ID, "y": JSON_DOC_ID}


def test_async_client_context_and_concurrent_calls(server):
    async def main():
        async with FastRequests(concurrency=8) as client:
            calls = [client.request([server.url(f"/x/echo?c={c}&i={i}") for i in range(10)]) for c in range(5)]
            out = await asyncio.gather(*calls)
            text = await client.request(server.url("/x/proto"), return_type="text")
        assert client.closed
        return out, text

    out, text = run(main())
    for c, res in enumerate(out):
        assert [r["query"]["i"][0] for r in res] == [str(i) for i in range(10)]
        assert all(r["query"]["c"] == [str(c)] for r in res)
    assert text == "HTTP/1.1"


def test_async_partial_failure(server):
    async def main():
        return await fastreq_async([server.url("/x/json"), server.url("/x/reset")], max_retries=0)

    with pytest.raises(PartialFailureError) as ei:
        run(main())
    assert ei.value.successes == 1 and ei.value.total == 2


def test_event_loop_is_not_blocked(server):
    """While 3 requests stall for 0.6 s, a ticker task keeps running."""

    async def main():
        ticks = []

        async def ticker():
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        t = asyncio.ensure_future(ticker())
        started = time.monotonic()
        res = await fastreq_async([server.url("/x/stall?seconds=0.6")] * 3, return_type="text")
        elapsed = time.monotonic() - started
        t.cancel()
        return res, ticks, elapsed

    res, ticks, elapsed = run(main())
    assert res == ["done\n"] * 3
    assert elapsed >= 0.55
    assert len(ticks) > 20
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert max(gaps) < 0.2


def test_cancelling_the_task_cancels_the_batch(server):
    async def main():
        task = asyncio.ensure_future(
            fastreq_async([server.url("/x/stall?seconds=30")] * 5, max_retries=0))
        await asyncio.sleep(0.3)
        assert fastreq.engine.live_handles() == 2  # the client and its batch
        t = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - t

    took = run(main())
    assert took < 1.0
    assert fastreq.engine.live_handles() == 0
    assert fastreq.engine.live_buffers() == 0


def test_wait_for_timeout_cancels(server):
    async def main():
        async with FastRequests() as c:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(c.request(server.url("/x/stall?seconds=30")), 0.3)
            # the client still works after a cancelled call
            return await c.request(server.url("/x/json"))

    assert run(main())["id"] == JSON_DOC_ID


def test_thread_fallback_without_add_reader(server, monkeypatch):
    """Loops without add_reader (Windows' Proactor) get one helper thread."""

    def no_reader(self, fd, cb, *args):
        raise NotImplementedError

    monkeypatch.setattr(asyncio.SelectorEventLoop, "add_reader", no_reader)
    started = []
    orig = _drive.AsyncPump._thread_main

    def spy(self):
        started.append(True)
        return orig(self)

    monkeypatch.setattr(_drive.AsyncPump, "_thread_main", spy)
    waits = []
    orig_one = _drive._wait_one

    def spy_one(lb, h):
        waits.append(h)
        return orig_one(lb, h)

    monkeypatch.setattr(_drive, "_wait_one", spy_one)  # the single-request path's thread

    async def main():
        res = await fastreq_async([server.url(f"/x/echo?i={i}") for i in range(50)], concurrency=10)
        task = asyncio.ensure_future(fastreq_async([server.url("/x/stall?seconds=30")] * 2, max_retries=0))
        one = await fastreq_async(server.url("/x/json"))
        single = asyncio.ensure_future(fastreq_async(server.url("/x/stall?seconds=30"), max_retries=0))
        await asyncio.sleep(0.2)
        task.cancel()
        single.cancel()
        for t in (task, single):
            with pytest.raises(asyncio.CancelledError):
                await t
        return res, one

    res, one = run(main())
    assert [r["query"]["i"][0] for r in res] == [str(i) for i in range(50)]
    assert one["id"] == JSON_DOC_ID
    assert len(started) == 2 and len(waits) == 2
    assert fastreq.engine.live_handles() == 0 and fastreq.engine.live_buffers() == 0


def test_as_completed_async(server):
    async def main():
        urls = [server.url("/x/stall?seconds=0.4"), server.url("/x/json"), server.url("/x/reset")]
        seen = []
        async with FastRequests(max_retries=0) as c:
            async for done in c.as_completed(urls, keys=["slow", "fast", "bad"]):
                assert isinstance(done, Completion)
                seen.append(done)
        return seen

    seen = run(main())
    assert [d.key for d in seen][-1] == "slow"  # the stalled one finishes last
    by_key = {d.key: d for d in seen}
    assert by_key["fast"].result["id"] == JSON_DOC_ID and by_key["fast"].ok
    assert by_key["bad"].error is not None and by_key["bad"].result is None and not by_key["bad"].ok
    assert by_key["slow"].index == 0 and by_key["slow"].url.endswith("seconds=0.4")


def test_as_completed_async_early_exit_cancels(server):
    async def main():
        got = None
        it = fastreq.fastreq_as_completed_async(
            [server.url("/x/json")] + [server.url("/x/stall?seconds=30")] * 3, max_retries=0)
        async with it:
            async for done in it:
                got = done
                break
        return got

    got = run(main())
    assert got.result["id"] == JSON_DOC_ID
    assert fastreq.engine.live_handles() == 0


def test_backend_request(server):
    async def main():
        async with FastRequests(max_retries=1, backoff_multiplier=0.01) as c:
            r = await c.backend.request(fastreq.RequestConfig(server.url("/x/echo"), method="POST", json=[1]))
            with pytest.raises(fastreq.RetryExhaustedError):
                await c.backend.request(fastreq.RequestConfig("http://127.0.0.1:1/", timeout=1))
            return r

    r = run(main())
    assert r.status_code == 200 and r.json_data["json"] == [1]


def test_fastreq_sync_inside_running_loop(server):
    """Jupyter runs code inside an event loop: fastreq() must still work."""

    async def main():
        return fastreq.fastreq([server.url("/x/json")] * 3)

    assert [r["id"] for r in run(main())] == [JSON_DOC_ID] * 3


def test_single_request_values_failures_and_cancel(server):
    """await request(url) (one request, one value): every return type it
    serves, a failure raising or giving None, and a cancelled call leaving
    nothing behind while the client keeps working."""

    async def main():
        async with FastRequests(max_retries=0) as c:
            js = await c.request(server.url("/x/json"))
            text = await c.request(server.url("/x/proto"), return_type="text")
            body = await c.request(server.url("/x/bytes/100000"), return_type="content")
            with pytest.raises(PartialFailureError) as ei:
                await c.request(server.url("/x/reset"))
            async with FastRequests(max_retries=0, return_none_on_failure=True) as quiet:
                none = await quiet.request(server.url("/x/status/503"))
            many = await asyncio.gather(*[c.request(server.url(f"/x/echo?i={i}")) for i in range(30)])
            stalled = asyncio.ensure_future(c.request(server.url("/x/stall?seconds=30")))
            await asyncio.sleep(0.2)
            # the client, the stalled request's batch, and the loop's hub
            assert fastreq.engine.live_handles() == 3
            stalled.cancel()
            with pytest.raises(asyncio.CancelledError):
                await stalled
            after = await c.request(server.url("/x/json"))
        return js, text, body, ei.value, none, many, after

    js, text, body, err, none, many, after = run(main())
    assert js["id"] == JSON_DOC_ID and after["id"] == JSON_DOC_ID
    assert text == "HTTP/1.1"
    assert isinstance(body, bytes) and len(body) == 100000
    assert err.total == 1 and err.successes == 0
    assert none is None
    assert [r["query"]["i"][0] for r in many] == [str(i) for i in range(30)]
    assert fastreq.engine.live_handles() == 0 and fastreq.engine.live_buffers() == 0


def _open_fds() -> int:
    import os
    return len(os.listdir("/proc/self/fd"))


def test_single_requests_leave_no_descriptor_behind(server):
    """await request(url) waits on its batch's descriptor: many in flight at
    once each get their own result, and no descriptor outlives its request."""

    async def main():
        async with FastRequests(max_retries=0, concurrency=16) as c:
            await c.request(server.url("/x/json"))
            fds = _open_fds()
            for i in range(100):
                assert (await c.request(server.url(f"/x/echo?i={i}")))["query"]["i"] == [str(i)]
            assert _open_fds() == fds  # one kept connection, no descriptor left per call
            many = await asyncio.gather(*[c.request(server.url(f"/x/echo?i={i}")) for i in range(200)])
            assert _open_fds() <= fds + 16  # at most the pool's new connections
            return many

    many = run(main())
    assert [r["query"]["i"][0] for r in many] == [str(i) for i in range(200)]
    assert fastreq.engine.live_handles() == 0 and fastreq.engine.live_buffers() == 0


def test_one_client_serves_several_loops(server):
    """A client used from one asyncio.run and then another, and by loops
    running in two threads at once, answers each request of each loop."""
    import threading

    c = FastRequests(max_retries=0, concurrency=8)
    try:
        assert run(c.request(server.url("/x/json")))["id"] == JSON_DOC_ID
        assert run(c.request(server.url("/x/json")))["id"] == JSON_DOC_ID

        out: dict = {}

        def loop_thread(name):
            async def many():
                return [await c.request(server.url(f"/x/echo?t={name}&i={i}")) for i in range(40)]

            out[name] = asyncio.run(many())

        threads = [threading.Thread(target=loop_thread, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for name in ("a", "b"):
            assert [(r["query"]["t"][0], r["query"]["i"][0]) for r in out[name]] == [
                (name, str(i)) for i in range(40)]
    finally:
        c.close_sync()
    assert fastreq.engine.live_handles() == 0 and fastreq.engine.live_buffers() == 0


def test_closing_the_client_ends_waiting_single_requests(server):
    """Single requests waiting when the client closes end with the
    cancellation, not a hang."""

    async def main():
        c = FastRequests(max_retries=0)
        tasks = [asyncio.ensure_future(c.request(server.url("/x/stall?seconds=30"))) for _ in range(3)]
        await asyncio.sleep(0.2)
        await c.close()
        return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)

    started = time.monotonic()
    results = run(main())
    assert time.monotonic() - started < 5
    assert all(isinstance(r, fastreq.FastRequestsError) for r in results), results
    assert fastreq.engine.live_handles() == 0 and fastreq.engine.live_buffers() == 0


def test_single_request_cancel_frees_the_slot_and_bad_requests_raise(server):
    """Cancelling an awaited single request cancels it in the engine: with
    concurrency 1 the next request does not wait behind it. A request the
    engine refuses raises as request_sync does."""

    async def main():
        async with FastRequests(max_retries=0, concurrency=1) as c:
            stalled = asyncio.ensure_future(c.request(server.url("/x/stall?seconds=30")))
            await asyncio.sleep(0.2)
            stalled.cancel()
            with pytest.raises(asyncio.CancelledError):
                await stalled
            started = time.monotonic()
            after = await asyncio.wait_for(c.request(server.url("/x/json")), 10)
            took = time.monotonic() - started
            with pytest.raises(fastreq.FastRequestsError) as async_err:
                await c.request("ftp://example.invalid/")
            with pytest.raises(fastreq.FastRequestsError) as sync_err:
                c.request_sync("ftp://example.invalid/")
            return after, took, async_err.value, sync_err.value

    after, took, async_err, sync_err = run(main())
    assert after["id"] == JSON_DOC_ID and took < 5
    assert type(async_err) is type(sync_err) and str(async_err) == str(sync_err)
    assert fastreq.engine.live_handles() == 0 and fastreq.engine.live_buffers() == 0


def test_hubs_of_a_loop_without_weak_references():
    """A loop type that takes no weak reference (as some C-implemented
    loops) still gets one hub, kept until the client's hubs close."""

    class SlotLoop:
        __slots__ = ("readers",)

        def __init__(self):
            self.readers = {}

        def add_reader(self, fd, cb):
            self.readers[fd] = cb

        def remove_reader(self, fd):
            return self.readers.pop(fd, None) is not None

        def is_closed(self):
            return False

        def is_running(self):
            return False

    hubs, loop = _drive.Hubs(), SlotLoop()
    before = fastreq.engine.live_handles()
    hub = hubs.of(loop)
    assert hub is not None and hubs.of(loop) is hub and list(loop.readers) == [hub.fd]
    assert fastreq.engine.live_handles() == before + 1
    hubs.close()
    assert hub.h is None and not loop.readers and fastreq.engine.live_handles() == before


def test_a_loop_that_is_gone_frees_its_hub(server):
    """A client awaited from one asyncio.run after another keeps no hub
    (nor loop) of the loops that are gone."""
    import gc

    with FastRequests() as c:
        for _ in range(5):
            run(c.request(server.url("/x/json")))
        gc.collect()
        assert fastreq.engine.live_handles() == 1  # the client alone
