"""Data classes of the public API: ReturnType, RequestConfig,
RequestOptions, NormalizedResponse, Timings and Completion."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Dict, Optional, Union

from . import _json


class ReturnType(str, Enum):
    """What a request's result is. A plain string works too.

    JSON: the parsed body (dict, list, ...), or None when the body is not JSON.
    TEXT: the body decoded with the charset its Content-Type declares
    (UTF-8 when it declares none or one Python does not know), invalid
    bytes replaced.
    CONTENT: the body as bytes.
    RESPONSE: a :class:`NormalizedResponse`.
    STREAM: chunks go to ``stream_callback`` as they arrive; the result is None.
    BUFFER: the body as a read-only ``memoryview`` (format "B"). A body of
    32 KiB or more is not copied in Python: the view reads the library's
    memory it came in (from 64 KiB, the memory it was read into), which is
    freed when the last view of it (slices too) goes. For big bodies kept or written elsewhere (``file.write``,
    ``hashlib``, ``orjson.loads`` take a view); ``bytes(view)`` copies.
    """

    JSON = "json"
    TEXT = "text"
    CONTENT = "content"
    RESPONSE = "response"
    STREAM = "stream"
    BUFFER = "buffer"


PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class _Request:
    """The fields RequestConfig and RequestOptions share (in their order)."""

    url: str
    method: str = "GET"
    params: Optional[Dict[str, Any]] = None
    data: Any = None
    json: Any = None
    headers: Optional[Dict[str, str]] = None


@dataclass
class RequestConfig(_Request):
    """One request, as a per-request spec for :meth:`FastRequests.request`
    (``urls=[RequestConfig(...), ...]``).

    A field left at its default inherits the call's (and the client's)
    setting; ``method="GET"``, ``http2=True``, ``follow_redirects=True`` and
    ``verify_ssl=True`` therefore mean "as the call says". ``stream=True``
    streams this request's body to ``stream_callback``.

    fastreq additions: ``save_to`` writes the body straight to that file
    (the result is then the file's :class:`pathlib.Path`), and
    ``return_type``, ``stream_callback``, ``max_body_size`` and
    ``retry_non_idempotent`` (None: the client's setting) override the
    call's settings for this request.
    """

    cookies: Optional[Dict[str, str]] = None
    timeout: Optional[float] = None
    proxy: Optional[str] = None
    http2: bool = True
    stream: bool = False
    follow_redirects: bool = True
    verify_ssl: bool = True
    # fastreq additions
    save_to: Optional[PathLike] = None
    return_type: Optional[Union[ReturnType, str]] = None
    stream_callback: Optional[Callable[[bytes], Any]] = None
    max_body_size: Optional[int] = None
    retry_non_idempotent: Optional[bool] = None


@dataclass
class RequestOptions(_Request):
    """Per-request options (the original's internal record, also accepted
    as a per-request spec). Fields at their defaults inherit the call's."""

    timeout: Optional[float] = None
    proxy: Optional[str] = None
    return_type: Union[ReturnType, str] = ReturnType.JSON
    stream_callback: Optional[Callable[[bytes], Any]] = None


def decode_text(content: bytes, content_type: Optional[str]) -> str:
    """content as text in the charset content_type declares (as requests'
    ``Response.text``, without guessing one): UTF-8 when it declares none,
    or one that is not a text encoding Python knows; invalid bytes replaced."""
    if content_type and "charset" in content_type.lower():
        for param in content_type.split(";")[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset":
                try:
                    return content.decode(value.strip(" \t'\""), "replace")
                except (LookupError, ValueError):  # unknown, or not a text encoding
                    break
    return content.decode("utf-8", "replace")


@dataclass(frozen=True)
class Timings:
    """(fastreq addition) Where the time of a request's last attempt went,
    in seconds: :attr:`NormalizedResponse.timings`.

    ``dns``, ``connect`` and ``tls`` are those of the connections the
    attempt opened (more than one only when it followed redirects), so all
    three are 0 when it reused a connection.

    Attributes:
        dns: The host name lookup: 0 for an IP address, next to nothing for
            an answer from the client's DNS cache (``dns_cache_ttl``).
        connect: The TCP connect (to the proxy, through one).
        tls: From the TCP connection to the connection being ready for
            requests: the TLS handshake (through an HTTP proxy, its CONNECT
            exchange too); 0 for http:// without TLS.
        ttfb: Time to first byte: from the attempt's start to the first byte
            of the response, connection setup included; 0 when none came.
        total: The attempt from its start to its end, body included.
        reused: Whether the response came over a connection that had carried
            a request before (an idle one from the pool; for HTTP/2, one
            shared with other requests).
    """

    __slots__ = ("dns", "connect", "tls", "ttfb", "total", "reused")

    dns: float
    connect: float
    tls: float
    ttfb: float
    total: float
    reused: bool

    @classmethod
    def from_json(cls, m: Any) -> "Optional[Timings]":
        """The engine's ``timings`` metadata ({"dns_ns", "connect_ns",
        "tls_ns", "ttfb_ns", "total_ns", "reused"}) in seconds; None when
        m is not such an object."""
        if not isinstance(m, dict):
            return None
        return cls(
            (m.get("dns_ns") or 0) / 1e9, (m.get("connect_ns") or 0) / 1e9, (m.get("tls_ns") or 0) / 1e9,
            (m.get("ttfb_ns") or 0) / 1e9, (m.get("total_ns") or 0) / 1e9, bool(m.get("reused")),
        )


@dataclass
class NormalizedResponse:
    """A response: what ``return_type="response"`` gives.

    Attributes:
        status_code: HTTP status.
        headers: Response headers with lower-case names; repeated headers
            are joined with ", " (Set-Cookie with "\\n").
        content: Body bytes (gzip/deflate decoded; empty for downloads and
            streams).
        text: Body decoded with the charset of Content-Type (UTF-8 when
            none or unknown), invalid bytes replaced.
        json_data: The parsed body, or None when it is not JSON.
        url: Final URL after redirects.
        is_json: Whether the body parsed as JSON.
        http_version: (fastreq addition) "HTTP/1.1" or "HTTP/2.0".
        elapsed: (fastreq addition) seconds from the first attempt to the end.
        attempts: (fastreq addition) how many attempts were made.
        path: (fastreq addition) the file written, for downloads.
        timings: (fastreq addition) where the last attempt's time went
            (DNS, connect, TLS, time to first byte, total, connection
            reused), a :class:`Timings`; None for a response not made by
            the engine.
    """

    status_code: int
    headers: Dict[str, str]
    content: bytes
    text: str
    json_data: Any
    url: str
    is_json: bool = False
    http_version: str = ""
    elapsed: float = 0.0
    attempts: int = 1
    path: Optional[str] = None
    timings: Optional[Timings] = None

    @classmethod
    def from_backend(cls, status_code: int, headers: Dict[str, str], content: bytes, url: str,
                     is_json: bool = False) -> "NormalizedResponse":
        """Build a response from raw parts (headers are lower-cased)."""
        r = cls.from_parts(status_code, {str(k).lower(): v for k, v in headers.items()}, content, url)
        r.is_json = is_json or r.is_json
        return r

    @classmethod
    def from_parts(cls, status_code: int, headers: Dict[str, str], content: bytes, url: str,
                   **extra: Any) -> "NormalizedResponse":
        """(fastreq addition) A response from parts whose header names are
        lower-case already: json_data and text are derived from content."""
        json_data = None
        is_json = False
        if content:
            try:
                json_data = _json.loads(content)
                is_json = True
            except _json.DECODE_ERRORS:
                pass
        return cls(status_code, headers, content, decode_text(content, headers.get("content-type")), json_data, url,
                   is_json, **extra)

    def json(self) -> Any:
        """The parsed body (same as ``json_data``)."""
        return self.json_data

    @property
    def ok(self) -> bool:
        """True for a status below 400."""
        return self.status_code < 400


@dataclass(frozen=True)
class Completion:
    """One finished request, as yielded by the as-completed iterators.

    Attributes:
        index: Position of the request in the call.
        key: ``keys[index]`` when keys were given, else ``index``.
        url: The request URL.
        result: The result (shaped by return_type and parse_func), or None
            when the request failed.
        error: The exception when the request failed, else None.
    """

    __slots__ = ("index", "key", "url", "result", "error")

    index: int
    key: Any
    url: str
    result: Any
    error: Optional[BaseException]

    @property
    def ok(self) -> bool:
        """True when the request succeeded."""
        return self.error is None
