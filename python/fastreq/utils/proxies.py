"""fastreq 3.x's proxy pool: rotation over your proxies with a cooldown for
failed ones, for code that picks proxies itself.

A client rotates its own pool in the engine (``FastRequests(proxies=...,
random_proxy=True)``); :class:`ProxyPool` is the standalone object of 3.x,
in plain Python (it does not load the engine), with the engine's rules:
round robin goes on from the last proxy handed out and skips proxies in
cooldown, a failure benches a proxy for ``cooldown`` seconds and a success
clears it.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from enum import Enum
from typing import Dict, Iterable, List, Literal, Optional
from urllib.parse import urlsplit

from .._params import comma_list
from ..exceptions import ProxyError

__all__ = [
    "ProxyError",
    "ProxyPool",
    "ProxyPoolConfig",
    "ProxySelection",
    "ProxySelectionMode",
    "load_webshare_from_file",
]

log = logging.getLogger("fastreq")

#: The proxy URL schemes the engine can use.
_SCHEMES = ("http://", "https://", "socks5://", "socks5h://")

#: Selection mode as a string, for annotations (3.x name).
ProxySelectionMode = Literal["round_robin", "random"]


class ProxySelection(str, Enum):
    """How :class:`ProxyPool` picks the next proxy."""

    ROUND_ROBIN = "round_robin"
    RANDOM = "random"


def _host_port_ok(host: str, port: str) -> bool:
    """A non-empty host (a dotted quad of 0-255 when it is all digits and
    dots) and a port of 1-65535."""
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        return False
    if all(c.isdigit() or c == "." for c in host):
        octets = host.split(".")
        return len(octets) == 4 and all(o.isdigit() and int(o) <= 255 for o in octets)
    return True


def _is_valid_proxy(url: str) -> bool:
    """Whether url is a proxy the pool keeps: an http://, https://,
    socks5:// or socks5h:// URL, ``host:port`` or ``host:port:user:pass``.

    >>> _is_valid_proxy("192.168.1.10:8080")
    True
    >>> _is_valid_proxy("invalid")
    False
    """
    if not url or not isinstance(url, str):
        return False
    if url.lower().startswith(_SCHEMES):
        try:
            u = urlsplit(url)
            return u.path in ("", "/") and _host_port_ok(u.hostname or "", str(u.port or ""))
        except ValueError:  # a port that is not a number, or out of range
            return False
    parts = url.split(":")
    if len(parts) == 2 or (len(parts) == 4 and parts[2] and parts[3]):
        return _host_port_ok(parts[0], parts[1])
    return False


def _normalize_proxy_url(url: str) -> str:
    """url with a scheme: ``host:port`` -> ``http://host:port``,
    ``host:port:user:pass`` -> ``http://user:pass@host:port`` (as the
    engine reads them); URLs unchanged."""
    if url.lower().startswith(_SCHEMES):
        return url
    parts = url.split(":")
    if len(parts) == 4:
        host, port, user, password = parts
        return f"http://{user}:{password}@{host}:{port}"
    return f"http://{url}"


def _webshare_proxies(text: str) -> List[str]:
    """Proxy URLs from Webshare's text export (``ip:port:user:pass`` or
    ``ip:port`` lines)."""
    proxies: List[str] = []
    for line in text.strip().splitlines():
        parts = line.strip().split(":")
        if len(parts) >= 4 or (len(parts) == 2 and parts[0]):
            proxies.append(_normalize_proxy_url(":".join(parts[:4])))
    return proxies


@dataclass
class ProxyPoolConfig:
    """Settings of a :class:`ProxyPool`.

    Attributes:
        proxies: The proxies (used when the pool is given none itself).
        selection: ROUND_ROBIN (default) or RANDOM.
        cooldown: Seconds a failed proxy sits out.
    """

    proxies: Optional[List[str]] = None
    selection: ProxySelection = ProxySelection.ROUND_ROBIN
    cooldown: float = 60.0


class ProxyPool:
    """A rotating pool of proxies that benches failed ones.

    Proxies come from ``proxies`` or, without it, ``config.proxies``, or
    from :meth:`from_env` (FASTREQ_PROXIES) and :meth:`from_webshare_text`.
    Accepted forms: ``http://[user:pass@]host:port``, ``https://...``,
    ``socks5://...``, ``socks5h://...``, ``host:port`` and
    ``host:port:user:pass``; the last two are kept as ``http://`` URLs,
    entries in no accepted form are dropped (logged at debug level), and
    duplicates are kept once.

    :meth:`acquire` returns the next proxy not in cooldown (None when there
    is none), :meth:`mark_failed` benches a proxy for ``cooldown`` seconds
    and :meth:`mark_success` clears it. The methods are coroutines, as in
    fastreq 3.x, but never wait; the pool may be shared by tasks and threads.

    Example::

        pool = ProxyPool(config=ProxyPoolConfig(proxies=["proxy1:8080", "proxy2:8080"]))
        proxy = await pool.acquire()      # "http://proxy1:8080"
        await pool.mark_failed(proxy)     # benched for 60 s
        await pool.acquire()              # "http://proxy2:8080"
    """

    def __init__(self, proxies: Optional[Iterable[str]] = None, *, config: Optional[ProxyPoolConfig] = None) -> None:
        self._config = config if config is not None else ProxyPoolConfig()
        self._proxies: List[str] = []
        self._until: Dict[str, float] = {}  # proxy -> end of its cooldown (time.monotonic)
        self._cursor = 0
        self._lock = threading.Lock()
        source = proxies if proxies is not None else self._config.proxies or []
        dropped = 0
        for i, proxy in enumerate(source):
            if not _is_valid_proxy(proxy):
                dropped += 1
                log.debug("ProxyPool: dropped proxy %d: in no accepted form", i)  # not its text: it may hold a password
                continue
            url = _normalize_proxy_url(proxy)
            if url not in self._proxies:
                self._proxies.append(url)
        if dropped:
            log.info("ProxyPool: %d proxies kept, %d dropped", len(self._proxies), dropped)

    @classmethod
    def from_webshare_text(cls, text: str, *, selection: ProxySelection = ProxySelection.ROUND_ROBIN,
                           cooldown: float = 60.0) -> "ProxyPool":
        """A pool from Webshare's text export (``ip:port:user:pass`` lines).

        Raises:
            ProxyError: The text holds no proxy.
        """
        proxies = _webshare_proxies(text)
        if not proxies:
            raise ProxyError("No valid proxies found in Webshare text")
        return cls(proxies, config=ProxyPoolConfig(selection=selection, cooldown=cooldown))

    @classmethod
    def from_env(cls, env_var: str = "FASTREQ_PROXIES", *, selection: ProxySelection = ProxySelection.ROUND_ROBIN,
                 cooldown: float = 60.0) -> "ProxyPool":
        """A pool from a comma-separated environment variable (empty when
        it is unset)."""
        return cls(comma_list(os.environ.get(env_var)), config=ProxyPoolConfig(selection=selection, cooldown=cooldown))

    @property
    def selection(self) -> ProxySelection:
        return self._config.selection

    @property
    def cooldown(self) -> float:
        return self._config.cooldown

    @property
    def proxies(self) -> List[str]:
        """A copy of the pool's proxies (as URLs), in order."""
        return self._proxies.copy()

    def count(self) -> int:
        """How many proxies the pool holds."""
        return len(self._proxies)

    def count_available(self) -> int:
        """How many proxies are not in cooldown."""
        now = time.monotonic()
        with self._lock:
            return sum(1 for p in self._proxies if self._until.get(p, 0.0) <= now)

    async def acquire(self) -> Optional[str]:
        """The next proxy not in cooldown, or None when every proxy is
        cooling down (or the pool is empty)."""
        now = time.monotonic()
        with self._lock:
            n = len(self._proxies)
            if self.selection == ProxySelection.RANDOM:
                usable = [p for p in self._proxies if self._until.get(p, 0.0) <= now]
                return random.choice(usable) if usable else None
            for k in range(n):
                i = (self._cursor + k) % n
                proxy = self._proxies[i]
                if self._until.get(proxy, 0.0) <= now:
                    self._cursor = (i + 1) % n
                    return proxy
            return None

    def _key(self, proxy: str) -> str:
        return _normalize_proxy_url(proxy) if _is_valid_proxy(proxy) else proxy

    async def mark_failed(self, proxy: str) -> None:
        """Bench proxy for ``cooldown`` seconds (a proxy not in the pool is
        ignored; ``host:port`` forms name their ``http://`` URL)."""
        key = self._key(proxy)
        with self._lock:
            if key in self._proxies:
                self._until[key] = time.monotonic() + self.cooldown

    async def mark_success(self, proxy: str) -> None:
        """End proxy's cooldown."""
        key = self._key(proxy)
        with self._lock:
            self._until.pop(key, None)


def load_webshare_from_file(path: str) -> List[str]:
    """The proxy URLs of a Webshare text file (``ip:port:user:pass`` lines).

    Raises:
        ProxyError: The file cannot be read or holds no proxy.
    """
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ProxyError(f"Failed to read Webshare file: {e}") from e
    proxies = _webshare_proxies(text)
    if not proxies:
        raise ProxyError(f"No valid proxies found in {path}")
    return proxies
