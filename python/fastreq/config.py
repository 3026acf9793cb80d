"""GlobalConfig: defaults that can be kept in the environment or a .env file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Union


@dataclass
class GlobalConfig:
    """Global configuration, loaded from environment variables or built in code.

    Environment variables (default prefix ``PARALLEL_``): BACKEND,
    CONCURRENCY, MAX_RETRIES, RATE_LIMIT, RATE_LIMIT_BURST, HTTP2,
    RANDOM_USER_AGENT, RANDOM_PROXY, PROXY_ENABLED, FREE_PROXIES; booleans
    are "true"/"false".
    """

    backend: str = "auto"
    default_concurrency: int = 20
    default_max_retries: int = 3
    rate_limit: Optional[float] = None
    rate_limit_burst: int = 5
    http2_enabled: bool = True
    random_user_agent: bool = True
    random_proxy: bool = False
    proxy_enabled: bool = False
    free_proxies_enabled: bool = False

    @classmethod
    def load_from_env(cls, prefix: str = "PARALLEL_") -> "GlobalConfig":
        """Read the configuration from PREFIX+NAME environment variables."""

        def get_bool(key: str, default: bool) -> bool:
            value = os.getenv(f"{prefix}{key}", str(default).lower())
            return value.lower() == "true"

        def get_int(key: str, default: int) -> int:
            value = os.getenv(f"{prefix}{key}")
            return int(value) if value is not None else default

        def get_float(key: str, default: Optional[float]) -> Optional[float]:
            value = os.getenv(f"{prefix}{key}")
            return float(value) if value is not None else default

        return cls(
            backend=os.getenv(f"{prefix}BACKEND", "auto"),
            default_concurrency=get_int("CONCURRENCY", 20),
            default_max_retries=get_int("MAX_RETRIES", 3),
            rate_limit=get_float("RATE_LIMIT", None),
            rate_limit_burst=get_int("RATE_LIMIT_BURST", 5),
            http2_enabled=get_bool("HTTP2", True),
            random_user_agent=get_bool("RANDOM_USER_AGENT", True),
            random_proxy=get_bool("RANDOM_PROXY", False),
            proxy_enabled=get_bool("PROXY_ENABLED", False),
            free_proxies_enabled=get_bool("FREE_PROXIES", False),
        )

    def to_env(self, prefix: str = "PARALLEL_") -> Dict[str, str]:
        """The configuration as a dict of environment variables."""
        return {
            f"{prefix}BACKEND": self.backend,
            f"{prefix}CONCURRENCY": str(self.default_concurrency),
            f"{prefix}MAX_RETRIES": str(self.default_max_retries),
            f"{prefix}RATE_LIMIT": str(self.rate_limit) if self.rate_limit else "",
            f"{prefix}RATE_LIMIT_BURST": str(self.rate_limit_burst),
            f"{prefix}HTTP2": str(self.http2_enabled).lower(),
            f"{prefix}RANDOM_USER_AGENT": str(self.random_user_agent).lower(),
            f"{prefix}RANDOM_PROXY": str(self.random_proxy).lower(),
            f"{prefix}PROXY_ENABLED": str(self.proxy_enabled).lower(),
            f"{prefix}FREE_PROXIES": str(self.free_proxies_enabled).lower(),
        }

    def save_to_env(self, path: Union[Path, str], prefix: str = "PARALLEL_") -> None:
        """Write KEY=VALUE lines to path, skipping empty values."""
        p = Path(path)
        content = "".join(f"{k}={v}\n" for k, v in self.to_env(prefix).items() if v)
        p.write_text(content)

    def client_kwargs(self) -> Dict[str, Any]:
        """(fastreq addition) Keyword arguments for :class:`FastRequests`
        or :func:`fastreq` with these defaults:
        ``FastRequests(**GlobalConfig.load_from_env().client_kwargs())``."""
        return {
            "backend": self.backend,
            "concurrency": self.default_concurrency,
            "max_retries": self.default_max_retries,
            "rate_limit": self.rate_limit,
            "rate_limit_burst": self.rate_limit_burst,
            "http2": self.http2_enabled,
            "random_user_agent": self.random_user_agent,
            "random_proxy": self.random_proxy,
        }
