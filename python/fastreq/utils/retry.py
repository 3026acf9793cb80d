"""fastreq 3.x's retry strategy, for retrying your own coroutines.

A client retries its requests in the engine (``max_retries``,
``backoff_multiplier``, ``jitter``, ``max_delay``); :class:`RetryStrategy`
is the standalone object of 3.x, in plain Python, with the engine's delays:
retry n (0-based) waits ``backoff_multiplier * 2**n``, moved by up to
``jitter`` of itself either way, capped at ``max_delay``; a Retry-After
the error carries wins, capped at ``max_delay`` too.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, FrozenSet, Optional, Set, Tuple, Type, TypeVar

from ..exceptions import (
    ConfigurationError,
    FastRequestsError,
    RateLimitExceededError,
    RetryableResponse,
    RetryExhaustedError,
    ValidationError,
)

__all__ = ["DEFAULT_RETRYABLE_STATUSES", "NEVER_RETRY", "RetryConfig", "RetryStrategy"]

log = logging.getLogger("fastreq")

_T = TypeVar("_T")

#: The statuses retried by default (the engine's: 429, 500, 502, 503, 504).
DEFAULT_RETRYABLE_STATUSES: FrozenSet[int] = frozenset({429, 500, 502, 503, 504})

#: Errors that are never retried: retrying cannot fix them.
NEVER_RETRY: Tuple[Type[Exception], ...] = (ConfigurationError, ValidationError)


@dataclass
class RetryConfig:
    """Settings of a :class:`RetryStrategy`.

    Attributes:
        max_retries: Retries after the first attempt.
        backoff_multiplier: Seconds before the first retry (doubling after).
        jitter: Fraction of the delay it may move either way (0.1 = 10%).
        retryable_statuses: Statuses retried when an error carries one
            (``status_code``); an error with another status is not retried.
        max_delay: Cap on any delay, Retry-After included (seconds).
        retry_on: When set, only errors of these types are retried.
        dont_retry_on: Errors of these types are never retried.
    """

    max_retries: int = 3
    backoff_multiplier: float = 1.0
    jitter: float = 0.1
    retryable_statuses: FrozenSet[int] = field(default_factory=lambda: DEFAULT_RETRYABLE_STATUSES)
    max_delay: float = 60.0
    retry_on: Optional[Set[Type[BaseException]]] = None
    dont_retry_on: Optional[Set[Type[BaseException]]] = None


class RetryStrategy:
    """Runs a coroutine function again when it raises, with exponential
    backoff and jitter.

    Which errors are retried, in order: ValidationError and
    ConfigurationError never; types in ``dont_retry_on`` never; with
    ``retry_on`` set, only its types; an error carrying an HTTP status
    (:class:`~fastreq.exceptions.RetryableResponse`, or a fastreq error
    with ``status_code``) only when that status is in
    ``retryable_statuses``; any other exception is retried. The wait is
    the error's ``retry_after`` when it has one, else the backoff.

    When every attempt failed, :meth:`execute` raises
    :class:`~fastreq.exceptions.RetryExhaustedError` with ``attempts`` =
    ``max_retries`` (the number of retries, as in 3.x) and ``last_error``;
    an error that is not retried is raised as it is.

    Example::

        strategy = RetryStrategy(RetryConfig(max_retries=3, backoff_multiplier=1.0))
        result = await strategy.execute(fetch, "https://example.com")
    """

    def __init__(self, config: Optional[RetryConfig] = None) -> None:
        self.config = config if config is not None else RetryConfig()

    def _calculate_delay(self, attempt: int) -> float:
        """The backoff before retry number attempt (0-based), in seconds:
        ``min(max_delay, backoff_multiplier * 2**attempt +- jitter * that)``,
        never below 0."""
        base = self.config.backoff_multiplier * (2**attempt)
        delay = base + base * self.config.jitter * random.uniform(-1.0, 1.0)
        return float(max(0.0, min(self.config.max_delay, delay)))

    def _classify(self, error: BaseException) -> Tuple[bool, Optional[float]]:
        """(whether to retry error, the Retry-After it carries or None)."""
        c = self.config
        if isinstance(error, NEVER_RETRY):
            return False, None
        if c.dont_retry_on and isinstance(error, tuple(c.dont_retry_on)):
            return False, None
        if c.retry_on is not None and not isinstance(error, tuple(c.retry_on)):
            return False, None
        retry_after: Optional[float] = None
        if isinstance(error, (RetryableResponse, RateLimitExceededError)):
            retry_after = error.retry_after
        status = error.status_code if isinstance(error, FastRequestsError) else None
        if status is not None and status not in c.retryable_statuses:
            return False, None
        return True, retry_after

    def _should_retry(self, error: BaseException) -> bool:
        """Whether error is retried (see the class documentation)."""
        return self._classify(error)[0]

    async def execute(self, func: Callable[..., Awaitable[_T]], *args: Any, **kwargs: Any) -> _T:
        """Await ``func(*args, **kwargs)``, again after each retryable error,
        up to ``max_retries`` more times.

        Raises:
            RetryExhaustedError: Every attempt failed with a retryable error.
            Exception: The first error that is not retried.
        """
        c = self.config
        last_error: Optional[Exception] = None
        for attempt in range(c.max_retries + 1):
            try:
                return await func(*args, **kwargs)
            except Exception as e:
                retry, retry_after = self._classify(e)
                if not retry:
                    raise
                last_error = e
                if attempt < c.max_retries:
                    delay = (self._calculate_delay(attempt) if retry_after is None
                             else max(0.0, min(c.max_delay, retry_after)))
                    log.debug("Retry attempt %d/%d: %s, waiting %.2fs", attempt + 1, c.max_retries, e, delay)
                    await asyncio.sleep(delay)
        url = last_error.url if isinstance(last_error, FastRequestsError) else None
        raise RetryExhaustedError(f"Retry attempts exhausted after {c.max_retries} retries",
                                  attempts=c.max_retries, last_error=last_error, url=url)
