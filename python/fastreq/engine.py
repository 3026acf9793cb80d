"""(fastreq addition) The native engine: where it was loaded from, its
version, memory controls and leak counters.

Each function loads the library on first use (see :mod:`fastreq._ffi`
for the lookup order and the FASTREQ_LIBRARY environment variable).
"""

from __future__ import annotations

from . import _ffi


def library_path() -> str:
    """Path of the loaded libfastreq."""
    return _ffi.lib().path


def version() -> str:
    """The engine's version (fastreq_version())."""
    return _ffi.lib().version_string


def abi_version() -> int:
    return int(_ffi.lib().abi_version())


def live_buffers() -> int:
    """Library-allocated buffers not yet freed (0 when nothing leaks)."""
    return int(_ffi.lib().live_buffers())


def live_handles() -> int:
    """Live engine handles: clients not closed, batches not freed and bench
    servers not stopped."""
    return int(_ffi.lib().live_handles())


def set_memory_limit(limit_bytes: int) -> int:
    """Set the Go runtime's soft memory limit (GOMEMLIMIT); a negative
    value only reads it. Returns the previous limit."""
    return int(_ffi.lib().set_memory_limit(int(limit_bytes)))


def free_os_memory() -> None:
    """Run a garbage collection and return as much memory to the OS as possible."""
    _ffi.lib().free_os_memory()


def loaded() -> bool:
    """Whether the engine has been loaded in this process (without loading it)."""
    return _ffi.loaded()
