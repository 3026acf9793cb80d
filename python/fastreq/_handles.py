"""Owned native handles: a client and a batch of libfastreq.

:class:`NativeHandle` is the small base class that owns one integer handle
of the library (the wasmtime-py pattern): ``close()`` is idempotent and
thread-safe, the object is a context manager, ``__del__`` closes it as a
fallback, and any use after close raises a clear error. In a process forked
after the library was loaded, close() only forgets the handle: calling into
the Go runtime there would hang.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any, Optional, TypeVar

from . import _ffi
from . import _json
from .exceptions import ClientClosedError, error_from_json


def _raise_for(rc: int, err_ptr: Optional[int], what: str, backend_name: Optional[str] = None) -> None:
    """Turn a negative return code (+ optional error JSON, freed here) into
    the mapped exception."""
    text = _ffi.take_string(err_ptr)
    obj: Any = None
    if text:
        try:
            obj = _json.loads(text)
        except ValueError:
            obj = {"kind": "internal", "message": text}
    if rc == _ffi.ECLOSED:
        raise ClientClosedError(f"{what}: the client is closed")
    if rc == _ffi.EBADHANDLE:
        detail = f" ({obj.get('message')})" if isinstance(obj, dict) else ""
        raise ClientClosedError(f"{what}: the handle is closed or invalid{detail}")
    if not isinstance(obj, dict):
        obj = {"kind": "internal" if rc != _ffi.EINVAL else "validation",
               "message": f"{what} failed with {_ffi.RETURN_CODE_NAMES.get(rc, rc)}"}
    if rc == _ffi.EINVAL and obj.get("kind") not in ("validation", "configuration"):
        obj = dict(obj, kind="validation")
    raise error_from_json(obj, backend_name=backend_name)


_C = TypeVar("_C", bound="Closeable")


class Closeable:
    """A context manager whose exit, and whose ``__del__`` as a fallback,
    call :meth:`close` (which subclasses define, idempotent). The base of
    :class:`NativeHandle` and of the as-completed iterators."""

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - half-made object, interpreter shutdown etc.
            pass


class NativeHandle(Closeable):
    """Owns one library handle. Subclasses set ``_what`` and ``_release``."""

    _what = "handle"

    def __init__(self, handle: int) -> None:
        self._h = handle
        self._close_lock = threading.Lock()

    @property
    def handle(self) -> int:
        h = self._h
        if not h:
            raise ClientClosedError(f"this {self._what} is closed")
        return h

    @property
    def closed(self) -> bool:
        return not self._h

    def close(self) -> None:
        """Release the handle. Safe to call more than once, from any thread."""
        with self._close_lock:
            h, self._h = self._h, 0
        if h and not _ffi.forked():
            self._release(h)

    def _release(self, h: int) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._what} {self._h or 'closed'}>"


class ClientHandle(NativeHandle):
    """A ``fastreq_client_new`` handle."""

    _what = "fastreq client"

    @classmethod
    def new(cls, config_json: bytes, backend_name: Optional[str] = None) -> "ClientHandle":
        out = ctypes.c_uint64(0)
        call_checked(_ffi.lib().client_new, config_json, len(config_json), ctypes.byref(out),
                     what="creating the client", backend_name=backend_name)
        return cls(out.value)

    def _release(self, h: int) -> None:
        _ffi.lib().client_close(h)

    def set_cookies(self, cookies_json: bytes) -> None:
        call_checked(_ffi.lib().client_set_cookies, self.handle, cookies_json, len(cookies_json),
                     what="setting cookies")

    def reset_cookies(self) -> None:
        check_rc(_ffi.lib().client_reset_cookies(self.handle), "resetting cookies")

    def submit(self, requests_json: bytes, backend_name: Optional[str] = None,
               need_meta: bool = True, strict: bool = True) -> int:
        """Submit a JSON array of requests; returns the bare batch handle,
        which the caller frees with fastreq_batch_free (or owns as a
        :class:`BatchHandle`). strict: an invalid request fails the submit
        and nothing runs; strict=False returns without waiting for the
        engine to read the requests: an invalid one then comes back as its
        failed record, and a client closed meanwhile as the code of the
        batch's waits. need_meta=False asks the engine to skip the metadata
        of successful results (headers, final URL), which only
        return_type="response" and "text" use."""
        lb = _ffi.lib()
        out = ctypes.c_uint64(0)
        err = ctypes.c_void_p(None)
        flags = (_ffi.SUBMIT_STRICT if strict else 0) | (0 if need_meta else _ffi.SUBMIT_META_ON_FAILURE)
        try:
            rc = lb.batch_submit(self.handle, requests_json, len(requests_json), flags, ctypes.byref(out),
                                 ctypes.byref(err))
        except BaseException:
            # A signal handler's exception (Ctrl-C while the engine reads a
            # large batch) is raised as the call returns, before the caller
            # holds the batch: free what the call made.
            if out.value:
                lb.batch_free(out.value)
            if err.value:
                lb.free(err.value)
            raise
        if rc != _ffi.OK:
            _raise_for(rc, err.value, "submitting requests", backend_name)
        return out.value


class BatchHandle(NativeHandle):
    """A ``fastreq_batch_submit`` handle. ``close()`` frees the batch
    (cancelling it first if it still runs)."""

    _what = "fastreq batch"

    def _release(self, h: int) -> None:
        _ffi.lib().batch_free(h)

    def fd(self) -> int:
        return int(_ffi.lib().batch_fd(self.handle))

    def set_wake(self, min_records: int, max_delay_us: int = 0) -> None:
        """Wake waiters only per min_records records, 4 MiB of bodies, the
        last result or (max_delay_us > 0) that long after the oldest waiting
        record arrived."""
        check_rc(_ffi.lib().batch_set_wake(self.handle, min_records, max_delay_us), "fastreq_batch_set_wake")


def check_requests(requests_json: bytes) -> None:
    """Have the engine check a JSON array of requests as a strict submit
    does, running nothing: ValidationError (or ConfigurationError) when
    one is invalid."""
    call_checked(_ffi.lib().requests_check, requests_json, len(requests_json), what="checking requests")


def check_rc(rc: int, what: str) -> int:
    if rc < 0:
        _raise_for(rc, None, what)
    return rc


def call_checked(fn: Any, *args: Any, what: str, backend_name: Optional[str] = None) -> None:
    """Call the library function fn with args and its last parameter, a
    ``char** err_out``; anything but FASTREQ_OK raises the mapped error
    (the error JSON, set only on failure, is freed)."""
    err = ctypes.c_void_p(None)
    rc = fn(*args, ctypes.byref(err))
    if rc != _ffi.OK:
        _raise_for(rc, err.value, what, backend_name)


__all__ = ["Closeable", "NativeHandle", "ClientHandle", "BatchHandle", "call_checked", "check_rc", "check_requests"]
