"""(fastreq addition) The engine's loopback bench server, for ``fastreq bench``.

``fastreq_bench_server_start``/``_stop`` of include/fastreq.h ("Bench
server"): a Go HTTP server on 127.0.0.1 (a port the system picks) that
answers every path with 200 and a fixed body, over HTTP/1.1 and h2c. It runs
inside this process (on the engine's Go runtime) from the construction of a
:class:`BenchServer` until :meth:`BenchServer.close` or the end of the
process, and only when asked.

The two prototypes are declared here, on the library that
:func:`fastreq._ffi.lib` loads, rather than in its symbol table: the
server is a tool of the command line, not part of the request API.
"""

from __future__ import annotations

import ctypes
import sys
from ctypes import POINTER, c_int32, c_int64, c_uint64, c_void_p
from typing import Any, List

from . import _ffi
from ._handles import NativeHandle, call_checked
from .exceptions import FastRequestsError

#: name -> (restype, argtypes), as _ffi.SYMBOLS; char** out-parameters as
#: void* so the strings can be freed.
_PROTOTYPES = {
    "fastreq_bench_server_start": (c_int32, [c_int64, POINTER(c_uint64), POINTER(c_void_p), POINTER(c_void_p)]),
    "fastreq_bench_server_stop": (c_int32, [c_uint64]),
}


def _function(name: str) -> Any:
    """A bench server function of the loaded library, its prototype declared
    (ctypes keeps the function object, so this is cheap and idempotent)."""
    lb = _ffi.lib()
    try:
        fn = getattr(lb.cdll, name)
    except AttributeError:
        raise FastRequestsError(f"{lb.path} has no bench server ({name}): rebuild the library") from None
    fn.restype, fn.argtypes = _PROTOTYPES[name]
    return fn


class BenchServer(NativeHandle):
    """A running bench server: ``url`` is its base URL ("http://127.0.0.1:PORT").

    Use as a context manager, or call :meth:`close`; closing twice is harmless::

        with BenchServer(body_len=128) as srv:
            fastreq([srv.url + "/json"] * 1000)
    """

    _what = "fastreq bench server"

    def __init__(self, body_len: int = 128) -> None:
        h = c_uint64(0)
        url = c_void_p(None)
        call_checked(_function("fastreq_bench_server_start"), int(body_len), ctypes.byref(h), ctypes.byref(url),
                     what="starting the bench server")
        super().__init__(int(h.value))
        self.body_len = int(body_len)
        self.url: str = _ffi.take_string(url.value) or ""

    def _release(self, h: int) -> None:
        """Stop the server: its listener and connections close."""
        _function("fastreq_bench_server_stop")(h)

    def __repr__(self) -> str:
        return f"<BenchServer {self.url} {'closed' if self.closed else 'running'}>"


def _serve_until_stdin_closes(argv: List[str]) -> int:
    """``python -m fastreq._benchserver [BODY_LEN]``: start a server, print
    its URL on one line, and stop when stdin closes (``fastreq bench`` runs
    it in a child process, so that the server's CPU is not the client's)."""
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
    sys.exit(_serve_until_stdin_closes(sys.argv[1:]))
