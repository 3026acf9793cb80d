"""Exceptions of fastreq.

Every exception derives from :class:`FastRequestsError`, whose first
argument is the message. The classes and attributes are those of the
original pure-Python fastreq; the engine's error kinds (``kind``, one of
``"validation"``, ``"configuration"``, ``"timeout"``, ``"connect"``,
``"tls"``, ``"proxy"``, ``"too_many_redirects"``, ``"body_too_large"``,
``"cancelled"``, ``"retries_exhausted"``, ``"transport"``,
``"http_status"``, ``"io"``, ``"internal"``) map to them like this:

========================  =====================================================
kind                      exception
========================  =====================================================
validation                :class:`ValidationError` (``field_name``)
configuration             :class:`ConfigurationError` (``config_key``)
proxy                     :class:`ProxyError` (``proxy_url``)
retries_exhausted         :class:`RetryExhaustedError` (``attempts``,
                          ``last_error`` mapped the same way, ``url``)
http_status 429           :class:`RateLimitExceededError` (``retry_after``)
anything else             :class:`BackendError` (``backend_name``)
========================  =====================================================

Each mapped exception also carries ``kind`` (the engine's kind string),
``url`` (the request URL, password redacted), ``status_code`` (the HTTP
status when there was one, else ``None``), ``field_name`` (where the
engine named a field) and ``attempts``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional


@dataclass
class FailureDetails:
    """Details about a failed request.

    Attributes:
        url: URL that failed.
        error: The exception that occurred.
        attempt: Number of the last attempt made, 0-based (0 = the first
            attempt failed and was not retried).
        index: (fastreq addition) position of the request in the call.
    """

    url: str
    error: Exception
    attempt: int = 0
    index: Optional[int] = field(default=None, compare=False)


class FastRequestsError(Exception):
    """Base exception of fastreq; the first argument is the message."""

    #: The engine's error kind for errors that came from a request
    #: (see the module documentation); ``None`` for errors raised by Python.
    kind: Optional[str] = None
    #: The request URL (password redacted) when the error belongs to one.
    url: Optional[str] = None
    #: The HTTP status of the response, when there was one.
    status_code: Optional[int] = None
    #: The field or setting the engine named, if any.
    field_name: Optional[str] = None
    #: How many attempts the request made (0 when unknown).
    attempts: int = 0

    def __init__(self, message: str, *args: Any) -> None:
        super().__init__(message, *args)

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class BackendError(FastRequestsError):
    """A request failed in the transport (timeout, connection refused or
    reset, TLS, redirect limit, body too large, cancelled, ...).

    Attributes:
        backend_name: The backend that ran the request.
    """

    def __init__(self, message: str, backend_name: Optional[str] = None, *args: Any) -> None:
        self.backend_name = backend_name
        super().__init__(message, *args)


class ProxyError(FastRequestsError):
    """A proxy could not be reached, refused the tunnel or failed.

    Attributes:
        proxy_url: The proxy (password redacted), when known.
    """

    def __init__(self, message: str, proxy_url: Optional[str] = None, *args: Any) -> None:
        self.proxy_url = proxy_url
        super().__init__(message, *args)


class RetryExhaustedError(FastRequestsError):
    """Every attempt of a request failed.

    Attributes:
        attempts: How many attempts were made.
        last_error: The exception of the final attempt.
        url: The request URL.
    """

    def __init__(
        self,
        message: str,
        attempts: int = 0,
        last_error: Optional[Exception] = None,
        url: Optional[str] = None,
        *args: Any,
    ) -> None:
        self.attempts = attempts
        self.last_error = last_error
        self.url = url
        super().__init__(message, *args)


class RateLimitExceededError(FastRequestsError):
    """The server answered 429 Too Many Requests.

    Attributes:
        retry_after: Seconds the server asked to wait (Retry-After), if any.
    """

    def __init__(self, message: str, retry_after: Optional[float] = None, *args: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, *args)


class ValidationError(FastRequestsError):
    """Invalid input: a URL that is not http:// or https://, headers that
    are not str -> str, a bad method, ...

    Attributes:
        field_name: The offending field.
    """

    def __init__(self, message: str, field_name: Optional[str] = None, *args: Any) -> None:
        self.field_name = field_name
        super().__init__(message, *args)


class ConfigurationError(FastRequestsError):
    """Invalid configuration: an unknown backend, ``keys`` not as long as
    ``urls``, a bad ``proxy_selection``, ...

    Attributes:
        config_key: The offending setting.
    """

    def __init__(self, message: str, config_key: Optional[str] = None, *args: Any) -> None:
        self.config_key = config_key
        super().__init__(message, *args)


class PartialFailureError(FastRequestsError):
    """Raised after all requests of a call finished when some failed (and
    ``return_none_on_failure`` is False).

    Attributes:
        failures: URL -> :class:`FailureDetails` of each failed request
            (a URL requested twice keeps its last failure).
        successes: Number of requests that succeeded.
        total: Number of requests in the call.
        results: (fastreq addition) the results in request order, with the
            exception in each failed slot.
        failures_by_index: (fastreq addition) request index ->
            :class:`FailureDetails`, complete even for repeated URLs.
    """

    def __init__(
        self,
        message: str,
        failures: Optional[Dict[str, FailureDetails]] = None,
        successes: int = 0,
        total: int = 0,
        *args: Any,
    ) -> None:
        self.failures = failures or {}
        self.successes = successes
        self.total = total
        self.results: List[Any] = []
        self.failures_by_index: Dict[int, FailureDetails] = {}
        super().__init__(message, *args)

    def get_failed_urls(self) -> List[str]:
        """Return the URLs that failed."""
        return list(self.failures.keys())


# ---- fastreq additions (all inside the documented hierarchy) ------------


class LibraryError(FastRequestsError, OSError):
    """The native engine (libfastreq) is missing, cannot be loaded, or has
    the wrong ABI version."""


class ForkedProcessError(FastRequestsError, RuntimeError):
    """fastreq was used in a child process created by ``fork()`` after the
    parent loaded the engine. Use the "spawn" or "forkserver" start method."""


class ClientClosedError(FastRequestsError, RuntimeError):
    """The client was used after :meth:`FastRequests.close`."""


class RetryableResponse(FastRequestsError):
    """(fastreq 3.x) A response whose status is worth retrying (429, 500,
    502, 503, 504), raised by your own code for
    :class:`fastreq.utils.retry.RetryStrategy`, which retries it and waits
    ``retry_after`` seconds when set. The engine retries these statuses
    itself and never raises this class.

    Attributes:
        status_code: The HTTP status that triggered the retry.
        retry_after: Seconds to wait (the Retry-After header), if any.
        url: The URL that answered it.
    """

    def __init__(
        self,
        message: str,
        status_code: int,
        retry_after: Optional[float] = None,
        url: Optional[str] = None,
        *args: Any,
    ) -> None:
        self.status_code = status_code
        self.retry_after = retry_after
        self.url = url
        self.kind = "http_status"
        super().__init__(message, *args)


# Backwards-compatibility alias (fastreq 2.x name).
ParallelRequestsError = FastRequestsError


def redact_url(url: str) -> str:
    """url with the password of its userinfo shown as "xxxxx"
    ("http://user:xxxxx@host/", as Go's url.URL.Redacted shows it), for
    every place a URL is shown or kept for display; other URLs unchanged.
    The authority is what follows "//" (or, without "//", the start) up to
    the first "/", "?" or "#"; the userinfo ends at its last "@"."""
    if "@" not in url:
        return url
    start = url.find("//") + 2 if "//" in url else 0
    end = len(url)
    for sep in "/?#":
        i = url.find(sep, start, end)
        if i >= 0:
            end = i
    at = url.rfind("@", start, end)
    colon = url.find(":", start, at) if at >= 0 else -1
    if colon < 0:
        return url
    return url[: colon + 1] + "xxxxx" + url[at:]


def error_from_json(e: Optional[Dict[str, Any]], *, backend_name: Optional[str] = None, status: int = 0,
                    default_url: Optional[str] = None) -> FastRequestsError:
    """Map an engine error object ``{"kind", "message", "field", "url",
    "proxy", "status", "retry_after", "attempts", "last_error"}`` to the
    exception class of the table in the module documentation."""
    if not e:
        e = {"kind": "internal", "message": "the request failed without an error description"}
    kind = e.get("kind") or "internal"
    msg = e.get("message") or kind
    url = e.get("url") or default_url
    fld = e.get("field") or None
    st = e.get("status") or status or None
    exc: FastRequestsError
    if kind == "validation":
        exc = ValidationError(msg, field_name=fld)
    elif kind == "configuration":
        exc = ConfigurationError(msg, config_key=fld)
    elif kind == "proxy":
        exc = ProxyError(msg, proxy_url=e.get("proxy") or None)
    elif kind == "retries_exhausted":
        last = e.get("last_error")
        last_exc = error_from_json(last, backend_name=backend_name, default_url=url) if last else None
        exc = RetryExhaustedError(msg, attempts=int(e.get("attempts") or 0), last_error=last_exc, url=url)
        if last_exc is not None and last_exc.status_code and not st:
            st = last_exc.status_code
    elif kind == "http_status" and st == 429:
        ra = e.get("retry_after")
        exc = RateLimitExceededError(msg, retry_after=float(ra) if ra is not None else None)
    else:
        exc = BackendError(msg, backend_name=backend_name)
    exc.kind = kind
    exc.url = url
    exc.status_code = int(st) if st else None
    if not isinstance(exc, (ValidationError, RetryExhaustedError)):
        exc.field_name = fld
        exc.attempts = int(e.get("attempts") or 0)
    return exc
