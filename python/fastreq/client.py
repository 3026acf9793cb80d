"""The client: FastRequests, fastreq() and fastreq_async().

A :class:`FastRequests` owns one engine client (created on first use):
its concurrency gate, token bucket, connection pools, proxy pool and
cookie session are shared by all its calls, from any number of threads
and event loops. Each call submits one batch of requests to the engine and
collects the results as they complete.

Use it asynchronously::

    async with FastRequests(concurrency=50) as client:
        data = await client.request(urls)

or synchronously, without any event loop (fastreq addition)::

    with FastRequests(concurrency=50) as client:
        data = client.request_sync(urls)

Results can also be consumed as they complete (fastreq addition)::

    async for done in client.as_completed(urls):     # or as_completed_sync
        print(done.index, done.result, done.error)
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from . import _ffi, _json
from ._batch import AsyncPump, BatchRun, run_one_async, run_one_sync, run_sync
from ._encode import RT_CONTENT, RT_JSON, RT_RESPONSE, RT_TEXT, Plan, build_plan, check_str_map
from ._handles import ClientHandle, check_rc
from ._progress import make_notifier, open_reporter
from .backends import EngineBackend, resolve_backend
from .exceptions import (
    ClientClosedError,
    ConfigurationError,
    FailureDetails,
    PartialFailureError,
    ValidationError,
)
from .models import Completion, RequestConfig, ReturnType

log = logging.getLogger("fastreq")
log.addHandler(logging.NullHandler())

_debug_handler: Optional[logging.Handler] = None

#: Sent as a per-request timeout to mean "no limit" when the engine client
#: was created with a timeout but the caller set client.timeout = None.
_NO_TIMEOUT = 1e9
#: The return types the single-request paths serve (see run_one_sync): those
#: that need no metadata of a successful response, which they go without.
_ONE_RTYPES = (RT_JSON, RT_CONTENT)
#: The return types that read a successful response's metadata: "response",
#: and "text" for the charset of its Content-Type.
_META_RTYPES = (RT_RESPONSE, RT_TEXT)

ProgressOption = Union[bool, str, None]
ProgressCallback = Callable[[int, int], Any]
URLs = Union[str, Dict[str, Any], RequestConfig, Sequence[Union[str, Dict[str, Any], RequestConfig]]]


def _enable_debug_logging() -> None:
    """debug=True: let DEBUG records of the "fastreq" logger through, and
    print them to stderr when the application configured no logging."""
    global _debug_handler
    if log.level == logging.NOTSET or log.level > logging.DEBUG:
        log.setLevel(logging.DEBUG)
    has_handler = any(not isinstance(h, logging.NullHandler) for h in log.handlers)
    if not has_handler and not logging.getLogger().handlers and _debug_handler is None:
        _debug_handler = logging.StreamHandler(sys.stderr)
        _debug_handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)-8s | %(name)s | %(message)s"))
        log.addHandler(_debug_handler)


def _check_int(name: str, v: Any, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValidationError(f"{name} must be an int, got {v!r}", field_name=name)
    if v < minimum:
        raise ValidationError(f"{name} must be at least {minimum}, got {v}", field_name=name)
    return v


def _check_number(name: str, v: Any, allow_none: bool = True, positive: bool = False) -> Optional[float]:
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v < 0 or (positive and v == 0):
        raise ValidationError(f"{name} must be a number {'>' if positive else '>='} 0"
                              f"{' or None' if allow_none else ''}, got {v!r}", field_name=name)
    return float(v)


def _no_limit_as_negative(v: Any) -> Any:
    """A limit as the engine's client config wants it: 0 ("no limit",
    "off") is a negative number there, where 0 means "the default"."""
    return -1 if v == 0 else v


class FastRequests:
    """Client for many HTTP requests at once.

    Args:
        backend: "auto", "http1", "http2" or an original backend name
            ("niquests", "httpx", "curl_cffi", "aiohttp", "requests"),
            see :mod:`fastreq.backends`.
        concurrency: Most requests in flight at once (shared by all calls).
        max_retries: Retries after the first attempt.
        rate_limit: Requests per second (token bucket); None = unlimited.
        rate_limit_burst: Bucket size.
        http2: Use HTTP/2 where the server offers it.
        follow_redirects: Follow redirects (per-call override possible).
        verify_ssl: Verify TLS certificates (per-call override possible).
        timeout: Seconds per attempt; None = no limit.
        cookies: Initial session cookies.
        random_user_agent: Rotate browser User-Agent strings (the
            USER_AGENTS environment variable replaces the list).
        random_proxy: Rotate through the proxy pool (``proxies``,
            ``webshare_file`` and FASTREQ_PROXIES).
        proxies: Proxy URLs for the pool.
        proxy_selection: "round_robin" or "random".
        proxy_cooldown: Seconds a failed proxy sits out.
        webshare_file: File of host:port:user:pass lines for the pool.
        headers: Default headers for every request.
        debug: Log DEBUG records to the "fastreq" logger.
        verbose: Log INFO records (one summary line per call).
        return_none_on_failure: Failed requests give None instead of
            raising PartialFailureError.
        impersonate: Accepted for fastreq 3 compatibility; TLS
            impersonation is not available, so it only turns off
            random_user_agent (as it did) and logs a warning.
        max_redirects, max_body_size, backoff_multiplier, jitter,
        max_delay: (fastreq additions) redirect limit (default 20), most
            body bytes kept in memory per response (default 1 GiB), and the
            retry delay shape (defaults 1.0 s, 0.1, 60 s).
        ca_file: (fastreq addition) PEM file of extra trusted root
            certificates (a private CA), added to the system's.
        connect_timeout: (fastreq addition) seconds to establish a
            connection, TLS included; None = the engine's default (30 s),
            0 = no limit.
        read_timeout: (fastreq addition) seconds without any byte
            arriving after which an attempt fails as a timeout; None = the
            engine's default (300 s), 0 = no limit.
        retry_non_idempotent: (fastreq addition) also retry methods that
            are not idempotent (POST, PATCH); a request spec may set its own
            ``retry_non_idempotent``.
        circuit_breaker_threshold: (fastreq addition) consecutive failures
            to connect to one host after which its queued requests fail
            fast; None = the engine's default (20), 0 = off.
        circuit_breaker_cooldown: (fastreq addition) seconds an open
            breaker waits before it lets one probe through; None = the
            engine's default (30 s).

    The engine client is created on first use, so constructing a
    FastRequests never starts the Go runtime. A closed client raises
    :class:`~fastreq.exceptions.ClientClosedError`.

    Thread safety: one client may be shared by several threads (and used
    from several event loops); each call runs its own batch.
    """

    def __init__(
        self,
        backend: str = "auto",
        *,
        concurrency: int = 20,
        max_retries: int = 3,
        rate_limit: Optional[float] = None,
        rate_limit_burst: int = 5,
        http2: bool = True,
        follow_redirects: bool = True,
        verify_ssl: bool = True,
        timeout: Optional[float] = None,
        cookies: Optional[Dict[str, str]] = None,
        random_user_agent: bool = True,
        random_proxy: bool = False,
        proxies: Optional[List[str]] = None,
        proxy_selection: str = "round_robin",
        proxy_cooldown: float = 60.0,
        webshare_file: Optional[Union[str, "os.PathLike[str]"]] = None,
        headers: Optional[Dict[str, str]] = None,
        debug: bool = False,
        verbose: bool = True,
        return_none_on_failure: bool = False,
        impersonate: Optional[str] = None,
        max_redirects: Optional[int] = None,
        max_body_size: Optional[int] = None,
        backoff_multiplier: Optional[float] = None,
        jitter: Optional[float] = None,
        max_delay: Optional[float] = None,
        ca_file: Optional[Union[str, "os.PathLike[str]"]] = None,
        connect_timeout: Optional[float] = None,
        read_timeout: Optional[float] = None,
        retry_non_idempotent: bool = False,
        circuit_breaker_threshold: Optional[int] = None,
        circuit_breaker_cooldown: Optional[float] = None,
    ) -> None:
        self._native: Optional[ClientHandle] = None
        self._closed = False
        self._lock = threading.RLock()
        resolve_backend(backend)  # ConfigurationError listing the valid names
        self.backend_name = backend
        self.concurrency = _check_int("concurrency", concurrency, 1)
        self.max_retries = _check_int("max_retries", max_retries, 0)
        self.rate_limit = _check_number("rate_limit", rate_limit)
        self.rate_limit_burst = _check_int("rate_limit_burst", rate_limit_burst, 1)
        self.http2 = bool(http2)
        self.follow_redirects = bool(follow_redirects)
        self.verify_ssl = bool(verify_ssl)
        self.timeout = _check_number("timeout", timeout)
        self._cookies: Dict[str, str] = dict(check_str_map(cookies, "cookies") or {})
        self.impersonate = impersonate
        self.random_user_agent = bool(random_user_agent) if impersonate is None else False
        self.random_proxy = bool(random_proxy)
        if isinstance(proxies, str):
            proxies = [p.strip() for p in proxies.split(",") if p.strip()]
        if proxies is not None:
            proxies = list(proxies)
            for p in proxies:
                if not isinstance(p, str):
                    raise ValidationError(f"proxies must be str, got {p!r}", field_name="proxies")
        self.proxies = proxies
        sel = getattr(proxy_selection, "value", proxy_selection)
        if sel not in ("round_robin", "random"):
            raise ConfigurationError(
                f"proxy_selection must be 'round_robin' or 'random', got {proxy_selection!r}",
                config_key="proxy_selection",
            )
        self.proxy_selection = sel
        self.proxy_cooldown = _check_number("proxy_cooldown", proxy_cooldown, allow_none=False)
        if webshare_file is not None:
            webshare_file = os.fspath(webshare_file)
            if not os.path.isfile(webshare_file):
                raise ConfigurationError(f"webshare_file {webshare_file!r} does not exist",
                                         config_key="webshare_file")
        self.webshare_file = webshare_file
        self.headers = check_str_map(headers, "headers")
        self.debug = bool(debug)
        self.verbose = bool(verbose)
        self.return_none_on_failure = bool(return_none_on_failure)
        self.max_redirects = None if max_redirects is None else _check_int("max_redirects", max_redirects, 1)
        self.max_body_size = None if max_body_size is None else _check_int("max_body_size", max_body_size, 1)
        self.backoff_multiplier = _check_number("backoff_multiplier", backoff_multiplier)
        self.jitter = _check_number("jitter", jitter)
        self.max_delay = _check_number("max_delay", max_delay)
        if ca_file is not None:
            ca_file = os.fspath(ca_file)
            if not os.path.isfile(ca_file):
                raise ConfigurationError(f"ca_file {ca_file!r} does not exist", config_key="ca_file")
        self.ca_file = ca_file
        self.connect_timeout = _check_number("connect_timeout", connect_timeout)
        self.read_timeout = _check_number("read_timeout", read_timeout)
        self.retry_non_idempotent = bool(retry_non_idempotent)
        self.circuit_breaker_threshold = None if circuit_breaker_threshold is None else _check_int(
            "circuit_breaker_threshold", circuit_breaker_threshold, 0)
        # > 0: the engine reads 0 as its default.
        self.circuit_breaker_cooldown = _check_number("circuit_breaker_cooldown", circuit_breaker_cooldown,
                                                      positive=True)
        self._native_settings = (self.follow_redirects, self.verify_ssl, self.timeout)
        if self.debug:
            _enable_debug_logging()
        if impersonate is not None:
            log.warning("impersonate=%r is not supported by the fastreq engine; ignored "
                        "(random_user_agent is off, as before)", impersonate)

    # ---- attributes --------------------------------------------------

    @property
    def cookies(self) -> Dict[str, str]:
        """The session cookies set from Python (initial and set_cookies);
        cookies that servers set live in the engine."""
        return dict(self._cookies)

    @property
    def backend(self) -> EngineBackend:
        """The client's transport as a :class:`~fastreq.backends.Backend`."""
        return EngineBackend(self)

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._native is not None else "not started")
        return f"<FastRequests backend={self.backend_name!r} concurrency={self.concurrency} {state}>"

    # ---- the engine client -------------------------------------------

    def _config(self) -> Dict[str, Any]:
        cfg: Dict[str, Any] = {
            "backend": self.backend_name.lower(),
            "concurrency": self.concurrency,
            "max_retries": self.max_retries,
            "rate_limit_burst": self.rate_limit_burst,
            "http2": self.http2,
            "follow_redirects": self.follow_redirects,
            "verify_ssl": self.verify_ssl,
            "random_user_agent": self.random_user_agent,
            "random_proxy": self.random_proxy,
            "proxy_selection": self.proxy_selection,
            "proxy_cooldown": self.proxy_cooldown,
            "debug": self.debug,
            "verbose": self.verbose,
            "return_none_on_failure": self.return_none_on_failure,
        }
        optional = {
            "rate_limit": self.rate_limit,
            "timeout": self.timeout,
            "cookies": self._cookies or None,
            "proxies": self.proxies,
            "webshare_file": self.webshare_file,
            "headers": self.headers or None,
            "max_redirects": self.max_redirects,
            "max_body_size": self.max_body_size,
            "backoff_multiplier": self.backoff_multiplier,
            "jitter": self.jitter,
            "max_delay": self.max_delay,
            "ca_file": self.ca_file,
            "connect_timeout": _no_limit_as_negative(self.connect_timeout),
            "read_timeout": _no_limit_as_negative(self.read_timeout),
            "retry_non_idempotent": self.retry_non_idempotent or None,  # False: the engine default
            "circuit_breaker_threshold": _no_limit_as_negative(self.circuit_breaker_threshold),
            "circuit_breaker_cooldown": self.circuit_breaker_cooldown,
        }
        cfg.update((k, v) for k, v in optional.items() if v is not None)
        # The Go runtime sees the environment the process started with; pass
        # what Python's os.environ says now, so changes made from Python count.
        if self.random_proxy:
            env_proxies = [p.strip() for p in os.environ.get("FASTREQ_PROXIES", "").split(",") if p.strip()]
            if env_proxies:
                cfg["proxies"] = list(self.proxies or []) + env_proxies
        if self.random_user_agent:
            agents = [a.strip() for a in os.environ.get("USER_AGENTS", "").split(",") if a.strip()]
            if agents:
                cfg["user_agents"] = agents
        return cfg

    def _client(self) -> ClientHandle:
        h = self._native
        if h is not None and not self._closed:
            return h
        with self._lock:
            if self._closed:
                raise ClientClosedError("this FastRequests client is closed; create a new one")
            if self._native is None:
                self._native = ClientHandle.new(_json.dumps(self._config()), self.backend_name)
                self._native_settings = (self.follow_redirects, self.verify_ssl, self.timeout)
                if self.verbose and log.isEnabledFor(logging.INFO):
                    lb = _ffi.lib()
                    log.info("Using backend: %s (fastreq engine %s, %s)", resolve_backend(self.backend_name),
                             lb.version_string, lb.path)
            return self._native

    # ---- cookies -----------------------------------------------------

    def set_cookies(self, cookies: Dict[str, str]) -> None:
        """Add or update session cookies sent with every later request."""
        c = check_str_map(cookies, "cookies") or {}
        with self._lock:
            if self._closed:
                raise ClientClosedError("this FastRequests client is closed")
            self._cookies.update(c)
            if self._native is not None and c:
                self._native.set_cookies(_json.dumps(c))

    def reset_cookies(self) -> None:
        """Forget every session cookie, including those servers set."""
        with self._lock:
            self._cookies.clear()
            if self._native is not None and not self._closed:
                self._native.reset_cookies()

    # ---- closing -----------------------------------------------------

    def close_sync(self) -> None:
        """(fastreq addition) Close without an event loop: cancel requests
        still in flight and release the engine client. Idempotent."""
        with self._lock:
            self._closed = True
            h, self._native = self._native, None
        if h is not None:
            h.close()

    async def close(self) -> None:
        """Close the client (cancels requests still in flight)."""
        self.close_sync()

    async def __aenter__(self) -> "FastRequests":
        self._client()
        return self

    async def __aexit__(self, *args: Any) -> None:
        self.close_sync()

    def __enter__(self) -> "FastRequests":
        self._client()
        return self

    def __exit__(self, *args: Any) -> None:
        self.close_sync()

    def __del__(self) -> None:
        try:
            h = self.__dict__.get("_native")
            if h is not None:
                h.close()
        except Exception:  # pragma: no cover
            pass

    # ---- building a call ---------------------------------------------

    def _plan(self, urls: Any, method: str, params: Any, data: Any, json: Any, headers: Any,
              timeout: Optional[float], proxy: Optional[str], return_type: Any,
              follow_redirects: Optional[bool], verify_ssl: Optional[bool],
              stream_callback: Optional[Callable[[bytes], Any]], keys: Optional[Sequence[Any]],
              save_to: Any) -> Plan:
        nf, nv, nt = self._native_settings
        f = self.follow_redirects if follow_redirects is None else bool(follow_redirects)
        v = self.verify_ssl if verify_ssl is None else bool(verify_ssl)
        t = self.timeout if timeout is None else timeout
        send_t: Optional[float] = None
        if t != nt:
            # None or 0 means "no limit"; in a request the engine reads 0 as
            # "the client's timeout", so no limit is sent as a huge one.
            send_t = t if t else _NO_TIMEOUT
        return build_plan(
            urls, method=method, params=params, data=data, json_value=json, headers=headers,
            timeout=send_t, proxy=proxy, return_type=return_type,
            follow_redirects=None if f == nf else f, verify_ssl=None if v == nv else v,
            stream_callback=stream_callback, keys=keys, save_to=save_to,
        )

    def _start(self, plan: Plan, parse_func: Optional[Callable[[Any], Any]], progress: ProgressOption,
               progress_callback: Optional[ProgressCallback], collect: bool) -> "tuple[BatchRun, Any]":
        client = self._client()
        reporter = open_reporter(progress, plan.n)
        try:
            run = BatchRun(plan, parse_func=parse_func, notify=make_notifier(reporter, progress_callback, plan.n),
                           collect=collect, backend_name=self.backend_name)
            try:
                need_meta = plan.rtype in _META_RTYPES or (
                    plan.rtypes is not None and any(rt in plan.rtypes for rt in _META_RTYPES))
                run.attach(client.submit(plan.payload, strict=True, backend_name=self.backend_name,
                                         need_meta=need_meta))
            except BaseException:
                run.close()
                raise
        except BaseException:
            if reporter is not None:
                reporter.close()
            raise
        return run, reporter

    def _finish(self, run: BatchRun, plan: Plan, started: float) -> Any:
        failures = run.failures
        if self.verbose and log.isEnabledFor(logging.INFO):
            self._log_summary(plan.n, len(failures), started)
        if failures and not self.return_none_on_failure:
            raise _partial_failure(run.failures, run.results, plan.n)
        results = run.results
        if plan.single:
            return results[0]
        if plan.keys is not None:
            return dict(zip(plan.keys, results))
        return results

    @staticmethod
    def _one_path(plan: Plan, parse_func: Any, progress: ProgressOption, progress_callback: Any) -> bool:
        """Whether a call is one request the single-request paths serve
        (run_one_sync, run_one_async): a value of type json or content,
        nothing to call or write on the way."""
        return (plan.single and plan.rtype in _ONE_RTYPES and plan.rtypes is None and plan.save_paths is None
                and parse_func is None and not progress
                and progress_callback is None)

    def _one_result(self, value: Any, failure: Optional[FailureDetails], started: float) -> Any:
        if self.verbose and log.isEnabledFor(logging.INFO):
            self._log_summary(1, 0 if failure is None else 1, started)
        if failure is not None and not self.return_none_on_failure:
            raise _partial_failure({0: failure}, [None], 1)
        return value

    @staticmethod
    def _log_summary(n: int, failed: int, started: float) -> None:
        log.info("fastreq: %d requests, %d failed, %.3f s", n, failed, time.monotonic() - started)

    @staticmethod
    def _empty(plan: Plan) -> Any:
        if plan.keys is not None:
            return {}
        return []

    # ---- calls -------------------------------------------------------

    async def request(
        self,
        urls: URLs,
        *,
        method: str = "GET",
        params: Optional[Dict[str, Any]] = None,
        data: Any = None,
        json: Any = None,
        headers: Optional[Dict[str, str]] = None,
        timeout: Optional[float] = None,
        proxy: Optional[str] = None,
        return_type: Union[ReturnType, str] = ReturnType.JSON,
        follow_redirects: Optional[bool] = None,
        verify_ssl: Optional[bool] = None,
        parse_func: Optional[Callable[[Any], Any]] = None,
        stream_callback: Optional[Callable[[bytes], Any]] = None,
        progress: ProgressOption = None,
        progress_callback: Optional[ProgressCallback] = None,
        keys: Optional[List[Any]] = None,
        save_to: Any = None,
    ) -> Any:
        """Run requests and return their results.

        Args:
            urls: One URL (one result), or a list (results in the same
                order). fastreq addition: an item may also be a per-request
                spec, a dict or :class:`RequestConfig` with its own url,
                method, params, data, json, headers, cookies, timeout,
                proxy, return_type, save_to, ...; unset fields inherit the
                call's arguments.
            method, params, data, json, headers, timeout, proxy: the
                request for every URL. data may be a form dict (or list of
                pairs), a str or bytes body; json is serialized for you;
                headers are merged over the client's.
            return_type: "json" (default), "text", "content", "response"
                or "stream" (see :class:`ReturnType`).
            follow_redirects, verify_ssl: override the client's setting.
            parse_func: called on each successful result; its return value
                becomes the result.
            stream_callback: with return_type "stream", called with each
                chunk of bytes as it arrives.
            progress: True, "rich" or "tqdm" for a progress bar.
            progress_callback: called as (completed, total) after each request.
            keys: as long as urls; the result becomes {key: result}.
            save_to: (fastreq addition) write bodies straight to files
                instead of memory: a path for a single URL, a list of paths
                (None = keep in memory) or a function (index, url) -> path.
                The result of a download is its :class:`pathlib.Path`
                (a NormalizedResponse with ``path`` for return_type
                "response").

        Returns:
            One result, a list in URL order, or a dict keyed by ``keys``.

        Raises:
            PartialFailureError: after all requests finished, when any
                failed and return_none_on_failure is False.
            ValidationError, ConfigurationError: bad arguments, before any
                request runs.
        """
        started = time.monotonic()
        plan = self._plan(urls, method, params, data, json, headers, timeout, proxy, return_type,
                          follow_redirects, verify_ssl, stream_callback, keys, save_to)
        if plan.n == 0:
            return self._empty(plan)
        if self._one_path(plan, parse_func, progress, progress_callback):
            value, failure = await run_one_async(self._client(), plan.payload, plan.urls[0], plan.rtype,
                                                 self.backend_name)
            return self._one_result(value, failure, started)
        run, reporter = self._start(plan, parse_func, progress, progress_callback, collect=False)
        await _drive(run, reporter)
        return self._finish(run, plan, started)

    def request_sync(
        self,
        urls: URLs,
        *,
        method: str = "GET",
        params: Optional[Dict[str, Any]] = None,
        data: Any = None,
        json: Any = None,
        headers: Optional[Dict[str, str]] = None,
        timeout: Optional[float] = None,
        proxy: Optional[str] = None,
        return_type: Union[ReturnType, str] = ReturnType.JSON,
        follow_redirects: Optional[bool] = None,
        verify_ssl: Optional[bool] = None,
        parse_func: Optional[Callable[[Any], Any]] = None,
        stream_callback: Optional[Callable[[bytes], Any]] = None,
        progress: ProgressOption = None,
        progress_callback: Optional[ProgressCallback] = None,
        keys: Optional[List[Any]] = None,
        save_to: Any = None,
    ) -> Any:
        """(fastreq addition) :meth:`request` without an event loop.

        Blocks the calling thread (the GIL is released while it waits, in
        slices of 100 ms, so Ctrl-C raises KeyboardInterrupt at once and
        cancels the requests). Works inside a running event loop too
        (Jupyter), where it blocks that loop for the call's duration.
        """
        started = time.monotonic()
        plan = self._plan(urls, method, params, data, json, headers, timeout, proxy, return_type,
                          follow_redirects, verify_ssl, stream_callback, keys, save_to)
        if plan.n == 0:
            return self._empty(plan)
        if self._one_path(plan, parse_func, progress, progress_callback):
            value, failure = run_one_sync(self._client(), plan.payload, plan.urls[0], plan.rtype, self.backend_name)
            return self._one_result(value, failure, started)
        run, reporter = self._start(plan, parse_func, progress, progress_callback, collect=False)
        cancel = True
        try:
            run_sync(run)
            cancel = False
        finally:
            run.close(cancel)  # an exception (KeyboardInterrupt...) cancels the rest
            if reporter is not None:
                reporter.close()
        return self._finish(run, plan, started)

    def as_completed(
        self,
        urls: URLs,
        *,
        method: str = "GET",
        params: Optional[Dict[str, Any]] = None,
        data: Any = None,
        json: Any = None,
        headers: Optional[Dict[str, str]] = None,
        timeout: Optional[float] = None,
        proxy: Optional[str] = None,
        return_type: Union[ReturnType, str] = ReturnType.JSON,
        follow_redirects: Optional[bool] = None,
        verify_ssl: Optional[bool] = None,
        parse_func: Optional[Callable[[Any], Any]] = None,
        stream_callback: Optional[Callable[[bytes], Any]] = None,
        progress: ProgressOption = None,
        progress_callback: Optional[ProgressCallback] = None,
        keys: Optional[List[Any]] = None,
        save_to: Any = None,
    ) -> "AsyncCompletions":
        """(fastreq addition) Run requests and yield each as it completes.

        Same arguments as :meth:`request`. Returns an async iterator of
        :class:`~fastreq.models.Completion` (index, key, url, result,
        error); failures are yielded with ``error`` set, never raised.
        The requests start at the first ``__anext__``; leaving the loop
        early (or ``await it.aclose()``) cancels the rest::

            async with client.as_completed(urls) as it:
                async for done in it:
                    ...
        """
        plan = self._plan(urls, method, params, data, json, headers, timeout, proxy, return_type,
                          follow_redirects, verify_ssl, stream_callback, keys, save_to)
        return AsyncCompletions(self, plan, parse_func, progress, progress_callback)

    def as_completed_sync(
        self,
        urls: URLs,
        *,
        method: str = "GET",
        params: Optional[Dict[str, Any]] = None,
        data: Any = None,
        json: Any = None,
        headers: Optional[Dict[str, str]] = None,
        timeout: Optional[float] = None,
        proxy: Optional[str] = None,
        return_type: Union[ReturnType, str] = ReturnType.JSON,
        follow_redirects: Optional[bool] = None,
        verify_ssl: Optional[bool] = None,
        parse_func: Optional[Callable[[Any], Any]] = None,
        stream_callback: Optional[Callable[[bytes], Any]] = None,
        progress: ProgressOption = None,
        progress_callback: Optional[ProgressCallback] = None,
        keys: Optional[List[Any]] = None,
        save_to: Any = None,
    ) -> "SyncCompletions":
        """(fastreq addition) :meth:`as_completed` as a plain iterator,
        without an event loop. The requests start at once; ``close()`` (or
        leaving a ``with`` block) cancels the rest."""
        plan = self._plan(urls, method, params, data, json, headers, timeout, proxy, return_type,
                          follow_redirects, verify_ssl, stream_callback, keys, save_to)
        return SyncCompletions(self, plan, parse_func, progress, progress_callback)

    async def _request_one(self, config: Any, stream_callback: Optional[Callable[[bytes], Any]]) -> Any:
        """One spec as a NormalizedResponse (Backend.request); a failure
        raises its own exception, not PartialFailureError."""
        plan = self._plan(config, "GET", None, None, None, None, None, None, ReturnType.RESPONSE,
                          None, None, stream_callback, None, None)
        run, reporter = self._start(plan, None, None, None, collect=False)
        await _drive(run, reporter)
        if run.failures:
            raise run.failures[0].error
        return run.results[0]


async def _drive(run: BatchRun, reporter: Any) -> None:
    """Feed run from the running loop until the batch is done. Cancelling
    the awaiting task (or any exception) cancels the batch in the engine;
    the batch is freed either way."""
    pump = AsyncPump(run, asyncio.get_running_loop())
    cancel = True
    try:
        pump.start()
        while run.remaining > 0:
            await pump.wait()
        cancel = False
    finally:
        pump.stop()
        run.close(cancel)
        if reporter is not None:
            reporter.close()


def _partial_failure(failures_by_index: Dict[int, FailureDetails], results: List[Any],
                     total: int) -> PartialFailureError:
    by_index = dict(sorted(failures_by_index.items()))
    failures: Dict[str, FailureDetails] = {}
    for fd in by_index.values():
        failures[fd.url] = fd
    exc = PartialFailureError(
        f"Partial failure: {len(by_index)} of {total} requests failed",
        failures=failures,
        successes=total - len(by_index),
        total=total,
    )
    results = list(results)
    for i, fd in by_index.items():
        results[i] = fd.error
    exc.results = results
    exc.failures_by_index = by_index
    return exc


class _Completions:
    """Shared state of the as-completed iterators."""

    def __init__(self, client: FastRequests, plan: Plan, parse_func: Optional[Callable[[Any], Any]],
                 progress: ProgressOption, progress_callback: Optional[ProgressCallback]) -> None:
        self._client = client
        self._plan = plan
        self._parse_func = parse_func
        self._progress = progress
        self._progress_callback = progress_callback
        self._run: Optional[BatchRun] = None
        self._reporter: Any = None
        self._finished = plan.n == 0

    def _begin(self) -> BatchRun:
        self._run, self._reporter = self._client._start(
            self._plan, self._parse_func, self._progress, self._progress_callback, collect=True)
        return self._run

    def _completion(self, run: BatchRun, idx: int) -> Completion:
        plan = self._plan
        result = run.results[idx]
        run.results[idx] = None  # the iterator hands it over: do not keep it
        fd = run.failures.get(idx)
        key = plan.keys[idx] if plan.keys is not None else idx
        return Completion(idx, key, plan.urls[idx], result, fd.error if fd is not None else None)

    def _release(self, cancel: bool) -> None:
        run, self._run = self._run, None
        self._finished = True
        if run is not None:
            run.close(cancel)
        rep, self._reporter = self._reporter, None
        if rep is not None:
            rep.close()

    @property
    def total(self) -> int:
        return self._plan.n


class SyncCompletions(_Completions):
    """Iterator of :class:`Completion` as requests finish (see
    :meth:`FastRequests.as_completed_sync`)."""

    def __init__(self, *args: Any, owns_client: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._owns_client = owns_client
        if not self._finished:
            try:
                self._begin()
            except BaseException:
                self._finished = True
                if owns_client:
                    self._client.close_sync()
                raise

    def __iter__(self) -> "SyncCompletions":
        return self

    def __next__(self) -> Completion:
        run = self._run
        if run is None:
            self.close()
            raise StopIteration
        try:
            if not run.completed:
                wait = _ffi.lib().batch_wait
                while not run.completed and run.remaining > 0:
                    n = wait(run.h, 100)
                    if n > 0:
                        run.pump()
                    elif n < 0:
                        check_rc(n, "fastreq_batch_wait")
        except BaseException:
            self.close()
            raise
        if run.completed:
            return self._completion(run, run.completed.popleft())
        self.close()
        raise StopIteration

    def close(self) -> None:
        """Cancel what is still running and release the batch."""
        self._release(cancel=True)
        if self._owns_client:
            self._owns_client = False
            self._client.close_sync()

    def __enter__(self) -> "SyncCompletions":
        return self

    def __exit__(self, *args: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover
            pass


class AsyncCompletions(_Completions):
    """Async iterator of :class:`Completion` as requests finish (see
    :meth:`FastRequests.as_completed`)."""

    def __init__(self, *args: Any, owns_client: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pump: Optional[AsyncPump] = None
        self._owns_client = owns_client

    def __aiter__(self) -> "AsyncCompletions":
        return self

    async def __anext__(self) -> Completion:
        if self._finished and self._run is None:
            self._close()
            raise StopAsyncIteration
        try:
            run = self._run
            if run is None:
                run = self._begin()
                self._pump = AsyncPump(run, asyncio.get_running_loop(), wake_each=True)
                self._pump.start()
            assert self._pump is not None
            while not run.completed and run.remaining > 0:
                await self._pump.wait()
        except BaseException:
            self._close()
            raise
        if run.completed:
            return self._completion(run, run.completed.popleft())
        self._close()
        raise StopAsyncIteration

    def _close(self) -> None:
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.stop()
        self._release(cancel=True)
        if self._owns_client:
            self._owns_client = False
            self._client.close_sync()

    async def aclose(self) -> None:
        """Cancel what is still running and release the batch."""
        self._close()

    async def __aenter__(self) -> "AsyncCompletions":
        return self

    async def __aexit__(self, *args: Any) -> None:
        self._close()

    def __del__(self) -> None:
        try:
            self._close()
        except Exception:  # pragma: no cover
            pass


# ---- module-level functions ----------------------------------------------

_CLIENT_KEYS = (
    "backend", "concurrency", "max_retries", "rate_limit", "rate_limit_burst", "http2", "follow_redirects",
    "verify_ssl", "timeout", "cookies", "random_user_agent", "random_proxy", "proxies", "proxy_selection",
    "proxy_cooldown", "webshare_file", "headers", "debug", "verbose", "return_none_on_failure", "impersonate",
    "max_redirects", "max_body_size", "backoff_multiplier", "jitter", "max_delay", "ca_file",
    "connect_timeout", "read_timeout", "retry_non_idempotent", "circuit_breaker_threshold",
    "circuit_breaker_cooldown",
)


def fastreq(
    urls: URLs,
    *,
    backend: str = "auto",
    concurrency: int = 20,
    max_retries: int = 3,
    rate_limit: Optional[float] = None,
    rate_limit_burst: int = 5,
    http2: bool = True,
    follow_redirects: bool = True,
    verify_ssl: bool = True,
    timeout: Optional[float] = None,
    cookies: Optional[Dict[str, str]] = None,
    random_user_agent: bool = True,
    random_proxy: bool = False,
    proxies: Optional[List[str]] = None,
    proxy_selection: str = "round_robin",
    proxy_cooldown: float = 60.0,
    webshare_file: Optional[str] = None,
    headers: Optional[Dict[str, str]] = None,
    debug: bool = False,
    verbose: bool = True,
    return_none_on_failure: bool = False,
    method: str = "GET",
    params: Optional[Dict[str, Any]] = None,
    data: Any = None,
    json: Any = None,
    proxy: Optional[str] = None,
    return_type: Union[ReturnType, str] = ReturnType.JSON,
    parse_func: Optional[Callable[[Any], Any]] = None,
    stream_callback: Optional[Callable[[bytes], Any]] = None,
    progress: ProgressOption = None,
    progress_callback: Optional[ProgressCallback] = None,
    keys: Optional[List[Any]] = None,
    save_to: Any = None,
    impersonate: Optional[str] = None,
    max_redirects: Optional[int] = None,
    max_body_size: Optional[int] = None,
    backoff_multiplier: Optional[float] = None,
    jitter: Optional[float] = None,
    max_delay: Optional[float] = None,
    ca_file: Optional[str] = None,
    connect_timeout: Optional[float] = None,
    read_timeout: Optional[float] = None,
    retry_non_idempotent: bool = False,
    circuit_breaker_threshold: Optional[int] = None,
    circuit_breaker_cooldown: Optional[float] = None,
) -> Any:
    """Run requests synchronously and return their results.

    Builds a :class:`FastRequests` from the client parameters, runs one
    request call with the request parameters and closes the client. It uses
    no event loop: it waits with the GIL released in 100 ms slices, so
    Ctrl-C raises KeyboardInterrupt promptly (cancelling the requests), and
    it works inside a running event loop (Jupyter).

    See :class:`FastRequests` for the client parameters and
    :meth:`FastRequests.request` for the request parameters.
    """
    client, request_kw = _one_shot(locals())
    try:
        return client.request_sync(**request_kw)
    finally:
        client.close_sync()


async def fastreq_async(
    urls: URLs,
    *,
    backend: str = "auto",
    concurrency: int = 20,
    max_retries: int = 3,
    rate_limit: Optional[float] = None,
    rate_limit_burst: int = 5,
    http2: bool = True,
    follow_redirects: bool = True,
    verify_ssl: bool = True,
    timeout: Optional[float] = None,
    cookies: Optional[Dict[str, str]] = None,
    random_user_agent: bool = True,
    random_proxy: bool = False,
    proxies: Optional[List[str]] = None,
    proxy_selection: str = "round_robin",
    proxy_cooldown: float = 60.0,
    webshare_file: Optional[str] = None,
    headers: Optional[Dict[str, str]] = None,
    debug: bool = False,
    verbose: bool = True,
    return_none_on_failure: bool = False,
    method: str = "GET",
    params: Optional[Dict[str, Any]] = None,
    data: Any = None,
    json: Any = None,
    proxy: Optional[str] = None,
    return_type: Union[ReturnType, str] = ReturnType.JSON,
    parse_func: Optional[Callable[[Any], Any]] = None,
    stream_callback: Optional[Callable[[bytes], Any]] = None,
    progress: ProgressOption = None,
    progress_callback: Optional[ProgressCallback] = None,
    keys: Optional[List[Any]] = None,
    save_to: Any = None,
    impersonate: Optional[str] = None,
    max_redirects: Optional[int] = None,
    max_body_size: Optional[int] = None,
    backoff_multiplier: Optional[float] = None,
    jitter: Optional[float] = None,
    max_delay: Optional[float] = None,
    ca_file: Optional[str] = None,
    connect_timeout: Optional[float] = None,
    read_timeout: Optional[float] = None,
    retry_non_idempotent: bool = False,
    circuit_breaker_threshold: Optional[int] = None,
    circuit_breaker_cooldown: Optional[float] = None,
) -> Any:
    """The coroutine twin of :func:`fastreq`. It never blocks the event
    loop and uses no thread per request: the batch's readiness descriptor
    is watched with ``loop.add_reader``. Cancelling the awaiting task
    cancels the requests in the engine."""
    client, request_kw = _one_shot(locals())
    try:
        return await client.request(**request_kw)
    finally:
        client.close_sync()


def _one_shot(arguments: Dict[str, Any]) -> "tuple[FastRequests, Dict[str, Any]]":
    """Split the arguments of fastreq()/fastreq_async() into a client built
    from the client parameters and the keyword arguments of its request."""
    request_kw = dict(arguments)
    client_kw = {k: request_kw.pop(k) for k in _CLIENT_KEYS}
    return FastRequests(client_kw.pop("backend"), **client_kw), request_kw


def _completions_setup(name: str, urls: URLs, kwargs: Dict[str, Any]) -> "tuple[Any, ...]":
    """The client (owned by the iterator), plan and callbacks of the
    module-level as-completed iterators."""
    req_kw = dict(kwargs)
    client = FastRequests(**{k: req_kw.pop(k) for k in list(req_kw) if k in _CLIENT_KEYS})
    try:
        plan = client._plan(
            urls, req_kw.pop("method", "GET"), req_kw.pop("params", None), req_kw.pop("data", None),
            req_kw.pop("json", None), None, None, req_kw.pop("proxy", None),
            req_kw.pop("return_type", ReturnType.JSON), None, None, req_kw.pop("stream_callback", None),
            req_kw.pop("keys", None), req_kw.pop("save_to", None))
        callbacks = (req_kw.pop("parse_func", None), req_kw.pop("progress", None),
                     req_kw.pop("progress_callback", None))
        if req_kw:
            raise TypeError(f"{name}() got unexpected keyword arguments: {', '.join(req_kw)}")
    except BaseException:
        client.close_sync()
        raise
    return (client, plan) + callbacks


def fastreq_as_completed(urls: URLs, **kwargs: Any) -> SyncCompletions:
    """(fastreq addition) Like :func:`fastreq` (same keyword arguments) but
    returns an iterator of :class:`Completion` in completion order. The
    client it creates is closed when the iterator is exhausted or closed::

        with fastreq_as_completed(urls, concurrency=100) as it:
            for done in it:
                print(done.index, done.result, done.error)
    """
    return SyncCompletions(*_completions_setup("fastreq_as_completed", urls, kwargs), owns_client=True)


def fastreq_as_completed_async(urls: URLs, **kwargs: Any) -> AsyncCompletions:
    """(fastreq addition) Like :func:`fastreq_async` (same keyword
    arguments) but returns an async iterator of :class:`Completion` in
    completion order; the client it creates is closed at the end::

        async for done in fastreq_as_completed_async(urls):
            ...
    """
    return AsyncCompletions(*_completions_setup("fastreq_as_completed_async", urls, kwargs), owns_client=True)


# Backwards compatibility alias (fastreq 2.x name).
ParallelRequests = FastRequests

