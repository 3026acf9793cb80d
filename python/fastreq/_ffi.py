"""Low-level binding to libfastreq.so (the Go engine) through ctypes.

This module finds the shared library, loads it on first use (never at
import time), checks its ABI version and declares ``argtypes``/``restype``
for every symbol of ``include/fastreq.h``. Nothing here knows about the
Python API; :mod:`fastreq._handles` builds the owned handles on top.

Library lookup order:

1. the environment variable ``FASTREQ_LIBRARY`` (a path to the library);
2. ``libfastreq.so`` (``.dylib``/``.dll``) next to this file, as installed
   by ``pip install``;
3. ``build/libfastreq.so`` of the source checkout this package lives in
   (``python/..``), for a ``PYTHONPATH=python`` development setup.

Processes: the library holds a Go runtime, which does not survive
``fork()``. Once the library is loaded, a child created by ``os.fork`` (for
instance by ``multiprocessing`` with the "fork" start method) cannot use it:
every call raises :class:`~fastreq.exceptions.ForkedProcessError` instead of
hanging. Use the "spawn" or "forkserver" start method.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys
import threading
from ctypes import (
    POINTER,
    c_char_p,
    c_int32,
    c_int64,
    c_size_t,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional

from .exceptions import ForkedProcessError, LibraryError

# ---- constants of include/fastreq.h ------------------------------------

ABI_VERSION = 2

OK = 0
EINVAL = -1
EBADHANDLE = -2
ECLOSED = -3
EINTERNAL = -4
ESYS = -5

RETURN_CODE_NAMES = {
    OK: "FASTREQ_OK",
    EINVAL: "FASTREQ_EINVAL",
    EBADHANDLE: "FASTREQ_EBADHANDLE",
    ECLOSED: "FASTREQ_ECLOSED",
    EINTERNAL: "FASTREQ_EINTERNAL",
    ESYS: "FASTREQ_ESYS",
}

SUBMIT_STRICT = 1
SUBMIT_META_ON_FAILURE = 2

#: fastreq_record_t.error of a request the engine found invalid.
ERR_VALIDATION = 1

DRAIN_CHUNK = 256


#: ``fastreq_record_t``, one completion record: index (int64), type (int32;
#: 0: a result, 1: a chunk of a streamed body), status, error, reserved
#: (int32 each), body (uint8_t*, owned by the caller once drained), body_len
#: (int64), meta (char*, NUL-terminated JSON), meta_len (int64). Records are
#: read with ``struct.iter_unpack``: a whole drained chunk in one C-level call.
RECORD_STRUCT = struct.Struct("@qiiiiPqPq")
RECORD_SIZE = RECORD_STRUCT.size
#: Where a record's body pointer is, and its format (a caller that keeps a
#: body sets it to NULL before releasing the record).
BODY_OFFSET = struct.calcsize("@qiiiiP") - struct.calcsize("P")
BODY_FIELD = struct.Struct("@P")


RecordArray = ctypes.c_char * (RECORD_SIZE * DRAIN_CHUNK)

# ---- symbol table -------------------------------------------------------

_u64p = POINTER(c_uint64)
_charpp = POINTER(c_void_p)  # char** out-parameters: kept as void* to be freed
_recp = c_void_p  # fastreq_record_t*: a buffer of RECORD_SIZE bytes per record

#: name -> (restype, argtypes); every symbol of include/fastreq.h.
SYMBOLS = {
    "fastreq_version": (c_char_p, []),  # static string: c_char_p is right here
    "fastreq_abi_version": (c_int32, []),
    "fastreq_free": (None, [c_void_p]),
    "fastreq_records_release": (None, [_recp, c_int32]),
    "fastreq_copy_body": (None, [c_void_p, c_void_p, c_size_t]),
    "fastreq_live_buffers": (c_int64, []),
    "fastreq_set_memory_limit": (c_int64, [c_int64]),
    "fastreq_free_os_memory": (c_int32, []),
    "fastreq_live_handles": (c_int64, []),
    "fastreq_client_new": (c_int32, [c_char_p, c_size_t, _u64p, _charpp]),
    "fastreq_client_close": (c_int32, [c_uint64]),
    "fastreq_client_set_cookies": (c_int32, [c_uint64, c_char_p, c_size_t, _charpp]),
    "fastreq_client_reset_cookies": (c_int32, [c_uint64]),
    "fastreq_requests_check": (c_int32, [c_char_p, c_size_t, _charpp]),
    "fastreq_batch_submit": (c_int32, [c_uint64, c_char_p, c_size_t, c_uint32, _u64p, _charpp]),
    "fastreq_batch_fd": (c_int32, [c_uint64]),
    "fastreq_batch_wait": (c_int32, [c_uint64, c_int32]),
    "fastreq_batch_drain": (c_int32, [c_uint64, _recp, c_int32]),
    "fastreq_batch_next": (c_int32, [c_uint64, _recp, c_int32, c_int32]),
    "fastreq_batch_set_wake": (c_int32, [c_uint64, c_int32, c_int32]),
    "fastreq_batch_done": (c_int32, [c_uint64]),
    "fastreq_batch_cancel": (c_int32, [c_uint64]),
    "fastreq_batch_free": (c_int32, [c_uint64]),
    "fastreq_hub_new": (c_int32, [_u64p]),
    "fastreq_batch_notify": (c_int32, [c_uint64, c_uint64]),
    "fastreq_log_drain": (c_int32, [_charpp]),
    "fastreq_log_counter": (c_void_p, []),
}

if sys.platform == "darwin":
    LIBRARY_NAME = "libfastreq.dylib"
elif sys.platform == "win32":
    LIBRARY_NAME = "libfastreq.dll"
else:
    LIBRARY_NAME = "libfastreq.so"

ENV_LIBRARY = "FASTREQ_LIBRARY"


class Library:
    """The loaded library: one attribute per symbol (without the prefix
    ``fastreq_``), plus its path and version."""

    if TYPE_CHECKING:  # the attributes of SYMBOLS, set in __init__
        def __getattr__(self, name: str) -> Any: ...

    #: The counter of fastreq_log_counter(): log records waiting.
    log_waiting: ctypes.c_int64

    def __init__(self, cdll: ctypes.CDLL, path: str) -> None:
        self.cdll = cdll
        self.path = path
        for name, (restype, argtypes) in SYMBOLS.items():
            try:
                fn = getattr(cdll, name)
            except AttributeError:
                raise LibraryError(f"{path} does not export {name}: it is not a libfastreq build") from None
            fn.restype = restype
            fn.argtypes = argtypes
            setattr(self, name[len("fastreq_"):], fn)
        self.log_waiting = ctypes.c_int64.from_address(self.log_counter())
        abi = self.abi_version()
        if abi != ABI_VERSION:
            raise LibraryError(
                f"{path} has ABI version {abi}, this fastreq package needs {ABI_VERSION}: "
                "rebuild the library or reinstall the package"
            )
        raw = self.version()
        self.version_string = raw.decode() if raw else "?"


def candidate_paths() -> List[Path]:
    """Where the library is looked for, in order (FASTREQ_LIBRARY first)."""
    paths = []
    env = os.environ.get(ENV_LIBRARY)
    if env:
        paths.append(Path(env))
    here = Path(__file__).resolve().parent
    paths.append(here / LIBRARY_NAME)
    checkout = here.parent.parent  # python/fastreq -> the repository
    if (checkout / "go.mod").is_file():
        paths.append(checkout / "build" / LIBRARY_NAME)
    return paths


_lock = threading.Lock()
_lib: Optional[Library] = None
_forked = False


def _after_fork_in_child() -> None:
    global _forked
    if _lib is not None:
        _forked = True


if hasattr(os, "register_at_fork"):  # where it is missing, so is os.fork (Windows)
    os.register_at_fork(after_in_child=_after_fork_in_child)


def forked() -> bool:
    """True in a child process forked after the library was loaded: the Go
    runtime is not usable there, and no call may reach it."""
    return _forked


def lib() -> Library:
    """Return the loaded library, loading it on first use."""
    global _lib
    lb = _lib
    if lb is not None:
        if _forked:
            raise ForkedProcessError(
                "fastreq cannot be used in a process created by fork() after the parent "
                "process loaded the fastreq engine (its Go runtime does not survive fork). "
                "Start worker processes with the 'spawn' or 'forkserver' method "
                "(multiprocessing.set_start_method('spawn')), or load fastreq only in the children."
            )
        return lb
    with _lock:
        if _lib is None:
            _lib = _load()
        return _lib


def loaded() -> bool:
    """Whether the library has been loaded in this process."""
    return _lib is not None


def loaded_library() -> Optional[Library]:
    """The library if it is loaded and usable here (not in a forked child),
    else None; never loads it."""
    lb = _lib
    if lb is None or forked():
        return None
    return lb


def _load() -> Library:
    env = os.environ.get(ENV_LIBRARY)
    if env and not Path(env).is_file():
        raise LibraryError(f"{ENV_LIBRARY}={env} does not name an existing file; "
                           "point it at a libfastreq build or unset it")
    paths = candidate_paths()
    for path in paths:
        if path.is_file():
            try:
                cdll = ctypes.CDLL(str(path))
            except OSError as exc:
                raise LibraryError(f"cannot load the fastreq engine from {path}: {exc}") from exc
            return Library(cdll, str(path))
    raise LibraryError(
        "the fastreq engine (" + LIBRARY_NAME + ") was not found; looked in: "
        + ", ".join(map(str, paths))
        + ". Install the package with `pip install ./python` (needs Go), build it with "
        "`make` at the repository root, or set " + ENV_LIBRARY + " to the library's path."
    )


def take_string(ptr: Optional[int]) -> Optional[str]:
    """Copy a library-allocated NUL-terminated string and free it at once."""
    if not ptr:
        return None
    lb = lib()
    try:
        return ctypes.string_at(ptr).decode("utf-8", "replace")
    finally:
        lb.free(ptr)
