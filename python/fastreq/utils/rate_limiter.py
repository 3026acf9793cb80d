"""fastreq 3.x's token bucket and async rate limiter, for pacing your own
coroutines.

A client paces its requests in the engine (``rate_limit``,
``rate_limit_burst``, ``concurrency``); these are the standalone objects of
3.x, in plain Python, with the engine's order: a rate token first, then a
concurrency slot, so that waiting for the rate never holds a slot.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generator, Optional, Type

__all__ = ["AsyncRateLimiter", "RateLimitConfig", "TokenBucket"]

log = logging.getLogger("fastreq")


@dataclass
class RateLimitConfig:
    """Settings of an :class:`AsyncRateLimiter`.

    Attributes:
        requests_per_second: Tokens added per second.
        burst: Most tokens held (the bucket starts full).
        max_concurrency: Most holders of ``async with limiter.acquire()``
            at once; None: no limit.
    """

    requests_per_second: float
    burst: int
    max_concurrency: Optional[int] = None


class TokenBucket:
    """A token bucket: ``requests_per_second`` tokens a second, up to
    ``burst`` held; it starts full. Safe to share between tasks and
    threads.

    Example::

        bucket = TokenBucket(requests_per_second=10, burst=5)
        bucket.available()   # 5
        await bucket.acquire()
    """

    def __init__(self, requests_per_second: float, burst: int) -> None:
        if not requests_per_second > 0:
            raise ValueError(f"requests_per_second must be > 0, got {requests_per_second!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        self.requests_per_second = requests_per_second
        self.burst = burst
        self._tokens = float(burst)
        self._last_update = time.monotonic()
        self._lock = threading.Lock()

    def _refill_tokens(self) -> None:
        """Add the tokens earned since the last refill (caller holds the lock)."""
        now = time.monotonic()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last_update) * self.requests_per_second)
        self._last_update = now

    def available(self) -> int:
        """Whole tokens available now."""
        with self._lock:
            self._refill_tokens()
            return int(self._tokens)

    def _take(self, tokens: int) -> float:
        """Take tokens if there are enough: 0.0; else the seconds until
        there will be."""
        with self._lock:
            self._refill_tokens()
            if self._tokens >= tokens:
                self._tokens -= tokens
                return 0.0
            return (tokens - self._tokens) / self.requests_per_second

    async def acquire(self, tokens: int = 1) -> None:
        """Take tokens, waiting until the bucket holds them.

        Raises:
            ValueError: tokens is more than the bucket can hold.
        """
        if tokens > self.burst:
            raise ValueError(f"cannot take {tokens} tokens from a bucket of {self.burst}")
        while True:
            wait = self._take(tokens)
            if wait <= 0.0:
                return
            log.debug("Rate limit: waiting %.3fs for a token", wait)
            await asyncio.sleep(wait)


class _Acquisition:
    """What :meth:`AsyncRateLimiter.acquire` returns: await it to take a
    token, or use it with ``async with`` to take a token and then a
    concurrency slot, released on exit."""

    def __init__(self, limiter: "AsyncRateLimiter") -> None:
        self._limiter = limiter
        self._slot: Optional[asyncio.Semaphore] = None

    def __await__(self) -> Generator[Any, None, None]:
        return self._limiter._bucket.acquire().__await__()

    async def __aenter__(self) -> None:
        await self._limiter._bucket.acquire()
        self._slot = self._limiter._slots()
        if self._slot is not None:
            await self._slot.acquire()

    async def __aexit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                        tb: Optional[TracebackType]) -> None:
        if self._slot is not None:
            self._slot.release()


class AsyncRateLimiter:
    """A rate limiter for coroutines: a :class:`TokenBucket` of
    ``config.requests_per_second`` and ``config.burst``, plus, with
    ``config.max_concurrency``, a limit on concurrent holders.

    ``await limiter.acquire()`` takes a token. ``async with
    limiter.acquire():`` takes a token, then a concurrency slot, and gives
    the slot back on exit. The concurrency slots belong to the first event
    loop that uses them.

    Example::

        limiter = AsyncRateLimiter(RateLimitConfig(requests_per_second=10, burst=5, max_concurrency=20))
        async with limiter.acquire():
            ...  # at most 10 a second after a burst of 5, at most 20 at once
    """

    def __init__(self, config: RateLimitConfig) -> None:
        if config.max_concurrency is not None and config.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {config.max_concurrency!r}")
        self.config = config
        self._bucket = TokenBucket(config.requests_per_second, config.burst)
        self._semaphore: Optional[asyncio.Semaphore] = None

    def _slots(self) -> Optional[asyncio.Semaphore]:
        # Made in the loop that first needs it (an asyncio.Semaphore made
        # outside a running loop binds to the wrong one on Python 3.9).
        if self.config.max_concurrency is not None and self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.config.max_concurrency)
        return self._semaphore

    def acquire(self) -> _Acquisition:
        """Await it for a token; ``async with`` it for a token and a slot."""
        return _Acquisition(self)

    def available(self) -> int:
        """Whole tokens available now."""
        return self._bucket.available()
