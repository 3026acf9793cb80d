"""(fastreq addition) The engine's loopback bench server, for ``fastreq bench``.

``fastreq_bench_server_start``/``_stop`` of include/fastreq.h ("Bench
server"): a Go HTTP server on 127.0.0.1 (a port the system picks) that
answers every path with 200 and a fixed body, over HTTP/1.1 and h2c. It runs
inside this process (on the engine's Go runtime) from :meth:`BenchServer.start`
until :meth:`BenchServer.close` or the end of the process, and only when
asked.

The two prototypes are declared here, on the library that
:func:`fastreq._ffi.lib` loads, rather than in its symbol table: the
server is a tool of the command line, not part of the request API.
"""

from __future__ import annotations

import ctypes
import json
import threading
from ctypes import POINTER, c_int32, c_int64, c_uint64, c_void_p
from typing import Any, Optional

from . import _ffi
from .exceptions import FastRequestsError

_declared_for: Optional[int] = None
_lock = threading.Lock()


def _functions() -> Any:
    """(start, stop, library) with argtypes and restype declared once."""
    global _declared_for
    lb = _ffi.lib()
    cdll = lb.cdll
    with _lock:
        if _declared_for != id(cdll):
            try:
                start = cdll.fastreq_bench_server_start
                stop = cdll.fastreq_bench_server_stop
            except AttributeError:
                raise FastRequestsError(
                    f"{lb.path} has no bench server (fastreq_bench_server_start): rebuild the library"
                ) from None
            # char** out-parameters as void* so the strings can be freed.
            start.argtypes = [c_int64, POINTER(c_uint64), POINTER(c_void_p), POINTER(c_void_p)]
            start.restype = c_int32
            stop.argtypes = [c_uint64]
            stop.restype = c_int32
            _declared_for = id(cdll)
    return cdll.fastreq_bench_server_start, cdll.fastreq_bench_server_stop, lb


class BenchServer:
    """A running bench server: ``url`` is its base URL ("http://127.0.0.1:PORT").

    Use as a context manager, or call :meth:`close`; closing twice is harmless::

        with BenchServer(body_len=128) as srv:
            fastreq([srv.url + "/json"] * 1000)
    """

    def __init__(self, body_len: int = 128) -> None:
        start, _, _ = _functions()
        h = c_uint64(0)
        url = c_void_p(None)
        err = c_void_p(None)
        rc = start(int(body_len), ctypes.byref(h), ctypes.byref(url), ctypes.byref(err))
        if rc != _ffi.OK:
            text = _ffi.take_string(err.value) or _ffi.RETURN_CODE_NAMES.get(rc, str(rc))
            try:
                text = json.loads(text).get("message", text)
            except (ValueError, AttributeError):
                pass
            raise FastRequestsError(f"cannot start the bench server: {text}")
        self._h = int(h.value)
        self.body_len = int(body_len)
        self.url: str = _ffi.take_string(url.value) or ""

    @property
    def closed(self) -> bool:
        return not self._h

    def close(self) -> None:
        """Stop the server: its listener and connections close."""
        h, self._h = self._h, 0
        if h and not _ffi.forked():
            _, stop, _ = _functions()
            stop(h)

    def __enter__(self) -> "BenchServer":
        return self

    def __exit__(self, *args: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover
            pass

    def __repr__(self) -> str:
        return f"<BenchServer {self.url} {'closed' if self.closed else 'running'}>"


def _serve_until_stdin_closes(argv: "list[str]") -> int:
    """``python -m fastreq._benchserver [BODY_LEN]``: start a server, print
    its URL on one line, and stop when stdin closes (``fastreq bench`` runs
    it in a child process, so that the server's CPU is not the client's)."""
    import sys

    body_len = int(argv[0]) if argv else 128
    with BenchServer(body_len) as srv:
        sys.stdout.write(srv.url + "\n")
        sys.stdout.flush()
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":  # pragma: no cover - run by fastreq bench
    import sys

    sys.exit(_serve_until_stdin_closes(sys.argv[1:]))
