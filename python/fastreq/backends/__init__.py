"""Backends: the transport strategy of a client.

The original fastreq wrapped Python HTTP clients (niquests, aiohttp,
requests in 2.x; niquests, httpx, curl_cffi in 3.x). fastreq runs every
request in its Go engine, whose transports are:

``"auto"``
    HTTP/2 when the server offers it (ALPN), else HTTP/1.1 (the default).
``"http1"``
    HTTP/1.1 only.
``"http2"``
    HTTP/2 only: h2 over TLS, h2c with prior knowledge for http:// URLs.
``"http3"``
    HTTP/3 only, over QUIC (UDP): https URLs only (an http:// URL is a
    ValidationError), and neither proxies nor ``impersonate=`` (both a
    ConfigurationError). ``http3=True`` with ``"auto"`` instead moves an
    https origin to HTTP/3 once it advertised it (Alt-Svc), and falls back
    to TCP when QUIC fails.

The original names stay valid as aliases so old code runs unchanged:
``niquests``, ``httpx`` and ``curl_cffi`` (which could speak HTTP/2) mean
``"auto"``; ``aiohttp`` and ``requests`` (HTTP/1.1 only) mean ``"http1"``;
``h2`` means ``"http2"``, ``h3`` means ``"http3"`` and ``http/1.1`` means
``"http1"``. Any other name
raises ConfigurationError listing the valid ones; :func:`get_available_backends`
lists them all.

``impersonate=`` (any backend) makes https requests pass for a browser of
:data:`IMPERSONATE_TARGETS`.

fastreq 3.x's ``fastreq.backends.base`` (``Backend``, ``RequestConfig``,
``NormalizedResponse``, ``TransportKey``) is importable too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Protocol

from ..exceptions import ConfigurationError
from ..models import NormalizedResponse, RequestConfig

#: Every accepted backend name -> the engine transport it selects.
BACKEND_ALIASES: Dict[str, str] = {
    "auto": "auto",
    "http1": "http1",
    "http2": "http2",
    "http3": "http3",
    "niquests": "auto",
    "httpx": "auto",
    "curl_cffi": "auto",
    "aiohttp": "http1",
    "requests": "http1",
    "h2": "http2",
    "h3": "http3",
    "http/1.1": "http1",
}


def get_available_backends() -> List[str]:
    """Every backend name a client accepts (the keys of BACKEND_ALIASES):
    the engine's transports, then the original names kept as aliases. All
    are always available: the transports are built into the engine, with
    no optional dependency. (In fastreq 3.x: the names whose client
    library was installed.)"""
    return list(BACKEND_ALIASES)


#: The browsers ``impersonate=`` can pass for (besides ``"random"``, one
#: of them picked per client): the engine sends the browser's TLS
#: ClientHello (its JA3/JA4 fingerprint), its HTTP/2 frames (SETTINGS,
#: window, pseudo-header and header order, priority) and its request
#: headers, User-Agent included, where the caller sets none.
IMPERSONATE_TARGETS: List[str] = [
    "chrome131",
    "chrome133a",
    "chrome136",
    "safari180",
    "safari184",
    "firefox133",
    "firefox135",
]

#: The newest target of each browser, by its family name.
IMPERSONATE_ALIASES: Dict[str, str] = {"chrome": "chrome136", "safari": "safari184", "firefox": "firefox135"}


def resolve_impersonate(name: Any) -> str:
    """A target of IMPERSONATE_TARGETS, "random" or an alias (any case),
    as the engine takes it; else ConfigurationError listing the targets."""
    if isinstance(name, str):
        target = name.strip().lower()
        target = IMPERSONATE_ALIASES.get(target, target)
        if target in IMPERSONATE_TARGETS or target == "random":
            return target
    raise ConfigurationError(
        f"Unknown impersonate target {name!r}. Known targets: {', '.join(IMPERSONATE_TARGETS)}, random "
        f"(or {', '.join(IMPERSONATE_ALIASES)}: the newest of each)",
        config_key="impersonate",
    )


def resolve_backend(name: Any) -> str:
    """Canonical transport name for a backend name or alias, or
    ConfigurationError listing the valid names."""
    if isinstance(name, str):
        canonical = BACKEND_ALIASES.get(name.lower())
        if canonical is not None:
            return canonical
    raise ConfigurationError(
        f"Unknown backend {name!r}. Valid backends: {', '.join(sorted(BACKEND_ALIASES))}",
        config_key="backend",
    )


def is_http3(backend: Any) -> bool:
    """Whether backend names the http3 backend (or an alias of it)."""
    return isinstance(backend, str) and BACKEND_ALIASES.get(backend.lower()) == "http3"


def check_backend_settings(backend: Any, impersonate: Optional[str], proxies: Optional[List[str]],
                           webshare_file: Any) -> None:
    """ConfigurationError for settings the backend cannot use: the http3
    backend takes neither proxies (HTTP/3 runs over UDP, which HTTP and
    SOCKS5 proxies do not carry) nor ``impersonate`` (the browser
    fingerprints are those of TLS over TCP and HTTP/2). The engine
    refuses them too; this says so when the client is made."""
    if not is_http3(backend):
        return
    if impersonate is not None:
        raise ConfigurationError(
            "impersonate cannot be used with the http3 backend: the browser fingerprints are those of TLS over "
            "TCP and HTTP/2; use backend=\"auto\"", config_key="impersonate")
    if proxies or webshare_file is not None:
        raise ConfigurationError(
            "the http3 backend cannot use proxies (HTTP/3 runs over UDP, which HTTP and SOCKS5 proxies do not "
            "carry); use backend=\"auto\" with http3=True", config_key="backend")


@dataclass(frozen=True)
class TransportKey:
    """(fastreq 3.x) The settings that call for a transport of their own:
    a proxy (None: direct), certificate checks, redirects and HTTP/2. 3.x
    kept one Python HTTP client per key; the engine keeps its connection
    pools per proxy and TLS setting itself, so here the class serves code
    that builds or caches by such keys."""

    proxy: Optional[str] = None
    verify_ssl: bool = True
    follow_redirects: bool = True
    http2: bool = True


class Backend(ABC):
    """The transport contract of the original fastreq: ``name``,
    ``request(config)``, ``close()``, ``supports_http2()`` and async
    context management. :class:`EngineBackend` implements it on the Go
    engine; ``FastRequests(...).backend`` is one."""

    @property
    @abstractmethod
    def name(self) -> str:
        """The transport identifier."""

    @abstractmethod
    async def request(
        self, config: RequestConfig, stream_callback: Optional[Callable[[bytes], Any]] = None
    ) -> NormalizedResponse:
        """Run one request and return its normalized response."""

    @abstractmethod
    async def close(self) -> None:
        """Release the transport's resources."""

    @abstractmethod
    def supports_http2(self) -> bool:
        """Whether the transport may speak HTTP/2."""

    async def __aenter__(self) -> "Backend":
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self.close()


class EngineClient(Protocol):
    """What :class:`EngineBackend` uses of its client (a FastRequests)."""

    backend_name: str
    http2: bool

    async def request_one(self, config: RequestConfig,
                          stream_callback: Optional[Callable[[bytes], Any]] = None) -> NormalizedResponse: ...

    async def close(self) -> None: ...


class EngineBackend(Backend):
    """The Go engine's transport as a :class:`Backend` of one client."""

    def __init__(self, client: EngineClient) -> None:
        self._client = client

    @property
    def name(self) -> str:
        return resolve_backend(self._client.backend_name)

    def supports_http2(self) -> bool:
        return self.name != "http1" and bool(self._client.http2 or self.name == "http2")

    async def request(
        self, config: RequestConfig, stream_callback: Optional[Callable[[bytes], Any]] = None
    ) -> NormalizedResponse:
        """Run one RequestConfig; a failure raises its own exception (not
        PartialFailureError)."""
        return await self._client.request_one(config, stream_callback)

    async def close(self) -> None:
        await self._client.close()

    def __repr__(self) -> str:
        return f"<EngineBackend {self.name!r}>"
