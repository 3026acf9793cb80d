"""Running one batch: draining completion records and turning them into
results, synchronously (no event loop) or under asyncio.

Per response the Python work is: one tuple from ``struct.iter_unpack``
over the drained chunk, one ``ctypes.string_at`` copy of the body, one
JSON parse (orjson when installed, see :mod:`._json`) and a list store. The
metadata JSON of a record is decoded only for return type "response", for
"text" when it names a charset (of its Content-Type) and for failures.
Each drained chunk is released with one ``fastreq_records_release`` call.

Go never calls into Python: records wait in the batch's queue. Unless
results are wanted as they land (progress, as-completed), the library
wakes the driver once per bunch of records (fastreq_batch_set_wake), not
per burst. Then

* the synchronous driver waits in slices of ``WAIT_SLICE_MS`` with the GIL
  released (ctypes.CDLL), so Ctrl-C raises KeyboardInterrupt within a slice,
  in ``fastreq_batch_next`` (wait and drain: one call per wakeup);
* the asyncio driver watches the batch's eventfd with ``loop.add_reader``
  or, where the loop has no add_reader (Windows' Proactor) or the library
  gives no descriptor, runs one helper thread blocked in
  ``fastreq_batch_wait`` that hands over with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import re
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from . import _ffi, _json
from ._encode import RT_CONTENT, RT_JSON, RT_RESPONSE, RT_TEXT, Plan
from ._handles import BatchHandle, ClientHandle, _raise_for, check_rc
from .exceptions import ClientClosedError, FailureDetails, error_from_json, redact_url
from .models import NormalizedResponse, decode_text

log = logging.getLogger("fastreq")

WAIT_SLICE_MS = 100
#: Chunks drained per event-loop callback before yielding to other tasks.
ASYNC_CHUNKS_PER_CALLBACK = 16
#: Coalescing: when a wakeup found fewer than COALESCE_BELOW records, the
#: next drain waits COALESCE_S so that records arrive in bunches: each
#: wakeup costs calls into the library and a thread switch, a bunch is
#: drained for the price of one. It adds at most COALESCE_S of latency.
#:
#: Not with GOMAXPROCS=1 set in the environment: a Python thread that
#: returned from a call into the library keeps the Go runtime's only
#: scheduler slot until Go's monitor takes it back, so the engine stalls
#: while Python sleeps. There the drivers go straight back into the
#: library. (Otherwise the library has taken a second slot before any wait
#: returns early, also on one CPU: capi/slots.go.)
COALESCE_BELOW = 32
COALESCE_S = 0.0005
#: Records per wakeup of a driver that only wants the whole batch (see
#: BatchRun.bunch); the library also wakes it once 4 MiB of bodies wait
#: and at the last result.
BUNCH = 1024


def _coalesce_below() -> int:
    return 0 if _ffi.single_scheduler_slot() else COALESCE_BELOW


_iter_unpack = _ffi.RECORD_STRUCT.iter_unpack
_unpack_record = _ffi.RECORD_STRUCT.unpack_from
_ctypes_string_at = ctypes.string_at
#: ctypes.string_at takes its size as a C int.
_BIG = 2**31 - 1


def _string_at(ptr: int, size: int) -> bytes:
    """Copy size bytes at ptr (any size)."""
    if size < _BIG:
        return _ctypes_string_at(ptr, size)
    return (ctypes.c_char * size).from_address(ptr).raw  # pragma: no cover - needs a 2 GiB body


_RECORD_SIZE = _ffi.RECORD_SIZE
#: A body that does not decode as JSON (invalid, or nested too deep) gives
#: None, never an exception that would end the batch.
_DECODE_ERRORS = _json.DECODE_ERRORS
_CHUNK = _ffi.DRAIN_CHUNK


#: Record buffers of finished batches, reused by the next ones (a stack;
#: list.append/pop are atomic, so threads may share it).
_buffers: List[Any] = []


def _take_buffer() -> Any:
    try:
        return _buffers.pop()
    except IndexError:
        raw = bytearray(_RECORD_SIZE * _CHUNK)
        return raw, _ffi.RecordArray.from_buffer(raw), memoryview(raw)


def _give_buffer(buf: Any) -> None:
    """Keep a record buffer for the next batch (at most 8 are kept)."""
    if len(_buffers) < 8:
        _buffers.append(buf)


_LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def forward_engine_logs() -> None:
    """Hand the engine's waiting log records (retries, proxies cooling
    down, ...) to the "fastreq" logger. Go never calls into Python, so they
    wait in the library until a batch ends and this drains them."""
    lb = _ffi.loaded_library()
    if lb is None or not lb.log_waiting.value:
        return
    out = ctypes.c_void_p(None)
    n = lb.log_drain(ctypes.byref(out))
    if not out.value:
        return
    text = _ffi.take_string(out.value)
    if n <= 0 or not text:
        return
    for rec in _json.loads(text):
        attrs = rec.get("attrs") or {}
        detail = " ".join(f"{k}={v}" for k, v in attrs.items())
        log.log(_LOG_LEVELS.get(rec.get("level"), logging.INFO), "%s%s%s", rec.get("message", ""),
                " " if detail else "", detail)


class BatchRun:
    """The Python side of one submitted batch: results, failures and the
    record processing. Not thread-safe: one driver pumps it.

    Created before the submit (so that the caller goes straight from the
    submit into the first wait), then :meth:`attach`-ed to the batch, and
    :meth:`close`-d once (which frees the batch)."""

    def __init__(
        self,
        plan: Plan,
        *,
        parse_func: Optional[Callable[[Any], Any]] = None,
        notify: Optional[Callable[[int], None]] = None,
        collect: bool = False,
        backend_name: Optional[str] = None,
    ) -> None:
        lb = _ffi.lib()
        self.batch: Optional[BatchHandle] = None
        self.h = 0
        self.plan = plan
        self._drain = lb.batch_drain
        self._next = lb.batch_next
        self._release = lb.records_release
        self._buf = _take_buffer()
        _, self._arr, self._mv = self._buf  # the bytearray lives on in self._buf
        self.total = plan.n
        self.remaining = plan.n
        self.results: List[Any] = [None] * plan.n
        self.failures: Dict[int, FailureDetails] = {}
        self.completed: Optional[Deque[int]] = deque() if collect else None
        self.more = False
        self.parse_func = parse_func
        self.notify = notify
        self.backend_name = backend_name

    def attach(self, batch: BatchHandle) -> None:
        self.batch = batch
        self.h = batch.handle

    def bunch(self) -> bool:
        """When nobody looks at results before the batch ends (no progress,
        no as-completed consumer, no stream callback waiting for chunks),
        ask the library to wake the driver per ``BUNCH`` records rather
        than per burst. Returns whether it did."""
        plan = self.plan
        if (self.notify is not None or self.completed is not None or self.total <= 1
                or plan.stream_cb is not None or plan.stream_cbs is not None):
            return False
        assert self.batch is not None
        self.batch.set_wake(BUNCH)
        return True

    def close(self, cancel: bool = False) -> None:
        """Free the batch (cancelling it first when asked and unfinished)
        and give the record buffer back. Idempotent."""
        batch, self.batch = self.batch, None
        if batch is not None:
            if cancel and self.remaining > 0:
                batch.cancel()
            batch.close()
        buf, self._buf = self._buf, None
        if buf is not None:
            _give_buffer(buf)
        if batch is not None:
            forward_engine_logs()

    # ---- draining ------------------------------------------------------

    def pump(self, max_chunks: int = 0, wait_ms: Optional[int] = None) -> int:
        """Drain and process every waiting record (at most max_chunks
        chunks when > 0). With wait_ms, first wait up to that long for
        records (GIL released), in the same library call as the first
        drain. Returns how many records it drained; sets ``self.more``
        when it stopped early with records possibly still waiting."""
        drain, release, h, arr = self._drain, self._release, self.h, self._arr
        chunks = 0
        total = 0
        n: int
        self.more = False
        while True:
            if wait_ms is None:
                n = drain(h, arr, _CHUNK)
            else:
                n = self._next(h, arr, _CHUNK, wait_ms)
                wait_ms = None
            if n <= 0:
                if n < 0:
                    check_rc(n, "draining the batch")
                return total
            try:
                self._process(n)
            finally:
                release(arr, n)
            total += n
            if n < _CHUNK:
                return total
            chunks += 1
            if max_chunks and chunks >= max_chunks:
                self.more = True
                return total

    def _process(self, n: int) -> None:
        plan = self.plan
        results = self.results
        string_at = _ctypes_string_at
        big = _BIG
        loads = _json.loads
        rtype = plan.rtype
        rtypes = plan.rtypes
        parse = self.parse_func
        notify = self.notify
        completed = self.completed
        save_paths = plan.save_paths
        simple = rtypes is None and parse is None and notify is None and completed is None and save_paths is None
        done = 0
        if simple and rtype == RT_JSON:
            # The hot loop of the common case.
            for idx, typ, _status, err, _r, bptr, blen, mptr, mlen in _iter_unpack(self._mv[: n * _RECORD_SIZE]):
                if typ or err:
                    if typ:
                        self._chunk(idx, _string_at(bptr, blen) if blen else b"")
                    else:
                        done += 1
                        self._fail(idx, _status, mptr, mlen)
                    continue
                done += 1
                if blen:
                    try:
                        results[idx] = loads(string_at(bptr, blen) if blen < big else _string_at(bptr, blen))
                    except _DECODE_ERRORS:
                        pass
            self.remaining -= done
            return

        for idx, typ, status, err, _r, bptr, blen, mptr, mlen in _iter_unpack(self._mv[: n * _RECORD_SIZE]):
            if typ:
                self._chunk(idx, _string_at(bptr, blen) if blen else b"")
                continue
            done += 1
            if err:
                self._fail(idx, status, mptr, mlen)
            else:
                rt = rtype if rtypes is None else rtypes[idx]
                v: Any
                if rt == RT_RESPONSE:
                    v = self._response(idx, status, bptr, blen, mptr, mlen)
                else:
                    v = _value(rt, _string_at(bptr, blen) if blen else b"",
                               _string_at(mptr, mlen) if rt == RT_TEXT and mptr else None)
                if save_paths is not None and rt != RT_RESPONSE and idx in save_paths:
                    v = save_paths[idx]
                if parse is not None:
                    v = parse(v)
                results[idx] = v
            if completed is not None:
                completed.append(idx)
            if notify is not None:
                self.remaining -= done
                done = 0
                notify(self.total - self.remaining)
        self.remaining -= done

    def _chunk(self, idx: int, chunk: bytes) -> None:
        plan = self.plan
        cb = plan.stream_cb
        if plan.stream_cbs is not None:
            cb = plan.stream_cbs.get(idx, cb)
        if cb is not None:
            cb(chunk)

    def _fail(self, idx: int, status: int, mptr: int, mlen: int) -> None:
        self.failures[idx] = _failure(self.plan.urls[idx], idx, status, _copy(mptr, mlen), self.backend_name)
        self.results[idx] = None

    def _response(self, idx: int, status: int, bptr: int, blen: int, mptr: int, mlen: int) -> NormalizedResponse:
        meta = _meta(_copy(mptr, mlen))
        return NormalizedResponse.from_parts(
            int(meta.get("status_code") or status), meta.get("headers") or {},
            _string_at(bptr, blen) if blen else b"", meta.get("url") or self.plan.urls[idx],
            http_version=meta.get("http_version") or "",
            elapsed=(meta.get("elapsed_ns") or 0) / 1e9,
            attempts=int(meta.get("attempts") or 1),
            path=meta.get("path") or None,
        )


def _copy(ptr: int, size: int) -> Optional[bytes]:
    """The size bytes at ptr, or None for a NULL pointer."""
    return _string_at(ptr, size) if ptr else None


def _value(rt: int, body: bytes, meta: Optional[bytes]) -> Any:
    """A successful body as return type rt (not "response"). "text" needs
    the record's metadata (its Content-Type header); the others ignore it."""
    if rt == RT_JSON:
        if body:
            try:
                return _json.loads(body)
            except _DECODE_ERRORS:
                pass
        return None
    if rt == RT_CONTENT:
        return body
    if rt == RT_TEXT:
        if meta is None or _names_charset(meta) is None:  # UTF-8: no need to parse the metadata
            return body.decode("utf-8", "replace")
        return decode_text(body, (_meta(meta).get("headers") or {}).get("content-type"))
    return None  # RT_STREAM: the chunks went to stream_callback


#: Whether a record's raw metadata mentions a charset at all (most do not:
#: then a "text" body is UTF-8 without parsing the metadata).
_names_charset = re.compile(rb"charset", re.IGNORECASE).search


def _meta(raw: Optional[bytes]) -> Dict[str, Any]:
    """A record's metadata JSON as a dict ({} when there is none)."""
    if not raw:
        return {}
    try:
        m = _json.loads(raw)
    except ValueError:
        return {}
    return m if isinstance(m, dict) else {}


def _failure(url: str, idx: int, status: int, meta_raw: Optional[bytes],
             backend_name: Optional[str]) -> FailureDetails:
    """The FailureDetails of a failed record (its metadata holds the error)."""
    meta = _meta(meta_raw)
    url = redact_url(url)  # FailureDetails.url, the exception's url and the log line show no password
    err = meta.get("error")
    exc = error_from_json(err, backend_name=backend_name, status=status, default_url=url)
    attempts = int(meta.get("attempts") or (err or {}).get("attempts") or 1)
    if log.isEnabledFor(logging.DEBUG):
        log.debug("request %d failed: %s: %s", idx, url, exc)
    return FailureDetails(url=url, error=exc, attempt=max(attempts - 1, 0), index=idx)


# ---- synchronous driver -------------------------------------------------


def _one_value(lb: Any, buf: Any, n: int, url: str, rtype: int,
               backend_name: Optional[str]) -> "tuple[Any, Optional[FailureDetails]]":
    """The value and None, or None and the failure, of the record that
    fastreq_batch_next put in buf (n is what it returned); released after."""
    check_rc(n, "waiting for the request")
    try:
        _idx, _typ, status, e, _r, bptr, blen, mptr, mlen = _unpack_record(buf[2])
        if e:
            return None, _failure(url, 0, status, _copy(mptr, mlen), backend_name)
        return _value(rtype, _string_at(bptr, blen) if blen else b"", None), None
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
    h = client.submit_raw(payload, backend_name=backend_name, need_meta=False)
    buf = _take_buffer()
    try:
        n = 0
        while n == 0:  # in slices, so that Ctrl-C gets through
            n = lb.batch_next(h, buf[1], 1, WAIT_SLICE_MS)
        return _one_value(lb, buf, n, url, rtype, backend_name)
    finally:
        _one_end(lb, h, buf)


async def run_one_async(client: ClientHandle, payload: bytes, url: str, rtype: int,
                        backend_name: Optional[str]) -> "tuple[Any, Optional[FailureDetails]]":
    """:func:`run_one_sync` for ``await request(url)``: the request goes
    through the client's mailbox, which its event loop watches once for
    every single request (:class:`ClientWatch`), so the loop's thread never
    enters the engine's runtime. Without one (a loop without add_reader, or
    a client already watched by a loop running in another thread) it is a
    batch of its own, waited for on the batch's descriptor. Cancelling the
    awaiting task cancels the request."""
    loop = asyncio.get_running_loop()
    watch = ClientWatch.of(client, loop)
    if watch is not None:
        status, e, refused, body, meta = await watch.run(payload)
        if not e:
            return _value(rtype, body, None), None
        if refused:  # as a strict submit raises
            raise error_from_json(_meta(meta).get("error"), backend_name=backend_name)
        return None, _failure(url, 0, status, meta, backend_name)
    lb = _ffi.lib()
    h = client.submit_raw(payload, backend_name=backend_name, need_meta=False)
    buf = _take_buffer()
    try:
        return _one_value(lb, buf, await _own_fd_next(lb, loop, h, buf), url, rtype, backend_name)
    finally:
        _one_end(lb, h, buf)  # wakes _wait_one too


async def _own_fd_next(lb: Any, loop: asyncio.AbstractEventLoop, h: int, buf: Any) -> int:
    """Wait for the batch's record on its own eventfd (or, where the loop
    has no add_reader, in a worker thread) and drain it into buf."""
    fd = check_rc(lb.batch_fd(h), "fastreq_batch_fd")  # readable at once if the result is in
    n = 0
    try:
        while n == 0:
            ready = loop.create_future()
            loop.add_reader(fd, _resolve, ready)
            try:
                await ready
            finally:
                loop.remove_reader(fd)
            n = lb.batch_next(h, buf[1], 1, 0)
    except NotImplementedError:  # no add_reader (Windows' Proactor)
        check_rc(await loop.run_in_executor(None, _wait_one, lb, h), "waiting for the request")
        n = lb.batch_next(h, buf[1], 1, 0)
    return n


def _resolve(fut: "asyncio.Future[None]") -> None:
    if not fut.done():  # the reader may fire again before the task runs
        fut.set_result(None)


class ClientWatch:
    """One event loop's watch of a client's mailbox (fastreq_client_mailbox):
    its descriptor is registered with ``add_reader`` once per client and
    loop, posting and taking are plain C calls (the loop's thread never
    enters the engine's runtime), and each result wakes the task that
    posted it, however many are in flight.

    The loop watches a duplicate of the descriptor, which stays valid until
    the watch is closed. The mailbox itself lives until the client closes
    (:meth:`ClientHandle._release` frees it through :meth:`close`)."""

    CHUNK = 64
    _lock = threading.Lock()  # making watches (rare)

    def __init__(self, client: ClientHandle, loop: asyncio.AbstractEventLoop) -> None:
        lb = _ffi.lib()
        if client.mailbox is None:
            out = ctypes.c_void_p()
            check_rc(lb.client_mailbox(client.handle, ctypes.byref(out)), "fastreq_client_mailbox")
            client.mailbox = out.value
        self.client = client
        self.loop = loop
        self.mbox: Optional[int] = client.mailbox
        self.waiters: Dict[int, "asyncio.Future[Tuple[int, int, int, bytes, Optional[bytes]]]"] = {}
        self.records = (_ffi.Record * self.CHUNK)()
        self.view = memoryview(self.records).cast("B")
        self.fd = os.dup(lb.mailbox_fd(self.mbox))
        try:
            loop.add_reader(self.fd, self._on_ready)
        except BaseException:
            os.close(self.fd)
            raise

    @classmethod
    def of(cls, client: ClientHandle, loop: asyncio.AbstractEventLoop) -> "Optional[ClientWatch]":
        """The client's watch on loop, made (or moved from a loop that no
        longer runs) on first use; None where it cannot be had."""
        watch: Optional[ClientWatch] = client.watch
        if watch is not None and watch.loop is loop:
            return watch
        with cls._lock:
            watch = client.watch
            if watch is not None and watch.loop is not loop:
                if watch.loop.is_running():
                    return None  # another thread's loop watches this client
                watch.close(free=False)
            try:
                client.watch = watch = cls(client, loop)
            except NotImplementedError:  # no add_reader (Windows' Proactor)
                client.watch = None
                return None
            return watch

    async def run(self, payload: bytes) -> "tuple[int, int, int, bytes, Optional[bytes]]":
        """Post one request (a JSON array of one) and return its record:
        status, error code, refused (1: it never started), body, meta."""
        lb = _ffi.lib()
        tag = next(self.client.mail_tags)  # never reused: a moved watch may meet older records
        fut: "asyncio.Future[Tuple[int, int, int, bytes, Optional[bytes]]]" = self.loop.create_future()
        self.waiters[tag] = fut
        try:
            rc = lb.mailbox_post(self.mbox, payload, len(payload), tag) if self.mbox else _ffi.ECLOSED
            if rc != _ffi.OK:
                _raise_for(rc, None, "posting the request")
            return await fut
        except asyncio.CancelledError:
            if self.mbox and (fut.cancelled() or not fut.done()):  # no result came: stop the request
                lb.mailbox_cancel(self.mbox, tag)
            raise
        finally:
            self.waiters.pop(tag, None)

    def _on_ready(self) -> None:
        lb = _ffi.lib()
        mbox, waiters, string_at = self.mbox, self.waiters, _ctypes_string_at
        n = self.CHUNK
        while n == self.CHUNK and mbox:
            n = lb.mailbox_take(mbox, self.records, self.CHUNK)
            if n <= 0:
                return
            try:
                for tag, _t, status, e, refused, bptr, blen, mptr, mlen in _iter_unpack(
                        self.view[: n * _RECORD_SIZE]):
                    fut = waiters.pop(tag, None)
                    if fut is not None and not fut.done():
                        fut.set_result((status, e, refused, string_at(bptr, blen) if blen else b"",
                                        string_at(mptr, mlen) if mptr else None))
            finally:
                lb.mailbox_release(mbox, self.records, n)

    def close(self, free: bool = True) -> None:
        """Stop watching; with free (the client closed), end every waiting
        request with ClientClosedError and free the mailbox. Safe from any
        thread."""
        loop = self.loop
        try:
            same_thread = asyncio.get_running_loop() is loop
        except RuntimeError:
            same_thread = False
        if loop.is_closed() or same_thread or not loop.is_running():
            self._close_now(free)
        else:
            try:
                loop.call_soon_threadsafe(self._close_now, free)
            except RuntimeError:  # closed in the meantime
                self._close_now(free)

    def _close_now(self, free: bool) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            if not self.loop.is_closed():
                self.loop.remove_reader(fd)
            os.close(fd)
        if self.client.watch is self:
            self.client.watch = None
        if not free:
            return
        mbox, self.mbox = self.mbox, None
        if mbox:
            _ffi.lib().mailbox_free(mbox)
        waiters, self.waiters = self.waiters, {}
        for fut in waiters.values():
            if not fut.done():
                fut.set_exception(ClientClosedError("the client was closed while the request ran"))


def _wait_one(lb: Any, h: int) -> int:
    """Wait for the record in a worker thread; the loop drains it (a thread
    that drained could lose the record to a cancellation)."""
    n = 0
    while n == 0:  # a freed batch gives EBADHANDLE
        n = lb.batch_wait(h, WAIT_SLICE_MS)
    return n


def run_sync(run: BatchRun) -> None:
    """Wait (GIL released, in slices) and pump until the batch is done. The
    caller cancels/frees on exceptions.

    When nobody looks at results before the end, it is woken per bunch of
    records (:meth:`BatchRun.bunch`) and needs no coalescing of its own."""
    if run.bunch():
        while run.remaining > 0:
            run.pump(wait_ms=WAIT_SLICE_MS)
        return
    sleep = time.sleep
    below = _coalesce_below()
    while run.remaining > 0:
        if 0 < run.pump(wait_ms=WAIT_SLICE_MS) < below and run.remaining > 0:
            sleep(COALESCE_S)


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
        self.fd = -1
        self.reader = False
        self.thread: Optional[threading.Thread] = None
        self.stopping = False
        self.scheduled = False
        self.timer: Optional[asyncio.TimerHandle] = None
        self.small = False
        self.below = _coalesce_below()

    def start(self) -> None:
        assert self.run.batch is not None
        if not self.wake_each and self.run.bunch():
            self.below = 0  # woken per bunch: no coalescing timer
        fd = self.run.batch.fd()
        if fd >= 0:
            try:
                self.loop.add_reader(fd, self._on_readable)
                self.fd = fd
                self.reader = True
            except (NotImplementedError, AttributeError, RuntimeError):
                self.reader = False
        if not self.reader:
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
        # Reading resets the eventfd; the library writes it again only when
        # its queue goes from empty to non-empty, i.e. after a drain that
        # emptied it. So a delayed drain (coalescing) loses no wakeup.
        try:
            os.read(self.fd, 8)
        except OSError:  # BlockingIOError: already reset
            pass
        if self.timer is not None or self.scheduled:
            return
        if self.small:
            self.timer = self.loop.call_later(COALESCE_S, self._timer_fired)
        else:
            self._pump()

    def _timer_fired(self) -> None:
        self.timer = None
        self._pump()

    def _pump(self) -> None:
        self.scheduled = False
        if self.error is not None or self.stopping:
            return
        run = self.run
        try:
            got = run.pump(ASYNC_CHUNKS_PER_CALLBACK)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            self.error = exc
            self._wake()
            return
        if got:
            self.small = got < self.below and run.remaining > 0
        if run.more:
            self._schedule()
        if self._ready():
            self._wake()

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

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
                if self.small:
                    time.sleep(COALESCE_S)
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
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.reader:
            self.reader = False
            try:
                self.loop.remove_reader(self.fd)
            except Exception:  # pragma: no cover - loop already closed
                pass
        t = self.thread
        if t is not None:
            self.thread = None
            if t is not threading.current_thread():
                t.join(timeout=2 * WAIT_SLICE_MS / 1000 + 1)
