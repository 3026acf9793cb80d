"""Driving one batch to its end: synchronously (no event loop) or under
asyncio, for a batch (:class:`~._records.BatchRun`) or, on a lean path,
a single request.

* the synchronous driver waits in slices of ``WAIT_SLICE_MS`` with the GIL
  released (ctypes.CDLL), so Ctrl-C raises KeyboardInterrupt within a slice,
  in ``fastreq_batch_next`` (wait and drain: one call per wakeup);
* the asyncio driver watches the batch's eventfd with ``loop.add_reader``
  (a single request: the descriptor of the loop's hub, watched once for
  all of them, :class:`LoopHub`) or, where the loop has no add_reader
  (Windows' Proactor), runs one helper thread blocked in
  ``fastreq_batch_wait`` that hands over with ``call_soon_threadsafe``.

Every call into the library here is plain C (no Go runs on the caller's
thread), so none of them holds up the engine.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import threading
import weakref
from typing import Any, Callable, Dict, Optional

from . import _ffi
from ._handles import ClientHandle, check_rc
from ._records import (BatchRun, _body, _copy, _failure, _give_buffer, _iter_unpack, _meta, _take_buffer,
                       _unpack_record, _value, forward_engine_logs)
from .exceptions import FailureDetails, error_from_json

WAIT_SLICE_MS = 100
#: Chunks drained per event-loop callback before yielding to other tasks.
ASYNC_CHUNKS_PER_CALLBACK = 16


# ---- synchronous driver -------------------------------------------------


def _one_value(lb: Any, buf: Any, n: int, url: str, rtype: int,
               backend_name: Optional[str]) -> "tuple[Any, Optional[FailureDetails]]":
    """The value and None, or None and the failure, of the record that
    fastreq_batch_next put in buf (n is what it returned); released after.
    The request was submitted without waiting for the engine to read it
    (see run_one_sync): one it finds invalid raises, as a strict submit
    does."""
    check_rc(n, "waiting for the request")
    try:
        _idx, _typ, status, e, _r, bptr, blen, mptr, mlen = _unpack_record(buf[2])
        if e == _ffi.ERR_VALIDATION:
            raise error_from_json(_meta(_copy(mptr, mlen)).get("error"), backend_name=backend_name)
        if e:
            return None, _failure(url, 0, status, _copy(mptr, mlen), backend_name)
        return _value(rtype, _body(bptr, blen), None), None
    finally:
        lb.records_release(buf[1], n)


def _one_end(lb: Any, h: int, buf: Any) -> None:
    """Free a one-request batch (cancelling the request when an exception
    ended the wait) and give its record buffer back."""
    lb.batch_free(h)
    _give_buffer(buf)
    forward_engine_logs()


def run_one_sync(client: ClientHandle, payload: bytes, url: str, rtype: int,
                 backend_name: Optional[str]) -> "tuple[Any, Optional[FailureDetails]]":
    """One request of return type JSON or CONTENT, start to end: the
    lean path of ``request_sync(url)``, which makes only the library calls
    and the work one record needs (no BatchRun, no batch handle object).
    Returns the value and None, or None and the failure."""
    lb = _ffi.lib()
    h = client.submit(payload, backend_name=backend_name, need_meta=False, strict=False)
    buf = _take_buffer()
    try:
        n = 0
        while n == 0:  # in slices, so that Ctrl-C gets through
            n = lb.batch_next(h, buf[1], 1, WAIT_SLICE_MS)
        return _one_value(lb, buf, n, url, rtype, backend_name)
    finally:
        _one_end(lb, h, buf)


async def run_one_async(client: ClientHandle, hubs: Hubs, payload: bytes, url: str, rtype: int,
                        backend_name: Optional[str]) -> "tuple[Any, Optional[FailureDetails]]":
    """:func:`run_one_sync` for ``await request(url)``: the loop's hub
    (:class:`LoopHub`) wakes the task when the batch has its record, or
    where the loop has no add_reader (Windows' Proactor) a worker thread
    waits. Cancelling the awaiting task cancels the request."""
    loop = asyncio.get_running_loop()
    lb = _ffi.lib()
    h = client.submit(payload, backend_name=backend_name, need_meta=False, strict=False)
    buf = _take_buffer()
    try:
        return _one_value(lb, buf, await _next_async(lb, loop, h, buf, hubs), url, rtype, backend_name)
    finally:
        _one_end(lb, h, buf)  # wakes _wait_one too


async def _next_async(lb: Any, loop: asyncio.AbstractEventLoop, h: int, buf: Any, hubs: "Hubs") -> int:
    """Wait for the batch's record (through the loop's hub, or where the
    loop has no add_reader, in a worker thread) and drain it into buf."""
    hub = hubs.of(loop)
    if hub is None:  # no add_reader (Windows' Proactor)
        check_rc(await loop.run_in_executor(None, _wait_one, lb, h), "waiting for the request")
        return int(lb.batch_next(h, buf[1], 1, 0))
    n = 0
    while n == 0:
        if hub.h is not None:
            await hub.ready(h)
        else:  # the hub closed (its client is closing): the batch's own descriptor
            await _readable(loop, check_rc(lb.batch_fd(h), "fastreq_batch_fd"))
        n = lb.batch_next(h, buf[1], 1, 0)
    return int(n)


async def _readable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready = loop.create_future()
    loop.add_reader(fd, _resolve, ready)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


class Hubs:
    """A client's hubs, one per event loop it is awaited on
    (:class:`LoopHub`), closed with the client."""

    def __init__(self) -> None:
        # By loop, held weakly (a loop that is gone frees its hub), or
        # strongly for a loop that takes no weak reference, until close.
        self._weak: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Optional[LoopHub]]" = (
            weakref.WeakKeyDictionary())
        self._strong: "Dict[asyncio.AbstractEventLoop, Optional[LoopHub]]" = {}
        self._lock = threading.Lock()

    def of(self, loop: asyncio.AbstractEventLoop) -> "Optional[LoopHub]":
        """loop's hub, made on first use; None where the loop has no
        add_reader."""
        with self._lock:
            try:
                return self._weak.get(loop) if loop in self._weak else self._strong[loop]
            except (KeyError, TypeError):
                pass
        try:
            hub: Optional[LoopHub] = LoopHub(loop)
        except (NotImplementedError, AttributeError):
            hub = None
        with self._lock:
            try:
                self._weak[loop] = hub
            except TypeError:
                self._strong[loop] = hub
        return hub

    def close(self) -> None:
        with self._lock:
            hubs = [h for h in (*self._weak.values(), *self._strong.values()) if h is not None]
            self._weak, self._strong = weakref.WeakKeyDictionary(), {}
        for hub in hubs:
            hub.close()


class LoopHub:
    """One event loop's hub (fastreq_hub_new): the loop watches its one
    descriptor for every single request of a client awaited on it,
    instead of a descriptor per request, and each READY record wakes the
    task of the batch it names."""

    CHUNK = 64

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        lb = _ffi.lib()
        out = ctypes.c_uint64()
        check_rc(lb.hub_new(ctypes.byref(out)), "fastreq_hub_new")
        self.h: Optional[int] = out.value
        self._finalizer = weakref.finalize(self, lb.batch_free, out.value)
        # The loop, weakly where it can be: Hubs holds hubs by weak keys,
        # and a hub that held its loop would keep both alive.
        try:
            self._loop: Callable[[], Optional[asyncio.AbstractEventLoop]] = weakref.ref(loop)
        except TypeError:
            self._loop = lambda: loop
        self.waiters: "Dict[int, asyncio.Future[None]]" = {}
        self.records = (ctypes.c_char * (_ffi.RECORD_SIZE * self.CHUNK))()
        self.view = memoryview(self.records).cast("B")
        self.fd = check_rc(lb.batch_fd(out.value), "fastreq_batch_fd")
        try:
            loop.add_reader(self.fd, self._on_readable)
        except BaseException:
            self._finalizer()
            raise

    async def ready(self, h: int) -> None:
        """Until batch h wakes (at once if it already has), or the hub
        closes."""
        assert self.h is not None
        fut = asyncio.get_running_loop().create_future()
        self.waiters[h] = fut
        try:
            check_rc(_ffi.lib().batch_notify(h, self.h), "fastreq_batch_notify")
            await fut
        finally:
            self.waiters.pop(h, None)

    def _on_readable(self) -> None:
        _reset(self.fd)
        drain, waiters, h = _ffi.lib().batch_drain, self.waiters, self.h
        n = self.CHUNK
        while n == self.CHUNK and h is not None:
            n = drain(h, self.records, self.CHUNK)
            if n <= 0:
                return
            for rec in _iter_unpack(self.view[: n * _ffi.RECORD_SIZE]):
                fut = waiters.pop(rec[0], None)  # READY records: index is the batch's handle
                if fut is not None:
                    _resolve(fut)

    def close(self) -> None:
        """Stop watching and free the hub, in the loop's thread; the tasks
        still waiting go on with their batches' own descriptors. Safe from
        any thread."""
        loop = self._loop()
        try:
            same_thread = asyncio.get_running_loop() is loop
        except RuntimeError:
            same_thread = False
        if loop is None or same_thread or loop.is_closed() or not loop.is_running():
            self._close_now()
            return
        try:
            loop.call_soon_threadsafe(self._close_now)
        except RuntimeError:  # closed in the meantime
            self._close_now()

    def _close_now(self) -> None:
        if self.h is None:
            return
        self.h = None
        loop = self._loop()
        if loop is not None and not loop.is_closed():
            try:
                loop.remove_reader(self.fd)
            except Exception:  # pragma: no cover - a loop shutting down
                pass
        self._finalizer()
        waiters, self.waiters = self.waiters, {}
        for fut in waiters.values():
            _resolve(fut)


def _resolve(fut: "asyncio.Future[None]") -> None:
    if not fut.done():  # the reader may fire again before the task runs
        fut.set_result(None)


def _reset(fd: int) -> None:
    """Read a batch's eventfd, which resets it. The library writes it
    again only when the records waiting next reach the wake threshold, i.e.
    after a drain, so reading before draining loses no wakeup."""
    try:
        os.read(fd, 8)
    except OSError:  # BlockingIOError: already reset
        pass


def _wait_one(lb: Any, h: int) -> int:
    """Wait for the record in a worker thread; the loop drains it (a thread
    that drained could lose the record to a cancellation)."""
    n = 0
    while n == 0:  # a freed batch gives EBADHANDLE
        n = lb.batch_wait(h, WAIT_SLICE_MS)
    return n


def run_sync(run: BatchRun) -> None:
    """Wait (GIL released, in slices) and pump until the batch is done. The
    caller cancels/frees on exceptions."""
    run.bunch()
    while run.remaining > 0:
        run.pump(wait_ms=WAIT_SLICE_MS)


# ---- asyncio driver -----------------------------------------------------


class AsyncPump:
    """Feeds a BatchRun from the event loop.

    ``wait()`` returns when the batch is done (or, with ``wake_each``,
    when new results are waiting in ``run.completed``)."""

    def __init__(self, run: BatchRun, loop: asyncio.AbstractEventLoop, *, wake_each: bool = False) -> None:
        self.run = run
        self.loop = loop
        self.wake_each = wake_each
        self.error: Optional[BaseException] = None
        self.waiter: "Optional[asyncio.Future[None]]" = None
        self.fd = -1  # watched with add_reader when >= 0
        self.thread: Optional[threading.Thread] = None
        self.stopping = False
        self.scheduled = False

    def start(self) -> None:
        assert self.run.batch is not None
        self.run.bunch()
        fd = self.run.batch.fd()
        if fd >= 0:
            try:
                self.loop.add_reader(fd, self._on_readable)
                self.fd = fd
            except (NotImplementedError, AttributeError, RuntimeError):
                pass
        if self.fd < 0:
            t = threading.Thread(target=self._thread_main, name="fastreq-batch-wait", daemon=True)
            self.thread = t
            t.start()
        # Records may already be waiting (or the batch may be empty).
        self._schedule()

    def _schedule(self) -> None:
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self._pump)

    def _on_readable(self) -> None:
        _reset(self.fd)
        if not self.scheduled:
            self._pump()

    def _pump(self) -> None:
        self.scheduled = False
        if self.error is not None or self.stopping:
            return
        run = self.run
        try:
            run.pump(ASYNC_CHUNKS_PER_CALLBACK)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            self.error = exc
            self._wake()
            return
        if run.more:
            self._schedule()
        if self._ready():
            self._wake()

    def _wake(self) -> None:
        if self.waiter is not None:
            _resolve(self.waiter)

    def _ready(self) -> bool:
        run = self.run
        return run.remaining == 0 or bool(self.wake_each and run.completed)

    async def wait(self) -> None:
        if self.error is None and not self._ready():
            self.waiter = self.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        if self.error is not None:
            err, self.error = self.error, None
            self.stopping = True
            raise err

    def _thread_main(self) -> None:
        """Fallback: block in fastreq_batch_wait (GIL released), hand over
        to the loop, and wait until the loop has drained before waiting
        again."""
        try:
            wait = _ffi.lib().batch_wait
            h = self.run.h
            while not self.stopping and self.run.remaining > 0:
                n = wait(h, WAIT_SLICE_MS)
                if self.stopping:
                    return
                if n < 0:
                    self.loop.call_soon_threadsafe(self._fail_from_thread, n)
                    return
                if n == 0:
                    continue
                ev = threading.Event()
                self.loop.call_soon_threadsafe(self._pump_then_set, ev)
                while not ev.wait(WAIT_SLICE_MS / 1000):
                    if self.stopping:
                        return
        except RuntimeError:  # the loop was closed
            return

    def _fail_from_thread(self, rc: int) -> None:
        try:
            check_rc(rc, "fastreq_batch_wait")
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            if self.error is None:
                self.error = exc
            self._wake()

    def _pump_then_set(self, ev: threading.Event) -> None:
        try:
            self._pump()
        finally:
            ev.set()

    def stop(self) -> None:
        """Stop watching. After this returns no thread touches the batch."""
        self.stopping = True
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            try:
                self.loop.remove_reader(fd)
            except Exception:  # pragma: no cover - loop already closed
                pass
        t = self.thread
        if t is not None:
            self.thread = None
            if t is not threading.current_thread():
                t.join(timeout=2 * WAIT_SLICE_MS / 1000 + 1)
