"""The client: FastRequests.

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
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Type, Union, overload

from . import _ffi, _json
from ._drive import AsyncPump, Hubs, run_one_async, run_one_sync, run_sync
from ._records import BatchRun
from ._completions import AsyncCompletions, C, SyncCompletions
from ._encode import NO_TIMEOUT, RT_CONTENT, RT_JSON, RT_RESPONSE, RT_TEXT, Plan, build_plan
from ._handles import BatchHandle, ClientHandle
from ._params import (DEFAULT_REQUEST, ClientParams, ClientSettings, RequestParams, RequestSettings, method_signature_of,
                      str_map)
from ._progress import open_reporter
from .backends import EngineBackend, resolve_backend
from .exceptions import ClientClosedError, FailureDetails, PartialFailureError
from .models import NormalizedResponse, RequestConfig, ReturnType

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Unpack

    from ._kwargs import RequestKeyed, RequestKwargs, RequestParsed, RequestTyped
    from ._params import URLs, AsBuffer, AsContent, AsResponse, AsStream, AsText, K, Many, Single, Specs, T

log = logging.getLogger("fastreq")
log.addHandler(logging.NullHandler())

_debug_handler: Optional[logging.Handler] = None

#: The return types the single-request paths serve (see run_one_sync): those
#: that need no metadata of a successful response, which they go without.
_ONE_RTYPES = (RT_JSON, RT_CONTENT)
#: The return types that read a successful response's metadata: "response",
#: and "text" for the charset of its Content-Type.
_META_RTYPES = (RT_RESPONSE, RT_TEXT)

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


class FastRequests(ClientSettings):
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
        http3: Move an https origin to HTTP/3 once it advertises it
            (``Alt-Svc: h3``), back to TCP when QUIC fails; ``backend="http3"``
            uses HTTP/3 only.
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
        impersonate: Pass for a browser on https: its TLS ClientHello
            (JA3/JA4 fingerprint), HTTP/2 frames and request headers,
            User-Agent included (those headers set win); one of
            :data:`~fastreq.backends.IMPERSONATE_TARGETS`, "random" (one
            picked per client) or "chrome", "safari", "firefox" (the
            newest of each). None: the FASTREQ_IMPERSONATE environment
            variable, else none. Turns random_user_agent off.
        max_redirects, max_body_size, backoff_multiplier, jitter,
        max_delay: (fastreq additions) redirect limit (default 20), most
            body bytes kept in memory per response (default 1 GiB), and the
            retry delay shape (defaults 1.0 s, 0.1, 60 s).
        ca_file: (fastreq addition) PEM file of extra trusted root
            certificates (a private CA), added to the system's.
        max_connections: (fastreq addition) most connections the client
            holds open, in use or idle, whatever the number of hosts (each
            is a file descriptor); None = concurrency + 8, else at least
            concurrency. When all are
            taken, idle ones are closed first. A job that comes back to
            many hosts reconnects less with one per host, as far as the
            process's descriptor limit allows.
        concurrency_per_host, rate_limit_per_host,
        rate_limit_per_host_burst: (fastreq additions) most requests in
            flight to one host (scheme, host and port), and requests per
            second to one host with its burst (default 1); None = no
            per-host limit. A request waiting for its host holds no
            concurrency slot and never holds up requests to other hosts.
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
        dns_cache_ttl: (fastreq addition) seconds the client keeps the
            addresses a host name resolved to, so that new connections do
            not look it up again ("no such host" is kept up to 5 s);
            concurrent lookups of one name are one lookup; None = the
            engine's default (60 s), 0 = keep nothing.
        auto_throttle: (fastreq addition) adapt each host's request rate
            to its answers: a 429 or 503, or an attempt that timed out,
            halves the host's rate (once per round of requests), each
            success raises it a step, up to ``rate_limit_per_host`` when
            set and never below one request per second; each slow-down is
            logged at INFO on the "fastreq" logger.

    The engine client is created on first use, so constructing a
    FastRequests never starts the Go runtime. A closed client raises
    :class:`~fastreq.exceptions.ClientClosedError`.

    Thread safety: one client may be shared by several threads (and used
    from several event loops); each call runs its own batch.
    """

    @method_signature_of(ClientParams)
    def __init__(self, backend: str = ClientParams.backend, **settings: Any) -> None:
        self._native: Optional[ClientHandle] = None
        self._closed = False
        self._lock = threading.RLock()
        self._hubs = Hubs()
        resolve_backend(backend)  # ConfigurationError listing the valid names
        self.backend_name = backend
        super().__init__(**settings)  # checks and converts every setting
        self.cookies = self.cookies or {}  # set_cookies() and reset_cookies() keep it
        self._native_settings = (self.follow_redirects, self.verify_ssl, self.timeout)
        if self.debug:
            _enable_debug_logging()

    # ---- attributes --------------------------------------------------

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

    def _client(self) -> ClientHandle:
        h = self._native
        if h is not None and not self._closed:
            return h
        with self._lock:
            if self._closed:
                raise ClientClosedError("this FastRequests client is closed; create a new one")
            if self._native is None:
                cfg = self.engine_config()
                cfg["backend"] = resolve_backend(self.backend_name)
                self._native = ClientHandle.new(_json.dumps(cfg), self.backend_name)
                self._native_settings = (self.follow_redirects, self.verify_ssl, self.timeout)
                if self.verbose and log.isEnabledFor(logging.INFO):
                    lb = _ffi.lib()
                    log.info("Using backend: %s (fastreq engine %s, %s)", resolve_backend(self.backend_name),
                             lb.version_string, lb.path)
            return self._native

    # ---- cookies -----------------------------------------------------

    def set_cookies(self, cookies: Dict[str, str]) -> None:
        """Add or update session cookies sent with every later request
        (``cookies`` holds those set from Python; cookies that servers set
        live in the engine)."""
        c = str_map("cookies", cookies)
        with self._lock:
            if self._closed:
                raise ClientClosedError("this FastRequests client is closed")
            self.cookies = dict(self.cookies or {}, **c)
            if self._native is not None and c:
                self._native.set_cookies(_json.dumps(c))

    def reset_cookies(self) -> None:
        """Forget every session cookie, including those servers set."""
        with self._lock:
            self.cookies = {}
            if self._native is not None and not self._closed:
                self._native.reset_cookies()

    # ---- closing -----------------------------------------------------

    def close_sync(self) -> None:
        """(fastreq addition) Close without an event loop: cancel requests
        still in flight and release the engine client. Idempotent."""
        with self._lock:
            self._closed = True
            h, self._native = self._native, None
        self._hubs.close()
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

    # ---- building a call ---------------------------------------------

    def _call(self, urls: Any, kwargs: Dict[str, Any]) -> "tuple[RequestSettings, Plan]":
        s = RequestSettings(**kwargs) if kwargs else DEFAULT_REQUEST
        return s, self._plan(urls, s)

    def _plan(self, urls: Any, s: RequestSettings) -> Plan:
        nf, nv, nt = self._native_settings
        f = self.follow_redirects if s.follow_redirects is None else bool(s.follow_redirects)
        v = self.verify_ssl if s.verify_ssl is None else bool(s.verify_ssl)
        t = self.timeout if s.timeout is None else s.timeout
        send_t: Optional[float] = None
        if t != nt:
            # None or 0 means "no limit"; in a request the engine reads 0 as
            # "the client's timeout", so no limit is sent as a huge one.
            send_t = t if t else NO_TIMEOUT
        return build_plan(urls, s, timeout=send_t, follow_redirects=None if f == nf else f,
                          verify_ssl=None if v == nv else v)

    def _start(self, plan: Plan, s: RequestSettings, collect: bool) -> BatchRun:
        client = self._client()
        run = BatchRun(plan, parse_func=s.parse_func, collect=collect, backend_name=self.backend_name)
        try:
            run.progress = open_reporter(s.progress, s.progress_callback, plan.n)
            need_meta = plan.rtype in _META_RTYPES or (
                plan.rtypes is not None and any(rt in plan.rtypes for rt in _META_RTYPES))
            run.attach(BatchHandle(client.submit(plan.payload, backend_name=self.backend_name, need_meta=need_meta)))
        except BaseException:
            run.close()
            raise
        return run

    def _finish(self, plan: Plan, results: List[Any], failures: Dict[int, FailureDetails], started: float) -> Any:
        """The call's result, or PartialFailureError; logs its summary."""
        if self.verbose and log.isEnabledFor(logging.INFO):
            log.info("fastreq: %d requests, %d failed, %.3f s", plan.n, len(failures), time.monotonic() - started)
        if failures and not self.return_none_on_failure:
            raise _partial_failure(failures, results, plan.n)
        if plan.single:
            return results[0]
        if plan.keys is not None:
            return dict(zip(plan.keys, results))
        return results

    @staticmethod
    def _one_path(plan: Plan, s: RequestSettings) -> bool:
        """Whether a call is one request the single-request paths serve
        (run_one_sync, run_one_async): a value of type json or content,
        nothing to call or write on the way."""
        return (plan.single and plan.rtype in _ONE_RTYPES and plan.rtypes is None and plan.save_paths is None
                and s.parse_func is None and not s.progress and s.progress_callback is None)

    # ---- calls -------------------------------------------------------

    # What a call returns, as fastreq() does (api.py). self is positional-only
    # here as in the type method_signature_of gives the implementation.
    @overload
    async def request(self, /, urls: str, *, return_type: AsText, **kwargs: Unpack[RequestTyped]) -> Optional[str]: ...
    @overload
    async def request(self, /, urls: Many, *, return_type: AsText,
                      **kwargs: Unpack[RequestTyped]) -> List[Optional[str]]: ...
    @overload
    async def request(self, /, urls: str, *, return_type: AsContent,
                      **kwargs: Unpack[RequestTyped]) -> Optional[bytes]: ...
    @overload
    async def request(self, /, urls: Many, *, return_type: AsContent,
                      **kwargs: Unpack[RequestTyped]) -> List[Optional[bytes]]: ...
    @overload
    async def request(self, /, urls: str, *, return_type: AsResponse,
                      **kwargs: Unpack[RequestTyped]) -> Optional[NormalizedResponse]: ...
    @overload
    async def request(self, /, urls: Many, *, return_type: AsResponse,
                      **kwargs: Unpack[RequestTyped]) -> List[Optional[NormalizedResponse]]: ...
    @overload
    async def request(self, /, urls: str, *, return_type: AsStream, **kwargs: Unpack[RequestTyped]) -> None: ...
    @overload
    async def request(self, /, urls: Many, *, return_type: AsStream, **kwargs: Unpack[RequestTyped]) -> List[None]: ...
    @overload
    async def request(self, /, urls: str, *, return_type: AsBuffer,
                      **kwargs: Unpack[RequestTyped]) -> Optional[memoryview]: ...
    @overload
    async def request(self, /, urls: Many, *, return_type: AsBuffer,
                      **kwargs: Unpack[RequestTyped]) -> List[Optional[memoryview]]: ...
    @overload
    async def request(self, /, urls: Single, *, parse_func: Callable[[Any], T],
                      **kwargs: Unpack[RequestParsed]) -> Optional[T]: ...
    @overload
    async def request(self, /, urls: Specs, *, parse_func: Callable[[Any], T],
                      **kwargs: Unpack[RequestParsed]) -> List[Optional[T]]: ...
    @overload
    async def request(self, /, urls: Specs, *, keys: None = None, **kwargs: Unpack[RequestKeyed]) -> List[Any]: ...
    @overload
    async def request(self, /, urls: Specs, *, keys: List[K], **kwargs: Unpack[RequestKeyed]) -> Dict[K, Any]: ...
    @overload
    async def request(self, /, urls: URLs, **kwargs: Unpack[RequestKwargs]) -> Any: ...
    @method_signature_of(RequestParams)
    async def request(self, urls: Any, **kwargs: Any) -> Any:
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
            return_type: "json" (default), "text", "content", "response",
                "stream" or "buffer" (see :class:`ReturnType`).
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
        s, plan = self._call(urls, kwargs)
        if plan.n == 0:
            return {} if plan.keys is not None else []
        if self._one_path(plan, s):
            value, failure = await run_one_async(self._client(), self._hubs, plan.payload, plan.urls[0],
                                                 plan.rtype, self.backend_name)
            return self._finish(plan, [value], {} if failure is None else {0: failure}, started)
        run = self._start(plan, s, collect=False)
        await _drive(run)
        return self._finish(plan, run.results, run.failures, started)

    @overload
    def request_sync(self, /, urls: str, *, return_type: AsText, **kwargs: Unpack[RequestTyped]) -> Optional[str]: ...
    @overload
    def request_sync(self, /, urls: Many, *, return_type: AsText,
                     **kwargs: Unpack[RequestTyped]) -> List[Optional[str]]: ...
    @overload
    def request_sync(self, /, urls: str, *, return_type: AsContent,
                     **kwargs: Unpack[RequestTyped]) -> Optional[bytes]: ...
    @overload
    def request_sync(self, /, urls: Many, *, return_type: AsContent,
                     **kwargs: Unpack[RequestTyped]) -> List[Optional[bytes]]: ...
    @overload
    def request_sync(self, /, urls: str, *, return_type: AsResponse,
                     **kwargs: Unpack[RequestTyped]) -> Optional[NormalizedResponse]: ...
    @overload
    def request_sync(self, /, urls: Many, *, return_type: AsResponse,
                     **kwargs: Unpack[RequestTyped]) -> List[Optional[NormalizedResponse]]: ...
    @overload
    def request_sync(self, /, urls: str, *, return_type: AsStream, **kwargs: Unpack[RequestTyped]) -> None: ...
    @overload
    def request_sync(self, /, urls: Many, *, return_type: AsStream, **kwargs: Unpack[RequestTyped]) -> List[None]: ...
    @overload
    def request_sync(self, /, urls: str, *, return_type: AsBuffer,
                     **kwargs: Unpack[RequestTyped]) -> Optional[memoryview]: ...
    @overload
    def request_sync(self, /, urls: Many, *, return_type: AsBuffer,
                     **kwargs: Unpack[RequestTyped]) -> List[Optional[memoryview]]: ...
    @overload
    def request_sync(self, /, urls: Single, *, parse_func: Callable[[Any], T],
                     **kwargs: Unpack[RequestParsed]) -> Optional[T]: ...
    @overload
    def request_sync(self, /, urls: Specs, *, parse_func: Callable[[Any], T],
                     **kwargs: Unpack[RequestParsed]) -> List[Optional[T]]: ...
    @overload
    def request_sync(self, /, urls: Specs, *, keys: None = None, **kwargs: Unpack[RequestKeyed]) -> List[Any]: ...
    @overload
    def request_sync(self, /, urls: Specs, *, keys: List[K], **kwargs: Unpack[RequestKeyed]) -> Dict[K, Any]: ...
    @overload
    def request_sync(self, /, urls: URLs, **kwargs: Unpack[RequestKwargs]) -> Any: ...
    @method_signature_of(RequestParams)
    def request_sync(self, urls: Any, **kwargs: Any) -> Any:
        """(fastreq addition) :meth:`request` without an event loop.

        Blocks the calling thread (the GIL is released while it waits, in
        slices of 100 ms, so Ctrl-C raises KeyboardInterrupt at once and
        cancels the requests). Works inside a running event loop too
        (Jupyter), where it blocks that loop for the call's duration.
        """
        started = time.monotonic()
        s, plan = self._call(urls, kwargs)
        if plan.n == 0:
            return {} if plan.keys is not None else []
        if self._one_path(plan, s):
            value, failure = run_one_sync(self._client(), plan.payload, plan.urls[0], plan.rtype, self.backend_name)
            return self._finish(plan, [value], {} if failure is None else {0: failure}, started)
        run = self._start(plan, s, collect=False)
        try:
            run_sync(run)
        finally:
            run.close()  # after an exception (KeyboardInterrupt...) this cancels the rest
        return self._finish(plan, run.results, run.failures, started)

    @method_signature_of(RequestParams)
    def as_completed(self, urls: Any, **kwargs: Any) -> AsyncCompletions:
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
        return self._completions(AsyncCompletions, urls, RequestSettings(**kwargs))

    @method_signature_of(RequestParams)
    def as_completed_sync(self, urls: Any, **kwargs: Any) -> SyncCompletions:
        """(fastreq addition) :meth:`as_completed` as a plain iterator,
        without an event loop. The requests start at once; ``close()`` (or
        leaving a ``with`` block) cancels the rest."""
        return self._completions(SyncCompletions, urls, RequestSettings(**kwargs))

    def _completions(self, cls: Type[C], urls: Any, s: RequestSettings,
                     close_client: Optional[Callable[[], None]] = None) -> C:
        """An as-completed iterator of the call of urls with settings s;
        close_client is called at its end (for an iterator that owns the
        client)."""
        plan = self._plan(urls, s)
        return cls(plan, lambda: self._start(plan, s, collect=True), close_client)

    async def request_one(self, config: Union[RequestConfig, Dict[str, Any], str],
                          stream_callback: Optional[Callable[[bytes], Any]] = None) -> NormalizedResponse:
        """(fastreq addition) One request spec (a RequestConfig, a dict or a
        URL) as a NormalizedResponse, as :meth:`Backend.request` gives it:
        a failure raises its own exception, not PartialFailureError."""
        s = RequestSettings(return_type=ReturnType.RESPONSE, stream_callback=stream_callback)
        plan = self._plan(config, s)
        run = self._start(plan, s, collect=False)
        await _drive(run)
        if run.failures:
            raise run.failures[0].error
        result: NormalizedResponse = run.results[0]
        return result


async def _drive(run: BatchRun) -> None:
    """Feed run from the running loop until the batch is done. Cancelling
    the awaiting task (or any exception) cancels the batch in the engine;
    the batch is freed either way."""
    pump = AsyncPump(run, asyncio.get_running_loop())
    try:
        pump.start()
        while run.remaining > 0:
            await pump.wait()
    finally:
        pump.stop()
        run.close()


def _partial_failure(failures_by_index: Dict[int, FailureDetails], results: List[Any],
                     total: int) -> PartialFailureError:
    by_index = dict(sorted(failures_by_index.items()))
    exc = PartialFailureError(
        f"Partial failure: {len(by_index)} of {total} requests failed",
        failures={fd.url: fd for fd in by_index.values()},
        successes=total - len(by_index),
        total=total,
    )
    exc.results = [by_index[i].error if i in by_index else r for i, r in enumerate(results)]
    exc.failures_by_index = by_index
    return exc
