"""fastreq: thousands of HTTP requests at once, run by a Go engine.

Basic usage::

    >>> from fastreq import fastreq
    >>> results = fastreq(["https://example.org/a", "https://example.org/b"])

Async usage::

    >>> from fastreq import fastreq_async
    >>> async def main():
    ...     return await fastreq_async(["https://example.org/a"])

The API is that of the pure-Python fastreq (2.x/3.x): ``fastreq``,
``fastreq_async``, ``FastRequests``, ``ReturnType``, ``RequestOptions``,
``RequestConfig``, ``NormalizedResponse``, ``Backend``, ``GlobalConfig``,
the exceptions and ``FailureDetails``, plus the aliases
``ParallelRequests`` and ``ParallelRequestsError``.

Additions: per-request specs (a list of dicts or RequestConfig),
``FastRequests.request_sync``/``close_sync`` and ``with`` use, results as
they complete (``FastRequests.as_completed``/``as_completed_sync``,
``fastreq_as_completed``/``fastreq_as_completed_async``, yielding
``Completion``), where each response's time went
(``NormalizedResponse.timings``, a ``Timings``), downloads straight to
files (``save_to``), and ``fastreq.engine`` (library path, memory
controls, leak counters).

The engine (libfastreq) is loaded on first use, not at import. It holds a
Go runtime, which does not survive ``fork()``: worker processes must be
started with "spawn" or "forkserver" once the parent has used fastreq.
Logging goes to the standard ``logging`` logger "fastreq".
"""

from . import engine  # noqa: F401 - fastreq.engine
from ._version import __version__
from ._completions import AsyncCompletions, SyncCompletions
from .api import fastreq, fastreq_as_completed, fastreq_as_completed_async, fastreq_async
from .backends import Backend, EngineBackend, TransportKey
from .client import FastRequests
from .config import GlobalConfig
from .exceptions import (
    BackendError,
    ClientClosedError,
    ConfigurationError,
    FailureDetails,
    FastRequestsError,
    ForkedProcessError,
    LibraryError,
    ParallelRequestsError,
    PartialFailureError,
    ProxyError,
    RateLimitExceededError,
    RetryableResponse,
    RetryExhaustedError,
    ValidationError,
)
from .models import Completion, NormalizedResponse, RequestConfig, RequestOptions, ReturnType, Timings

# Backwards-compatibility alias (fastreq 2.x name).
ParallelRequests = FastRequests

__all__ = [
    "AsyncCompletions",
    "Backend",
    "BackendError",
    "ClientClosedError",
    "Completion",
    "ConfigurationError",
    "EngineBackend",
    "FailureDetails",
    "FastRequests",
    "FastRequestsError",
    "ForkedProcessError",
    "GlobalConfig",
    "LibraryError",
    "NormalizedResponse",
    "ParallelRequests",
    "ParallelRequestsError",
    "PartialFailureError",
    "ProxyError",
    "RateLimitExceededError",
    "RequestConfig",
    "RequestOptions",
    "RetryExhaustedError",
    "RetryableResponse",
    "ReturnType",
    "SyncCompletions",
    "TransportKey",
    "Timings",
    "ValidationError",
    "__version__",
    "fastreq",
    "fastreq_as_completed",
    "fastreq_as_completed_async",
    "fastreq_async",
]
