"""The parameters of the API, each declared once.

:class:`ClientSettings` holds the client parameters (all but ``backend``)
with their types, defaults, checks and conversion to the engine's client
config; a :class:`~fastreq.client.FastRequests` is one. :class:`CallSettings`
and :class:`RequestSettings` hold the parameters of one call.

The public functions take their signatures from these classes through
:func:`signature_of`: a type checker sees the parameters of the dataclass
(names, types and, for IDEs that show them, defaults), and so does
``inspect.signature``; no list of parameters is written out twice. The
classes that only lend a signature are :class:`ClientParams`
(``FastRequests(...)``), :class:`RequestParams` (``request(...)``) and
:class:`OneShotParams` (``fastreq(...)``).

What a call returns depends on urls, return_type, parse_func and keys:
fastreq(), fastreq_async(), FastRequests.request() and request_sync() are
overloaded on them, for type checkers. An overload names those it is
about, with the types of "The shapes of a result" below, and takes the
other parameters as ``**kwargs: Unpack[...]`` of a TypedDict of
:mod:`fastreq._kwargs`, which python/tools/gen_kwargs.py generates from
these classes.

This module has no annotations future import: the checks are read from
the ``Annotated`` metadata of the fields when the classes are made.
"""

import dataclasses
import inspect
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import (TYPE_CHECKING, Annotated, Any, Callable, ClassVar, Dict, Iterator, List, Literal, Optional,
                    Protocol, Sequence, Tuple, TypeVar, Union, get_args, get_origin)

from .backends import check_backend_settings, is_http3, resolve_impersonate
from .exceptions import ConfigurationError, ValidationError
from .models import PathLike, RequestConfig, ReturnType

if sys.version_info >= (3, 10):
    from dataclasses import KW_ONLY
if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Concatenate, ParamSpec

    P = ParamSpec("P")
R = TypeVar("R")

T_co = TypeVar("T_co", covariant=True)


class ListOf(Protocol[T_co]):
    """A list (or a deque) of T_co, for many URLs: a Sequence may be a
    str, which is one URL."""

    def __iter__(self) -> Iterator[T_co]: ...
    def reverse(self) -> None: ...


#: One request: a URL or a per-request spec.
Single = Union[str, Dict[str, Any], RequestConfig]
URLs = Union[Single, Sequence[Single], ListOf[Single]]
ProgressOption = Union[bool, str, None]
ProgressCallback = Callable[[int, int], Any]

# ---- the shapes of a result (the types of the overloads) ----------------

#: Many URLs.
Many = Union[ListOf[str], Tuple[str, ...]]
#: Many requests, URLs or per-request specs (a spec's own return_type or
#: save_to decides its result).
Specs = Union[ListOf[Single], Tuple[Single, ...]]
#: The values of return_type the overloads tell apart ("json" gives Any).
AsText = Literal["text", ReturnType.TEXT]
AsContent = Literal["content", ReturnType.CONTENT]
AsResponse = Literal["response", ReturnType.RESPONSE]
AsStream = Literal["stream", ReturnType.STREAM]
AsBuffer = Literal["buffer", ReturnType.BUFFER]
#: What parse_func returns; a key of keys.
T = TypeVar("T")
K = TypeVar("K")


# ---- checks of client settings ------------------------------------------
#
# The engine checks its client config too, but only when the client is
# first used (constructing a FastRequests must not load the engine), and
# there 0 means "the default" and a negative limit "no limit": the ranges
# of the Python API are checked here, at construction.


class Count:
    """An int of at least ``minimum`` (None where the default is None)."""

    def __init__(self, minimum: int) -> None:
        self.minimum = minimum

    def __call__(self, name: str, v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValidationError(f"{name} must be an int, got {v!r}", field_name=name)
        if v < self.minimum:
            raise ValidationError(f"{name} must be at least {self.minimum}, got {v}", field_name=name)
        return v


class Seconds:
    """A number >= 0 (> 0 when ``positive``) as a float; NaN is refused,
    which JSON could not carry to the engine."""

    def __init__(self, positive: bool = False) -> None:
        self.positive = positive

    def __call__(self, name: str, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v < 0 or (self.positive and v == 0):
            raise ValidationError(f"{name} must be a number {'>' if self.positive else '>='} 0, got {v!r}",
                                  field_name=name)
        return float(v)


def str_map(name: str, m: Any) -> Dict[str, str]:
    """A copy of a dict of str -> str (headers, cookies), or
    ValidationError: JSON would turn other keys into strings and None into
    an empty value, so the engine could not tell."""
    if not isinstance(m, Mapping):
        raise ValidationError(f"{name} must be a dict of str to str, got {type(m).__name__}", field_name=name)
    for k, v in m.items():
        if not isinstance(k, str):
            raise ValidationError(f"{name}: key {k!r} must be a str, got {type(k).__name__}", field_name=name)
        if not isinstance(v, str):
            raise ValidationError(f"{name}: value for {k!r} must be a str, got {type(v).__name__}", field_name=name)
    return dict(m)


def comma_list(text: Optional[str]) -> List[str]:
    """The stripped, non-empty items of a comma-separated list, such as an
    environment variable's value ([] for None)."""
    return [s.strip() for s in (text or "").split(",") if s.strip()]


def proxy_list(name: str, v: Any) -> List[str]:
    """A list of proxies; a str is split at commas."""
    proxies = comma_list(v) if isinstance(v, str) else list(v)
    for p in proxies:
        if not isinstance(p, str):
            raise ValidationError(f"{name} must be str, got {p!r}", field_name=name)
    return proxies


def existing_file(name: str, v: Any) -> str:
    path: str = os.fspath(v)
    if not os.path.isfile(path):
        raise ConfigurationError(f"{name} {path!r} does not exist", config_key=name)
    return path


def impersonate_target(name: str, v: Any) -> str:
    return resolve_impersonate(v)


def one_selection(name: str, v: Any) -> str:
    sel = getattr(v, "value", v)
    if sel not in ("round_robin", "random"):
        raise ConfigurationError(f"{name} must be 'round_robin' or 'random', got {v!r}", config_key=name)
    return str(sel)


#: Marks a limit the engine reads as "the default" at 0: the Python API's
#: 0 ("no limit", "off", "keep nothing") goes to the engine as -1.
NO_LIMIT_AT_ZERO = "no limit at zero"
#: Marks a setting the engine does not take.
PYTHON_ONLY = "python only"


@dataclass(eq=False)
class ClientSettings:
    """Every client parameter but ``backend`` (see FastRequests for their
    meaning). Constructing one checks and converts each value: a bad one
    raises ValidationError or ConfigurationError naming it."""

    if sys.version_info >= (3, 10):
        _: KW_ONLY
    concurrency: Annotated[int, Count(1)] = 20
    max_connections: Annotated[Optional[int], Count(1)] = None
    max_retries: Annotated[int, Count(0)] = 3
    rate_limit: Annotated[Optional[float], Seconds()] = None
    rate_limit_burst: Annotated[int, Count(1)] = 5
    concurrency_per_host: Annotated[Optional[int], Count(1)] = None
    rate_limit_per_host: Annotated[Optional[float], Seconds()] = None
    rate_limit_per_host_burst: Annotated[Optional[int], Count(1)] = None
    http2: bool = True
    follow_redirects: bool = True
    verify_ssl: bool = True
    timeout: Annotated[Optional[float], Seconds()] = None
    cookies: Annotated[Optional[Dict[str, str]], str_map] = None
    random_user_agent: bool = True
    random_proxy: bool = False
    proxies: Annotated[Optional[List[str]], proxy_list] = None
    proxy_selection: Annotated[str, one_selection] = "round_robin"
    proxy_cooldown: Annotated[float, Seconds()] = 60.0
    webshare_file: Annotated[Optional[PathLike], existing_file] = None
    headers: Annotated[Optional[Dict[str, str]], str_map] = None
    debug: bool = False
    verbose: bool = True
    return_none_on_failure: Annotated[bool, bool, PYTHON_ONLY] = False
    #: None: FASTREQ_IMPERSONATE, if set. Turns random_user_agent off.
    impersonate: Annotated[Optional[str], impersonate_target] = None
    max_redirects: Annotated[Optional[int], Count(1)] = None
    max_body_size: Annotated[Optional[int], Count(1)] = None
    backoff_multiplier: Annotated[Optional[float], Seconds()] = None
    jitter: Annotated[Optional[float], Seconds()] = None
    max_delay: Annotated[Optional[float], Seconds()] = None
    ca_file: Annotated[Optional[PathLike], existing_file] = None
    connect_timeout: Annotated[Optional[float], Seconds(), NO_LIMIT_AT_ZERO] = None
    read_timeout: Annotated[Optional[float], Seconds(), NO_LIMIT_AT_ZERO] = None
    retry_non_idempotent: bool = False
    circuit_breaker_threshold: Annotated[Optional[int], Count(0), NO_LIMIT_AT_ZERO] = None
    #: > 0: the engine reads 0 as its default.
    circuit_breaker_cooldown: Annotated[Optional[float], Seconds(positive=True)] = None
    dns_cache_ttl: Annotated[Optional[float], Seconds(), NO_LIMIT_AT_ZERO] = None
    auto_throttle: bool = False
    #: With backend "auto": move an https origin to HTTP/3 once it
    #: advertised it (Alt-Svc), back to TCP when QUIC fails.
    http3: bool = False

    def __post_init__(self) -> None:
        # FastRequests sets backend_name before this runs; the parameter
        # classes have a backend field.
        backend = self.__dict__.get("backend_name", self.__dict__.get("backend"))
        if self.impersonate is None and not is_http3(backend):  # HTTP/3 has no browser fingerprint to send
            self.impersonate = os.environ.get("FASTREQ_IMPERSONATE") or None
        for name, check, _, default in _CLIENT_FIELDS:
            v = getattr(self, name)
            if check is bool:
                setattr(self, name, bool(v))
            elif check is not None and (v is not None or default is not None):
                setattr(self, name, check(name, v))
        if self.impersonate is not None:
            self.random_user_agent = False  # the target's User-Agent goes with its TLS fingerprint
        check_backend_settings(backend, self.impersonate, self.proxies, self.webshare_file)

    def engine_config(self) -> Dict[str, Any]:
        """The engine's client config (without ``backend``), and what the
        environment says now (the Go runtime sees the environment the
        process started with). A setting left at a default of None or False
        is left out: the engine's zero value means the same."""
        cfg: Dict[str, Any] = {}
        for name, _, to_engine, default in _CLIENT_FIELDS:
            v = getattr(self, name)
            if v is None or (v is False and default is False) or to_engine == PYTHON_ONLY:
                continue
            cfg[name] = -1 if to_engine == NO_LIMIT_AT_ZERO and v == 0 else v
        if self.random_proxy:
            env_proxies = comma_list(os.environ.get("FASTREQ_PROXIES"))
            if env_proxies:  # once each: GlobalConfig's proxies may come from the same variable
                cfg["proxies"] = list(dict.fromkeys([*(self.proxies or []), *env_proxies]))
        if self.random_user_agent:
            agents = comma_list(os.environ.get("USER_AGENTS"))
            if agents:
                cfg["user_agents"] = agents
        return cfg


def _field_rules(cls: type) -> List[Tuple[str, Any, Any, Any]]:
    """(name, check, engine marker, default) of each field, from its
    annotation: ``bool`` converts with bool(), ``Annotated[T, check,
    marker]`` applies check to the value (unless both it and the default
    are None)."""
    rules = []
    for f in dataclasses.fields(cls):
        check = marker = None
        if f.type is bool:
            check = bool
        elif get_origin(f.type) is Annotated:
            for meta in get_args(f.type)[1:]:
                if meta in (NO_LIMIT_AT_ZERO, PYTHON_ONLY):
                    marker = meta
                else:
                    check = meta
        rules.append((f.name, check, marker, f.default))
    return rules


_CLIENT_FIELDS = _field_rules(ClientSettings)


@dataclass(eq=False)
class ClientParams(ClientSettings):
    """The parameters of ``FastRequests(...)``: ``backend`` first, then
    the client settings as keywords."""

    POSITIONAL: ClassVar[str] = "backend"
    backend: str = "auto"


#: The names of every client parameter.
CLIENT_NAMES = frozenset(f.name for f in dataclasses.fields(ClientParams))


@dataclass
class CallSettings:
    """The request parameters of a call (but urls) that ``fastreq()``
    takes too."""

    if sys.version_info >= (3, 10):
        _: KW_ONLY
    method: str = "GET"
    params: Optional[Dict[str, Any]] = None
    data: Any = None
    json: Any = None
    proxy: Optional[str] = None
    return_type: Union[ReturnType, str] = ReturnType.JSON
    parse_func: Optional[Callable[[Any], Any]] = None
    stream_callback: Optional[Callable[[bytes], Any]] = None
    progress: ProgressOption = None
    progress_callback: Optional[ProgressCallback] = None
    keys: Optional[List[Any]] = None
    save_to: Any = None


@dataclass
class RequestSettings(CallSettings):
    """The settings of a call of ``FastRequests.request(...)`` and its
    twins. headers are merged over the client's; timeout, follow_redirects
    and verify_ssl override the client's unless None."""

    if sys.version_info >= (3, 10):
        _: KW_ONLY
    headers: Optional[Dict[str, str]] = None
    timeout: Optional[float] = None
    follow_redirects: Optional[bool] = None
    verify_ssl: Optional[bool] = None


#: The settings of a call that sets none (shared: never written).
DEFAULT_REQUEST = RequestSettings()


@dataclass
class _URLs:
    POSITIONAL: ClassVar[str] = "urls"
    urls: URLs


@dataclass
class RequestParams(RequestSettings, _URLs):
    """The parameters of ``FastRequests.request(...)``: urls (first, as its
    fields come first), then the request settings as keywords."""


@dataclass(eq=False)
class OneShotParams(ClientSettings, CallSettings, _URLs):
    """The parameters of ``fastreq(...)``: urls, then the client settings
    and the call's as keywords (headers, timeout, follow_redirects and
    verify_ssl are the client's)."""

    if sys.version_info >= (3, 10):
        _: KW_ONLY
    backend: str = "auto"  # keyword-only here; as ClientParams.backend (tests/python/test_params.py)


def split_one_shot(kwargs: Dict[str, Any]) -> "Tuple[Dict[str, Any], Dict[str, Any]]":
    """The keyword arguments of fastreq() (but urls) as those of its
    client and those of its call."""
    client: Dict[str, Any] = {}
    call: Dict[str, Any] = {}
    for k, v in kwargs.items():
        (client if k in CLIENT_NAMES else call)[k] = v
    return client, call


# ---- signatures ----------------------------------------------------------


def _signature(proto: Any, fn: Callable[..., Any], method: bool) -> inspect.Signature:
    """proto's dataclass fields as fn's parameters: proto.POSITIONAL
    first, the others keyword-only (after ``self`` for a method), with
    fn's return annotation."""
    first = getattr(proto, "POSITIONAL")
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)] if method else []
    rest = []
    for name, p in inspect.signature(proto).parameters.items():
        ann = p.annotation
        if get_origin(ann) is Annotated:
            ann = get_args(ann)[0]
        if name == first:
            params.append(p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=ann))
        else:
            rest.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=ann))
    return inspect.Signature(params + rest, return_annotation=inspect.signature(fn).return_annotation)


def signature_of(proto: "Callable[P, Any]") -> "Callable[[Callable[..., R]], Callable[P, R]]":
    """Give the decorated function the parameters of the dataclass proto,
    for type checkers and for inspect.signature. The function itself takes
    them as keyword arguments (the positional one by position or name)."""

    def apply(fn: "Callable[..., R]") -> "Callable[P, R]":
        fn.__signature__ = _signature(proto, fn, method=False)  # type: ignore[attr-defined]
        return fn

    return apply


def method_signature_of(proto: "Callable[P, Any]") -> "Callable[[Callable[..., R]], Callable[Concatenate[Any, P], R]]":
    """:func:`signature_of` for a method (``self`` first)."""

    def apply(fn: "Callable[..., R]") -> "Callable[Concatenate[Any, P], R]":
        fn.__signature__ = _signature(proto, fn, method=True)  # type: ignore[attr-defined]
        return fn

    return apply
