"""fastreq 3.x's helpers, under their 3.x names.

:mod:`~fastreq.utils.validators` asks the engine (loading it on first use);
the proxy pool, the retry strategy, the rate limiters and the header
manager are plain Python objects for code that drives them itself (a
client does the same work in the engine). Importing this package does not
load the engine.
"""

from .headers import HeaderManager
from .proxies import ProxyError as ProxyPoolError
from .proxies import ProxyPool, ProxyPoolConfig, ProxySelection, load_webshare_from_file
from .rate_limiter import AsyncRateLimiter, RateLimitConfig, TokenBucket
from .retry import DEFAULT_RETRYABLE_STATUSES, RetryConfig, RetryStrategy
from .validators import normalize_urls, validate_headers, validate_proxy, validate_url

__all__ = [
    "DEFAULT_RETRYABLE_STATUSES",
    "AsyncRateLimiter",
    "HeaderManager",
    "ProxyPool",
    "ProxyPoolConfig",
    "ProxyPoolError",
    "ProxySelection",
    "RateLimitConfig",
    "RetryConfig",
    "RetryStrategy",
    "TokenBucket",
    "load_webshare_from_file",
    "normalize_urls",
    "validate_headers",
    "validate_proxy",
    "validate_url",
]
