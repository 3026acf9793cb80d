"""GlobalConfig: defaults that can be kept in the environment or a .env file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Union

from ._params import ClientParams as _Client
from ._params import comma_list

#: The prefixes ``GlobalConfig.load_from_env()`` reads, the first winning:
#: fastreq 3.x's and fastreq 2.x's.
ENV_PREFIXES = ("FASTREQ_", "PARALLEL_")
#: The prefix ``to_env`` and ``save_to_env`` write (fastreq 3.x's).
DEFAULT_PREFIX = ENV_PREFIXES[0]


def _flag(value: str) -> bool:
    return value.lower() == "true"


def _setting(env: str, client: Optional[str], default: Any, parse: Callable[[str], Any],
             to_client: Optional[Callable[[Any], Any]] = None) -> Any:
    """A field read from the environment variable PREFIX+env with parse,
    given to the client as its parameter client (None: not a client
    parameter), converted by to_client when the client takes another form."""
    return field(default=default, metadata={"env": env, "client": client, "parse": parse, "to_client": to_client})


@dataclass
class GlobalConfig:
    """Global configuration, loaded from environment variables or built in code.

    Every field is read from an environment variable (booleans are
    "true"/"false"; an empty value counts as unset) and maps to the client
    parameter of the same meaning:

    ======================  ==================  ====================
    field                   variable            client parameter
    ======================  ==================  ====================
    backend                 BACKEND             backend
    default_concurrency     CONCURRENCY         concurrency
    default_max_retries     MAX_RETRIES         max_retries
    rate_limit              RATE_LIMIT          rate_limit
    rate_limit_burst        RATE_LIMIT_BURST    rate_limit_burst
    http2_enabled           HTTP2               http2
    random_user_agent       RANDOM_USER_AGENT   random_user_agent
    random_proxy            RANDOM_PROXY        random_proxy
    proxy_enabled           PROXY_ENABLED       (none)
    free_proxies_enabled    FREE_PROXIES        (none)
    impersonate             IMPERSONATE         impersonate
    proxies                 PROXIES             proxies (a list)
    debug                   DEBUG               debug
    ======================  ==================  ====================

    ``load_from_env()`` reads the variables with the prefix ``FASTREQ_``
    (fastreq 3.x) and with ``PARALLEL_`` (fastreq 2.x); where both are set,
    ``FASTREQ_`` wins. ``load_from_env(prefix=...)`` reads that prefix only.
    ``to_env()`` and ``save_to_env()`` write ``FASTREQ_`` unless given a
    prefix. ``proxies`` is a comma-separated string, as in 3.x
    (FASTREQ_PROXIES); :meth:`client_kwargs` gives it to the client as a
    list. The defaults are the client's.

    The fields are in fastreq 2.x's order, so 2.x code that passes them by
    position keeps working; the 3.x fields (impersonate, proxies) and debug
    come last.
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
    impersonate: Optional[str] = _setting("IMPERSONATE", "impersonate", _Client.impersonate, str)
    proxies: Optional[str] = _setting("PROXIES", "proxies", None, str, lambda v: comma_list(v) or None)
    debug: bool = _setting("DEBUG", "debug", _Client.debug, _flag)

    @classmethod
    def load_from_env(cls, prefix: Optional[str] = None) -> "GlobalConfig":
        """Read the configuration from environment variables: PREFIX+NAME
        when prefix is given, else FASTREQ_NAME or, when that is unset,
        PARALLEL_NAME. Unset and empty variables leave the default."""
        prefixes = ENV_PREFIXES if prefix is None else (prefix,)
        values = {}
        for f in fields(cls):
            for p in prefixes:
                raw = os.environ.get(p + f.metadata["env"])
                if raw:
                    values[f.name] = f.metadata["parse"](raw)
                    break
        return cls(**values)

    def to_env(self, prefix: str = DEFAULT_PREFIX) -> Dict[str, str]:
        """The configuration as a dict of environment variables (unset
        optional values, such as no rate limit, as "")."""
        env = {}
        for f in fields(self):
            v = getattr(self, f.name)
            env[prefix + f.metadata["env"]] = ("" if not v and f.default is None
                                               else str(v).lower() if isinstance(v, bool) else str(v))
        return env

    def save_to_env(self, path: Union[Path, str], prefix: str = DEFAULT_PREFIX) -> None:
        """Write KEY=VALUE lines to path, skipping empty values."""
        Path(path).write_text("".join(f"{k}={v}\n" for k, v in self.to_env(prefix).items() if v))

    def client_kwargs(self) -> Dict[str, Any]:
        """(fastreq addition) Keyword arguments for :class:`FastRequests`
        or :func:`fastreq` with these defaults:
        ``FastRequests(**GlobalConfig.load_from_env().client_kwargs())``."""
        kwargs = {}
        for f in fields(self):
            if f.metadata["client"]:
                v = getattr(self, f.name)
                kwargs[f.metadata["client"]] = f.metadata["to_client"](v) if f.metadata["to_client"] else v
        return kwargs
