"""Our fastreq, synchronous API: one fastreq() call for the whole batch
(mode serial: one client kept open, FastRequests.request_sync(url) per
request, so connections are reused as with the async peers). Runs from the
repository: PYTHONPATH=python and FASTREQ_LIBRARY (build/libfastreq.so
unless the harness was given another), set by the harness.

--hosts: the same fastreq() call over a list of URLs on that many loopback
hosts. Mode storm: fastreq(..., max_retries=R) with the library's default
backoff and return_none_on_failure=False, so that every failure's kind and
attempts can be checked (the call raises PartialFailureError, whose
results hold the exceptions); --circuit-breaker-threshold T passes
circuit_breaker_threshold=T, and a library without that option makes the
run unsupported (n/a). --keep-per-host passes max_connections = hosts +
concurrency, so that a connection is kept per host as go-floor and aiohttp
keep them (the soft descriptor limit raised to allow it), n/a likewise.
--buffer (mode bytes) asks for return_type="buffer": each body a view of
the memory the engine read it into, not a copy; n/a likewise."""

import time
import warnings

import fastreq as fr

import _common as c

warnings.simplefilter("ignore")

BREAKER = "circuit_breaker_threshold"


def options(args) -> dict:
    o = c.fastreq_options(args)
    if args.proto == "h1":
        o["http2"] = False
    elif args.proto == "h2c":
        o["backend"] = "http2"  # h2c with prior knowledge
    elif args.proto == "h3":
        o["backend"] = "http3"  # HTTP/3 over QUIC
    else:
        o["http2"] = True  # h2 by ALPN
    return o


def breaker_rejection(args) -> str:
    """Why this Python package and library do not take the circuit breaker
    option ("" when they do). One request to the closed port, made before
    the clock starts whichever variant runs, so both load the library
    alike."""
    try:
        fr.fastreq([args.url], max_retries=0, return_none_on_failure=True, verbose=False, **{BREAKER: 20})
    except TypeError as e:
        if BREAKER not in str(e):
            raise
        return f"the Python package has no {BREAKER}"
    except (fr.ValidationError, fr.ConfigurationError) as e:
        if BREAKER not in str(e):
            raise
        return f"the library rejects {BREAKER}: {str(e)[:160]}"
    return ""


def storm_kind(e: BaseException) -> str:
    """The failure's kind when the request failed the way it should at a
    closed port, else ""."""
    if not isinstance(e, fr.FastRequestsError) or getattr(e, "status_code", None):
        return ""
    kind = getattr(e, "kind", None) or "?"
    if kind == "retries_exhausted" and getattr(e, "last_error", None) is not None:
        last = storm_kind(e.last_error)
        return f"{kind}({last})" if last else ""
    return "" if kind in c.NOT_STORM_KINDS else kind


def storm(args, o: dict, name: str, version: str) -> None:
    rejected = breaker_rejection(args)
    o = dict(o, max_retries=args.retries, return_none_on_failure=False)
    if args.circuit_breaker_threshold is not None:
        if rejected:
            c.unsupported(rejected)
        o[BREAKER] = args.circuit_breaker_threshold
        info = f"{BREAKER}={args.circuit_breaker_threshold}"
    else:
        info = f"no {BREAKER} in this build ({rejected})" if rejected else f"{BREAKER}: library default"
    cpu0 = c.cpu_seconds()
    t0 = time.perf_counter()
    try:
        results = fr.fastreq([args.url] * args.n, **o)
    except fr.PartialFailureError as e:
        results = e.results
    elapsed = time.perf_counter() - t0
    cpu = c.cpu_seconds() - cpu0
    kinds: dict[str, int] = {}
    bad: list[str] = []
    attempts = 0
    for r in results:
        if isinstance(r, BaseException):
            attempts += int(getattr(r, "attempts", 0) or 0)
            k = storm_kind(r)
            if k:
                kinds[k] = kinds.get(k, 0) + 1
                continue
        bad.append(f"{type(r).__name__}: {str(r)[:200]}")
    c.report_storm(name, version, args, kinds, bad, attempts, elapsed, cpu, c.nofile_info() + "; " + info)


def jsonl(args, o: dict, path: str) -> None:
    """Mode jsonl the way a user writes it with the Python API: one
    fastreq() call for every response, then the records `fastreq fetch`
    writes (without the headers), one JSON line each."""
    import json

    urls = c.jsonl_urls(args)
    o = dict(o, return_type="response")
    with open(path, "w") as f:
        for i, (url, r) in enumerate(zip(urls, fr.fastreq(urls, **o))):
            if r is None:
                rec = {"index": i, "error": {"kind": "failed"}, "url": url}
            else:
                rec = {"index": i, "error": None, "url": url, "final_url": r.url, "status": r.status_code,
                       "http_version": r.http_version, "elapsed": r.elapsed, "attempts": r.attempts,
                       "size": len(r.content), "body": r.text}
            f.write(json.dumps(rec) + "\n")


def main() -> None:
    args = c.parse_args()
    o = options(args)
    version = getattr(fr, "__version__", "?")
    name = "fastreq" if args.circuit_breaker_threshold is None else "fastreq-nobreaker"
    if args.keep_per_host:
        name = "fastreq-conns"
        o["max_connections"] = args.hosts + args.concurrency
        try:
            fr.FastRequests(max_connections=1).close_sync()
        except TypeError:
            c.unsupported("the Python package has no max_connections")
    if args.buffer:
        name = "fastreq-buffer"
        if "BUFFER" not in getattr(fr.ReturnType, "__members__", {}):
            c.unsupported("the Python package has no return_type 'buffer'")
        o["return_type"] = "buffer"
    if args.mode == "storm":
        storm(args, o, name, version)
    elif args.mode == "jsonl":
        c.run_jsonl("fastreq", version, args, lambda path: jsonl(args, o, path))
    elif args.mode == "serial":
        o["concurrency"] = 1
        rt = o.pop("return_type")
        with fr.FastRequests(**o) as client:
            c.run_serial("fastreq", version, args, lambda: client.request_sync(args.url, return_type=rt))
    elif args.hosts:
        urls = c.host_urls(args.url, args.n, args.hosts)
        raised = c.raise_nofile(o.get("max_connections", 0) + 64)
        c.run_sync(name, version, args, lambda: fr.fastreq(urls, **o),
                   info=lambda: "; ".join(filter(None, [c.nofile_info(), raised, f"{args.hosts} hosts"])))
    else:
        c.run_sync(name, version, args, lambda: fr.fastreq([args.url] * args.n, **o))


if __name__ == "__main__":
    main()
