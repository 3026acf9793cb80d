"""GlobalConfig: defaults that can be kept in the environment or a .env file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Union

from ._params import ClientParams as _Client


def _flag(value: str) -> bool:
    return value.lower() == "true"


def _setting(env: str, client: Optional[str], default: Any, parse: Callable[[str], Any]) -> Any:
    """A field read from the environment variable PREFIX+env with parse,
    given to the client as its parameter client (None: not a client
    parameter)."""
    return field(default=default, metadata={"env": env, "client": client, "parse": parse})


@dataclass
class GlobalConfig:
    """Global configuration, loaded from environment variables or built in code.

    Environment variables (default prefix ``PARALLEL_``): BACKEND,
    CONCURRENCY, MAX_RETRIES, RATE_LIMIT, RATE_LIMIT_BURST, HTTP2,
    RANDOM_USER_AGENT, RANDOM_PROXY, PROXY_ENABLED, FREE_PROXIES; booleans
    are "true"/"false". The defaults are the client's.
    """

    backend: str = _setting("BACKEND", "backend", _Client.backend, str)
    default_concurrency: int = _setting("CONCURRENCY", "concurrency", _Client.concurrency, int)
    default_max_retries: int = _setting("MAX_RETRIES", "max_retries", _Client.max_retries, int)
    rate_limit: Optional[float] = _setting("RATE_LIMIT", "rate_limit", _Client.rate_limit, float)
    rate_limit_burst: int = _setting("RATE_LIMIT_BURST", "rate_limit_burst", _Client.rate_limit_burst, int)
    http2_enabled: bool = _setting("HTTP2", "http2", _Client.http2, _flag)
    random_user_agent: bool = _setting("RANDOM_USER_AGENT", "random_user_agent", _Client.random_user_agent, _flag)
    random_proxy: bool = _setting("RANDOM_PROXY", "random_proxy", _Client.random_proxy, _flag)
    proxy_enabled: bool = _setting("PROXY_ENABLED", None, False, _flag)
    free_proxies_enabled: bool = _setting("FREE_PROXIES", None, False, _flag)

    @classmethod
    def load_from_env(cls, prefix: str = "PARALLEL_") -> "GlobalConfig":
        """Read the configuration from PREFIX+NAME environment variables."""
        values = {}
        for f in fields(cls):
            raw = os.getenv(prefix + f.metadata["env"])
            if raw is not None:
                values[f.name] = f.metadata["parse"](raw)
        return cls(**values)

    def to_env(self, prefix: str = "PARALLEL_") -> Dict[str, str]:
        """The configuration as a dict of environment variables (an unset
        rate limit as "")."""
        env = {}
        for f in fields(self):
            v = getattr(self, f.name)
            env[prefix + f.metadata["env"]] = ("" if not v and f.default is None
                                               else str(v).lower() if isinstance(v, bool) else str(v))
        return env

    def save_to_env(self, path: Union[Path, str], prefix: str = "PARALLEL_") -> None:
        """Write KEY=VALUE lines to path, skipping empty values."""
        p = Path(path)
        content = "".join(f"{k}={v}\n" for k, v in self.to_env(prefix).items() if v)
        p.write_text(content)

    def client_kwargs(self) -> Dict[str, Any]:
        """(fastreq addition) Keyword arguments for :class:`FastRequests`
        or :func:`fastreq` with these defaults:
        ``FastRequests(**GlobalConfig.load_from_env().client_kwargs())``."""
        return {f.metadata["client"]: getattr(self, f.name) for f in fields(self) if f.metadata["client"]}
