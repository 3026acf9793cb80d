"""One batch's records turned into results: :class:`BatchRun` drains
a batch's completion queue and decodes each record.

Per response the Python work is: one tuple from ``struct.iter_unpack``
over the drained chunk, one copy of the body (``ctypes.string_at``, or
``fastreq_copy_body`` into a new bytes object for a big one: see
:func:`_body`), one JSON parse (orjson when installed, see :mod:`._json`)
and a list store; return type "buffer" keeps a big body where it is
(:func:`_keep`). The
metadata JSON of a record is decoded only for return type "response", for
"text" when it names a charset (of its Content-Type) and for failures.
Each drained chunk is released with one ``fastreq_records_release`` call.

Go never calls into Python: records wait in the batch's queue, and the
library wakes the driver (:mod:`._drive`) once per bunch of records
(fastreq_batch_set_wake): per ``BUNCH`` records when nobody looks at
results before the end, per ``PEEK_BUNCH`` records or ``PEEK_DELAY_US``
when they are shown as they land (progress, as-completed), per record for
a single request or a stream.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import re
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional

from . import _ffi, _json
from ._encode import RT_BUFFER, RT_CONTENT, RT_JSON, RT_RESPONSE, RT_TEXT, Plan
from ._handles import BatchHandle, check_rc
from ._progress import Reporter
from .exceptions import FailureDetails, error_from_json, redact_url
from .models import NormalizedResponse, Timings, decode_text

log = logging.getLogger("fastreq")

#: Records per wakeup of a driver that only wants the whole batch; the
#: library also wakes it once 4 MiB of bodies wait and at the last result.
BUNCH = 1024
#: Records per wakeup, and the most a result waits, when results are shown
#: as they land.
PEEK_BUNCH = 256
PEEK_DELAY_US = 500


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


def _bytes_api() -> Any:
    """This interpreter's PyBytes_FromStringAndSize and PyBytes_AsString as
    ctypes functions of their own (ctypes.pythonapi's shared attributes keep
    their prototypes), or (None, None) without CPython's C API."""
    try:
        api = ctypes.pythonapi
        new = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_ssize_t)(("PyBytes_FromStringAndSize", api))
        data = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object)(("PyBytes_AsString", api))
    except (AttributeError, OSError, ValueError):  # pragma: no cover - not CPython
        return None, None
    return new, data


_new_bytes, _bytes_data = _bytes_api()
#: Bodies of at least this many bytes are copied by fastreq_copy_body into
#: a bytes object made for them, which makes the object's new pages present
#: in one system call instead of a fault per page; smaller ones take the
#: one call of ctypes.string_at. Stream chunks always take it: they are
#: small, and their callback mostly drops them, so their memory is reused.
_COPY_MIN = 32 << 10


def _body(ptr: int, size: int) -> bytes:
    """A body: the size bytes at ptr as a new bytes object."""
    if size < _COPY_MIN or _new_bytes is None:
        return _string_at(ptr, size) if size else b""
    body: bytes = _new_bytes(None, size)  # uninitialised, and nobody else's until it is returned
    _ffi.lib().copy_body(_bytes_data(body), ptr, size)
    return body


_RECORD_SIZE = _ffi.RECORD_SIZE
_array_meta: Any = type(ctypes.c_ubyte * 1)


# Array types of kept bodies by length: ctypes caches every type made with
# ``c_ubyte * n`` for good, so these are made directly, and the last 256
# lengths are kept.
@functools.lru_cache(maxsize=256)
def _kept_type(n: int) -> Any:
    """The ctypes array type of n bytes whose instances own the body they
    sit on: the library frees it when the instance goes."""
    free = _ffi.lib().free
    addressof = ctypes.addressof
    forked = _ffi.forked

    def __del__(self: Any) -> None:
        if not forked():  # a forked child's copy is left to its exit: the runtime is gone there
            free(addressof(self))

    return _array_meta("KeptBody", (ctypes.Array,),
                       {"_type_": ctypes.c_ubyte, "_length_": n, "__slots__": (), "__del__": __del__})


_body_field_pack = _ffi.BODY_FIELD.pack_into
_BODY_OFFSET = _ffi.BODY_OFFSET


def _keep(records: Any, k: int, ptr: int, size: int) -> memoryview:
    """Return type "buffer": the body of the k-th record of the drained
    chunk records (a writable buffer) as a read-only view. A big one is
    taken from the record (its body pointer set to NULL, so releasing the
    chunk leaves it) and freed by the library when the view's last
    reference goes; a small one (below _COPY_MIN, where the copy costs less
    than the ctypes objects that keep a body) is copied."""
    if size < _COPY_MIN:
        return memoryview(_body(ptr, size))
    t = _kept_type(size)
    # The record lets go first: if anything below fails, the body leaks,
    # which is better than two owners freeing it.
    _body_field_pack(records, k * _RECORD_SIZE + _BODY_OFFSET, 0)
    return memoryview(t.from_address(ptr)).cast("B").toreadonly()


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
    submit into the first wait), given its ``progress`` (if any), then
    :meth:`attach`-ed to the batch, and :meth:`close`-d once (which frees
    the batch and ends the progress)."""

    def __init__(
        self,
        plan: Plan,
        *,
        parse_func: Optional[Callable[[Any], Any]] = None,
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
        self.progress: Optional[Reporter] = None
        self.backend_name = backend_name

    def attach(self, batch: BatchHandle) -> None:
        self.batch = batch
        self.h = batch.handle

    def bunch(self) -> None:
        """Ask the library to wake the driver per bunch of records, as the
        module documentation says (per record for a stream: its callback
        takes chunks as they come)."""
        plan = self.plan
        if self.total <= 1 or plan.stream_cb is not None or plan.stream_cbs is not None:
            return
        assert self.batch is not None
        if self.progress is None and self.completed is None:
            self.batch.set_wake(BUNCH)
        else:
            self.batch.set_wake(PEEK_BUNCH, PEEK_DELAY_US)

    def close(self) -> None:
        """Free the batch, which ends what still runs without results, give
        the record buffer back and close the progress. Idempotent."""
        batch, self.batch = self.batch, None
        if batch is not None:
            batch.close()
        buf, self._buf = self._buf, None
        if buf is not None:
            _give_buffer(buf)
        if batch is not None:
            forward_engine_logs()
        progress, self.progress = self.progress, None
        if progress is not None:
            progress.close()

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
        notify = None if self.progress is None else self.progress.advance
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

        records = self._mv
        for k, (idx, typ, status, err, _r, bptr, blen, mptr, mlen) in enumerate(
                _iter_unpack(records[: n * _RECORD_SIZE])):
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
                elif rt == RT_BUFFER:
                    v = _keep(records, k, bptr, blen)
                else:
                    v = _value(rt, _body(bptr, blen),
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

    def _response(self, idx: int, status: int, bptr: int, blen: int, mptr: int, mlen: int) -> NormalizedResponse:
        meta = _meta(_copy(mptr, mlen))
        return NormalizedResponse.from_parts(
            int(meta.get("status_code") or status), meta.get("headers") or {},
            _body(bptr, blen), meta.get("url") or self.plan.urls[idx],
            http_version=meta.get("http_version") or "",
            elapsed=(meta.get("elapsed_ns") or 0) / 1e9,
            attempts=int(meta.get("attempts") or 1),
            path=meta.get("path") or None,
            timings=Timings.from_json(meta.get("timings")),
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
