"""The ``fastreq`` command line: ``fetch``, ``get`` and ``bench``.

``fastreq fetch [INPUT] -o OUTPUT`` runs every request of INPUT (a file or
``-`` for stdin: one URL per line, or JSON lines of per-request specs) and
writes one record per request as it completes: JSON lines, Parquet (for
``-o x.parquet``, with pyarrow), or, with ``--save-dir``, bodies written
straight to files plus a JSON lines index. ``--resume`` skips the requests
already recorded in OUTPUT. ``fastreq get URL`` runs one request and prints
it like ``curl -i``. ``fastreq bench`` measures the engine against a
loopback server (and aiohttp/httpx when installed).

Built only on the public API (:class:`~fastreq.FastRequests`,
``as_completed``, the exceptions): one client for the whole job, requests
submitted in chunks (``--chunk-size``, 10,000) of which at most two are
queued at a time, so input of any length runs in flat memory.

Exit status: 0 when every request got a response (any HTTP status), 1 when
some failed or an input line was bad, 2 for usage errors, 130 after Ctrl-C
(143 after SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import contextlib
import gc
import hashlib
import http
import logging
import os
import re
import signal
import string
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlsplit

from . import (
    ConfigurationError,
    FastRequests,
    FastRequestsError,
    PartialFailureError,
    ValidationError,
    __version__,
)
from . import _json
from .backends import IMPERSONATE_ALIASES, IMPERSONATE_TARGETS
from .exceptions import redact_url

PROG = "fastreq"
#: Most batches at once: a batch that waits for one slow request still holds
#: its chunk's bookkeeping, so their number is bounded as well as the
#: requests queued.
MAX_BATCHES = 16
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143
DEFAULT_CHUNK = 10_000


class UsageError(Exception):
    """A bad flag value or a missing file: exit status 2."""


# ---- flag values -----------------------------------------------------------

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.I)


def parse_size(text: str) -> int:
    """Bytes from "1048576", "64k", "10M", "1GiB", "2GB" (powers of 1024)."""
    m = _SIZE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 1048576, 64k, 10M, 1G)")
    n = float(m.group(1)) * 1024 ** "_kmgt".index(m.group(2).lower() or "_")
    if n < 1:
        raise argparse.ArgumentTypeError(f"size must be at least 1 byte: {text!r}")
    return int(n)


def _int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an int of at least minimum ("10_000" and
    "10,000" read as 10000)."""

    def parse(text: str) -> int:
        try:
            v = int(text.replace("_", "").replace(",", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}: {text!r}")
        return v

    return parse


_positive_int = _int_at_least(1)
_nonneg_int = _int_at_least(0)


def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if v < 0 or v != v:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return v


def _header(text: str) -> Tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"a header is 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def _pair(text: str) -> Tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


# ---- the parser --------------------------------------------------------------

_CLIENT_HELP = """\
client options apply to every request; the package's environment variables
are honoured as in Python (FASTREQ_PROXIES with --random-proxy, USER_AGENTS,
FASTREQ_IMPERSONATE, FASTREQ_LIBRARY, GOMAXPROCS, GOGC)"""


#: Client flags passed to FastRequests only when given (else the package's
#: default applies): (flag, type, metavar, help); the keyword is the flag's dest.
_OPTIONAL_CLIENT_FLAGS: Tuple[Tuple[str, Callable[[str], Any], str, str], ...] = (
    ("--connect-timeout", _seconds, "SECONDS", "per TCP connect and TLS handshake (default 30; 0 = none)"),
    ("--read-timeout", _seconds, "SECONDS", "an attempt may go this long without a byte (default 300; 0 = none)"),
    ("--max-redirects", _positive_int, "N", "(default 20)"),
    ("--ca-file", str, "PEM", "extra trusted CA certificates"),
    ("--max-body-size", parse_size, "SIZE", "larger bodies fail their request (default 1G; e.g. 10M)"),
    ("--circuit-breaker-threshold", _nonneg_int, "N",
     "connection failures in a row that fail a host's queued requests fast (default 20; 0 = off)"),
    ("--circuit-breaker-cooldown", float, "SECONDS", "before an open breaker lets one probe through (default 30)"),
    ("--dns-cache-ttl", _seconds, "SECONDS", "keep the addresses of a host name this long (default 60; 0 = off)"),
    ("--backoff-multiplier", float, "SECONDS", "retry delay = multiplier * 2**n (default 1.0)"),
    ("--jitter", float, "FRACTION", "retry delay jitter (default 0.1)"),
    ("--max-delay", float, "SECONDS", "retry delay cap (default 60)"),
    ("--webshare-file", str, "FILE", "host:port:user:pass lines for the proxy pool"),
    ("--impersonate", str, "TARGET", "pass for a browser on https (TLS ClientHello, HTTP/2 frames, headers): "
     + ", ".join([*IMPERSONATE_TARGETS, "random", *IMPERSONATE_ALIASES])),
)


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _add_client_args(p: argparse.ArgumentParser, *, concurrency: int = 20) -> None:
    g = p.add_argument_group("client", _CLIENT_HELP)
    proto = g.add_mutually_exclusive_group()
    proto.add_argument("--backend", default=None,
                       help='"auto" (default: HTTP/2 by ALPN, else HTTP/1.1), "http1" or "http2"')
    proto.add_argument("--http1", dest="backend", action="store_const", const="http1",
                       help="HTTP/1.1 only (= --backend http1)")
    proto.add_argument("--http2", dest="backend", action="store_const", const="http2",
                       help="HTTP/2 only: h2 over TLS, h2c with prior knowledge for http:// (= --backend http2)")
    g.add_argument("-c", "--concurrency", type=_positive_int, default=concurrency,
                   help=f"most requests in flight (default {concurrency})")
    g.add_argument("--max-connections", type=_positive_int, default=None, metavar="N",
                   help="most connections held open, in use or idle (default: concurrency + 8); "
                        "one per host saves reconnecting to hosts the job comes back to")
    g.add_argument("--rate-limit", type=float, default=None, metavar="PER_SECOND",
                   help="requests per second, shared by the whole job (default: none)")
    g.add_argument("--rate-limit-burst", type=_positive_int, default=5, metavar="N",
                   help="token bucket size (default 5)")
    g.add_argument("--max-retries", type=_nonneg_int, default=3, metavar="N",
                   help="retries after the first attempt (default 3)")
    g.add_argument("--timeout", type=_seconds, default=None, metavar="SECONDS",
                   help="per attempt, body included (default: none)")
    g.add_argument("--follow-redirects", action=argparse.BooleanOptionalAction, default=True,
                   help="follow redirects (default: yes)")
    g.add_argument("-k", "--no-verify", dest="verify_ssl", action="store_false", default=True,
                   help="do not check TLS certificates")
    g.add_argument("--retry-non-idempotent", action="store_true", default=False,
                   help="also retry POST, PATCH... after failures the server may have acted on")
    g.add_argument("--auto-throttle", action="store_true", default=False,
                   help="slow a host down when it answers 429 or 503 or times out, speed it up on success")
    for flag, typ, metavar, help_text in _OPTIONAL_CLIENT_FLAGS:
        g.add_argument(flag, type=typ, default=None, metavar=metavar, help=help_text)
    g.add_argument("--proxy", action="append", default=[], metavar="URL",
                   help="send every request through this proxy (host:port, http://user:pass@host:port, "
                        "socks5://...); repeated: a pool, as --proxy-file")
    g.add_argument("--proxy-file", default=None, metavar="FILE",
                   help="a pool of proxies, one per line (host:port, host:port:user:pass, URLs)")
    g.add_argument("--random-proxy", action="store_true", default=False,
                   help="use the proxy pool, with FASTREQ_PROXIES (implied by --proxy-file or several --proxy)")
    g.add_argument("--proxy-selection", choices=("round_robin", "random"), default="round_robin")
    g.add_argument("--proxy-cooldown", type=float, default=60.0, metavar="SECONDS",
                   help="a failed proxy sits out this long (default 60)")
    g.add_argument("--cookie", type=_pair, action="append", default=[], metavar="NAME=VALUE",
                   help="a session cookie (repeatable)")
    g.add_argument("-A", "--user-agent", default=None, help="the User-Agent header")
    g.add_argument("--no-random-user-agent", dest="random_user_agent", action="store_false", default=True,
                   help="do not rotate browser User-Agents")
    g.add_argument("--debug", action="store_true", help="log retries and engine events to stderr")
    g.add_argument("-v", "--verbose", action="store_true", help="log INFO records of the 'fastreq' logger")


def _add_request_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("request", "apply to every request (a JSON-lines spec's own fields win)")
    g.add_argument("-X", "--method", default=None, help="GET (default; POST with -d or --json)")
    g.add_argument("-H", "--header", type=_header, action="append", default=[], metavar="'NAME: VALUE'",
                   help="a request header (repeatable)")
    body = g.add_mutually_exclusive_group()
    body.add_argument("-d", "--data", default=None,
                      help="request body as text; @FILE reads it from a file")
    body.add_argument("--json", dest="json_body", default=None, metavar="JSON",
                      help="request body as JSON (sent with Content-Type: application/json)")
    g.add_argument("--param", type=_pair, action="append", default=[], metavar="NAME=VALUE",
                   help="a query parameter added to every URL (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Thousands of HTTP requests at once, run by the fastreq engine.",
        epilog="Run '%(prog)s COMMAND -h' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    f = sub.add_parser(
        "fetch", help="run every request of a file, write a record per request",
        description="Run every request of INPUT and write one record per request as it completes.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_FETCH_EPILOG,
    )
    f.add_argument("input", nargs="?", default="-", metavar="INPUT",
                   help="file of URLs or JSON-lines specs, one per line; - for stdin (default)")
    out = f.add_argument_group("output")
    out.add_argument("-o", "--output", default=None, metavar="OUTPUT",
                     help="JSON lines file (- for stdout, the default), or .parquet (needs pyarrow)")
    out.add_argument("--format", choices=("jsonl", "parquet"), default=None,
                     help="default: parquet for *.parquet, else jsonl")
    out.add_argument("--body", choices=("text", "json", "base64", "none"), default="text",
                     help="how the body is recorded (default text)")
    out.add_argument("--no-headers", dest="headers", action="store_false", default=True,
                     help="leave response headers out of the records")
    out.add_argument("--save-dir", default=None, metavar="DIR",
                     help="write bodies straight to files under DIR; the records (DIR/index.jsonl unless -o) "
                          "give each file's path")
    out.add_argument("--name", default="{index}", metavar="TEMPLATE",
                     help="file name under --save-dir: {index} {line} {host} {port} {scheme} {path} {name} "
                          "{ext} {hash} {id} (default {index})")
    out.add_argument("--resume", action="store_true",
                     help="skip the requests already recorded in OUTPUT (JSON lines) and append the rest")
    job = f.add_argument_group("job")
    job.add_argument("--chunk-size", type=_positive_int, default=DEFAULT_CHUNK, metavar="N",
                     help=f"requests per submitted batch; at most two are queued (default {DEFAULT_CHUNK:,})")
    job.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="progress on stderr (default: when stderr is a terminal)")
    job.add_argument("-q", "--quiet", action="store_true", help="no summary and no bad-line reports")
    job.add_argument("--dask", default=None, metavar="ADDRESS",
                     help="run the job on a Dask distributed cluster (its scheduler's address, or 'local' for a "
                          "LocalCluster here): OUTPUT is then a directory of part files, one per chunk "
                          "(needs fastreq[dask]; see python/README.md)")
    _add_request_args(f)
    _add_client_args(f)

    g = sub.add_parser("get", help="one request, printed like curl -i",
                       description="Run one request and print the status line, headers, a blank line and the body.")
    g.add_argument("url", metavar="URL")
    g.add_argument("--no-include", dest="include", action="store_false", default=True,
                   help="print the body only")
    _add_request_args(g)
    _add_client_args(g)

    b = sub.add_parser("bench", help="requests per second against a loopback server",
                       description="Run N GET requests against a loopback server the engine starts in a child "
                                   "process, and print requests per second and CPU per request; the same for "
                                   "aiohttp and httpx when they are installed.")
    b.add_argument("-n", "--requests", type=_positive_int, default=20_000, metavar="N",
                   help="requests per client (default 20,000)")
    b.add_argument("-c", "--concurrency", type=_positive_int, default=64, help="(default 64)")
    b.add_argument("--body-size", type=parse_size, default=128, metavar="SIZE",
                   help="response body size (default 128 bytes)")
    b.add_argument("--http2", action="store_true", help="h2c with prior knowledge (peers without it are skipped)")
    b.add_argument("--rounds", type=_positive_int, default=1, help="runs per client, interleaved; median shown")
    b.add_argument("--url", default=None, help="benchmark this server instead of starting one")
    b.add_argument("--clients", default="fastreq,aiohttp,httpx",
                   help="comma-separated: fastreq, fastreq_async, aiohttp, httpx (default: fastreq,aiohttp,httpx)")
    return parser


_FETCH_EPILOG = """\
input lines:
  https://example.org/a                       a URL
  {"url": "...", "method": "POST", "json": {...}, "headers": {...}}
                                              a spec: url, method, params, data, json,
                                              content, content_base64, headers, cookies,
                                              timeout, proxy, http2, follow_redirects,
                                              verify_ssl, max_body_size,
                                              retry_non_idempotent, id (echoed)
  blank lines and lines starting with # are skipped; a bad line is reported
  (by line number) and recorded with error kind "input"

records (JSON lines, one per request, in completion order):
  {"index": 0-based input line, "error": null | {"kind", "message"}, "url",
   "final_url", "status", "http_version", "headers", "elapsed" (s), "attempts",
   "size" (body bytes), "body" | "path", "id"}

exit status: 0 all requests answered (any HTTP status), 1 some failed or bad
input lines, 2 usage error, 130 interrupted (the output stays valid)
"""


# ---- client and request keyword arguments ------------------------------------


def _read_lines(path: str) -> List[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            return [ln.strip() for ln in fh if ln.strip() and not ln.lstrip().startswith("#")]
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def client_kwargs(a: argparse.Namespace) -> Dict[str, Any]:
    """FastRequests keyword arguments from the client flags."""
    kw: Dict[str, Any] = {
        "concurrency": a.concurrency,
        "max_connections": a.max_connections,
        "max_retries": a.max_retries,
        "rate_limit": a.rate_limit,
        "rate_limit_burst": a.rate_limit_burst,
        "follow_redirects": a.follow_redirects,
        "verify_ssl": a.verify_ssl,
        "timeout": a.timeout,
        "random_user_agent": a.random_user_agent,
        "proxy_selection": a.proxy_selection,
        "proxy_cooldown": a.proxy_cooldown,
        "debug": a.debug,
        "verbose": a.verbose,
        "retry_non_idempotent": a.retry_non_idempotent,
        "auto_throttle": a.auto_throttle,
    }
    if a.backend:
        kw["backend"] = a.backend
    for flag, *_ in _OPTIONAL_CLIENT_FLAGS:
        value = getattr(a, _dest(flag))
        if value is not None:
            kw[_dest(flag)] = value
    for name in ("ca_file", "webshare_file"):
        if name in kw and not os.path.isfile(kw[name]):
            raise UsageError(f"--{name.replace('_', '-')}: no such file: {kw[name]}")
    pool = list(a.proxy) if len(a.proxy) > 1 else []
    if a.proxy_file:
        pool += _read_lines(a.proxy_file)
        if not pool:
            raise UsageError(f"--proxy-file {a.proxy_file} holds no proxy")
    if pool:
        kw["proxies"] = pool
    if pool or a.random_proxy or a.webshare_file:
        kw["random_proxy"] = True
    headers: Dict[str, str] = {}
    if a.user_agent is not None:
        headers["User-Agent"] = a.user_agent
    for name, value in a.header:
        headers[name] = value
    if headers:
        kw["headers"] = headers
    if a.cookie:
        kw["cookies"] = dict(a.cookie)
    return kw


def request_kwargs(a: argparse.Namespace) -> Dict[str, Any]:
    """Keyword arguments of the request call from the request flags."""
    kw: Dict[str, Any] = {}
    method = a.method
    if a.data is not None:
        data: Any = a.data
        if data.startswith("@"):
            try:
                with open(data[1:], "rb") as fh:
                    data = fh.read()
            except OSError as exc:
                raise UsageError(f"-d {a.data}: {exc.strerror or exc}") from None
        kw["data"] = data
        method = method or "POST"
    if a.json_body is not None:
        try:
            kw["json"] = _json.loads(a.json_body)
        except _json.DECODE_ERRORS as exc:
            raise UsageError(f"--json is not JSON: {exc}") from None
        method = method or "POST"
    if method:
        if not _METHOD.match(method):
            raise UsageError(f"-X {method!r} is not an HTTP method")
        kw["method"] = method.upper()
    if a.param:
        kw["params"] = list(a.param)
    if len(a.proxy) == 1 and not a.proxy_file:
        kw["proxy"] = a.proxy[0]
    return kw


def _setup_logging(a: argparse.Namespace) -> None:
    if a.debug or a.verbose:
        logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        logging.getLogger("fastreq").setLevel(logging.DEBUG if a.debug else logging.INFO)


def _err(msg: str) -> None:
    try:
        sys.stderr.write(f"{PROG}: {msg}\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # pragma: no cover - stderr closed
        pass


# ---- input ------------------------------------------------------------------

#: Spec fields accepted on an input line (the Python API's, less those the
#: command line controls itself: return_type, stream, save_to...).
SPEC_FIELDS = frozenset({
    "url", "method", "params", "data", "json", "content", "content_base64", "headers", "cookies", "timeout",
    "proxy", "http2", "follow_redirects", "verify_ssl", "max_body_size", "retry_non_idempotent", "id",
})
_PREFIXES = ("http://", "https://")
#: The "request N: " the package puts before a message about one request.
_REQUEST_PREFIX = re.compile(r"^request \d+: ")
#: An HTTP method is a token (RFC 9110).
_METHOD = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _check_url(url: str) -> None:
    """The cheap checks; the engine refuses what else is wrong with a URL
    (bad port, bad escape...) when its batch is submitted."""
    if not url[:8].lower().startswith(_PREFIXES):
        raise BadLine(f"not a URL (must start with http:// or https://): {_short(redact_url(url))!r}")
    rest = url[url.index("//") + 2:]
    if not rest or rest[0] in "/?#":
        raise BadLine(f"URL has no host: {_short(redact_url(url))!r}")


class BadLine(Exception):
    pass


def _short(b: Any, n: int = 80) -> str:
    s = b.decode("utf-8", "replace") if isinstance(b, (bytes, bytearray)) else str(b)
    return s if len(s) <= n else s[: n - 3] + "..."


def parse_line(line: bytes) -> Tuple[Any, Any]:
    """(request, id) of one stripped, non-empty input line: a URL str or a
    spec dict. Raises BadLine with the reason."""
    if line[:1] == b"{":
        try:
            spec = _json.loads(line)
        except _json.DECODE_ERRORS as exc:
            raise BadLine(f"not valid JSON ({exc})") from None
        if not isinstance(spec, dict):
            raise BadLine("a JSON line must be an object")
        unknown = [k for k in spec if k not in SPEC_FIELDS]
        if unknown:
            raise BadLine(f"unknown field {unknown[0]!r}; valid: {', '.join(sorted(SPEC_FIELDS))}")
        url = spec.get("url")
        if not isinstance(url, str):
            raise BadLine(f"'url' must be a string, got {_short(repr(url))}")
        _check_url(url)
        method = spec.get("method")
        if method is not None and (not isinstance(method, str) or not _METHOD.match(method)):
            raise BadLine(f"'method' is not an HTTP method: {_short(repr(method))}")
        for k in ("headers", "cookies"):
            v = spec.get(k)
            if v is not None and (not isinstance(v, dict)
                                  or not all(isinstance(x, str) for kv in v.items() for x in kv)):
                raise BadLine(f"{k!r} must be an object of strings")
        if "content_base64" in spec:
            if "content" in spec:
                raise BadLine("give either 'content' or 'content_base64'")
            try:
                spec["content"] = base64.b64decode(spec.pop("content_base64"), validate=True)
            except (ValueError, TypeError):
                raise BadLine("'content_base64' is not base64") from None
        ident = spec.pop("id", None)
        return spec, ident
    try:
        url = line.decode("utf-8")
    except UnicodeDecodeError:
        raise BadLine("not UTF-8") from None
    _check_url(url)
    return url, None


@dataclass
class Chunk:
    """Requests for one submitted batch, and the bad lines met on the way."""

    indices: List[int] = field(default_factory=list)
    requests: List[Any] = field(default_factory=list)
    ids: Optional[List[Any]] = None
    bad: List[Tuple[int, str]] = field(default_factory=list)  # (index, message)


class DoneSet:
    """Input line indices already recorded (a bitmap: 10M lines = 1.25 MB)."""

    def __init__(self) -> None:
        self.bits = bytearray()
        self.count = 0

    def add(self, i: int) -> bool:
        byte = i >> 3
        if byte >= len(self.bits):
            self.bits.extend(bytes(max(byte + 1 - len(self.bits), len(self.bits))))
        mask = 1 << (i & 7)
        if self.bits[byte] & mask:
            return False
        self.bits[byte] |= mask
        self.count += 1
        return True

    def __contains__(self, i: int) -> bool:
        byte = i >> 3
        return byte < len(self.bits) and bool(self.bits[byte] & (1 << (i & 7)))


def read_chunks(stream: Any, chunk_size: int, done: Optional[DoneSet],
                stats: "Stats") -> Iterator[Chunk]:
    """Chunks of up to chunk_size requests from a binary line stream; never
    more than one chunk in memory. Line i (0-based) is request index i."""
    chunk = Chunk()
    skipped = 0
    for index, raw in enumerate(stream):
        line = raw.strip()
        if not line or line[:1] == b"#":
            continue
        if done is not None and index in done:
            skipped += 1
            continue
        try:
            req, ident = parse_line(line)
        except BadLine as exc:
            chunk.bad.append((index, f"input line {index + 1}: {exc}"))
            if len(chunk.bad) >= chunk_size:
                yield chunk
                chunk = Chunk()
            continue
        chunk.indices.append(index)
        chunk.requests.append(req)
        if ident is not None:
            if chunk.ids is None:
                chunk.ids = [None] * (len(chunk.requests) - 1)
            chunk.ids.append(ident)
        elif chunk.ids is not None:
            chunk.ids.append(None)
        if len(chunk.requests) >= chunk_size:
            stats.skipped += skipped
            skipped = 0
            yield chunk
            chunk = Chunk()
    stats.skipped += skipped
    if chunk.requests or chunk.bad:
        yield chunk


# ---- records --------------------------------------------------------------


class Stats:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.done = 0
        self.failed = 0
        self.bad = 0
        self.skipped = 0
        self.earlier = 0
        self.earlier_failed = 0
        self.by_status: Dict[int, int] = {}
        self.by_kind: Dict[str, int] = {}
        self.bytes = 0

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _error_of(exc: BaseException) -> Dict[str, Any]:
    kind = getattr(exc, "kind", None) or type(exc).__name__
    return {"kind": kind, "message": str(exc)}


def make_record_builder(body_mode: str, headers: bool, stats: Stats) -> Callable[..., Dict[str, Any]]:
    """A function (index, completion, ident) -> record dict. The key order
    is fixed ("index" then "error" first), which --resume relies on."""
    by_status = stats.by_status
    by_kind = stats.by_kind
    b64 = base64.b64encode

    def build(index: int, done: Any, ident: Any) -> Dict[str, Any]:
        r = done.result
        if r is None:
            exc = done.error
            err = _error_of(exc)
            by_kind[err["kind"]] = by_kind.get(err["kind"], 0) + 1
            stats.failed += 1
            rec = {"index": index, "error": err, "url": done.url, "final_url": None,
                   "status": getattr(exc, "status_code", None), "http_version": None,
                   "headers": None, "elapsed": None, "attempts": getattr(exc, "attempts", 0) or None,
                   "size": None}
        else:
            status = r.status_code
            by_status[status] = by_status.get(status, 0) + 1
            content = r.content
            size = len(content)
            rec = {"index": index, "error": None, "url": done.url, "final_url": r.url, "status": status,
                   "http_version": r.http_version, "headers": r.headers if headers else None,
                   "elapsed": r.elapsed, "attempts": r.attempts, "size": size}
            path = r.path
            if path:
                try:
                    rec["size"] = size = os.path.getsize(path)
                except OSError:
                    pass
                rec["path"] = path
            elif body_mode == "text":
                rec["body"] = r.text
            elif body_mode == "json":
                if r.is_json:
                    rec["body"] = r.json_data
                else:
                    rec["body"] = None
                    if content:
                        rec["body_text"] = r.text
            elif body_mode == "base64":
                rec["body"] = b64(content).decode("ascii")
            stats.bytes += size
        if not headers:
            del rec["headers"]
        if ident is not None:
            rec["id"] = ident
        stats.done += 1
        return rec

    return build


def bad_line_record(index: int, message: str) -> Dict[str, Any]:
    return {"index": index, "error": {"kind": "input", "message": message}, "url": None, "final_url": None,
            "status": None, "http_version": None, "headers": None, "elapsed": None, "attempts": None,
            "size": None}


# ---- outputs ---------------------------------------------------------------

_RESUME_PREFIX = re.compile(rb'^\{"index":(\d+),"error":(n)?')


class JsonlOutput:
    """JSON lines, written as records come: a record is never split across
    writes and never waits for a later one. The records of one burst of
    completions (those the engine hands over in one wakeup) go out in one
    write() as soon as the burst is processed, so a kill can only tear the
    last line, which --resume drops. Without an event loop (``schedule``
    None) every record is written at once."""

    def __init__(self, path: Optional[str], append: bool) -> None:
        if path is None:
            self.fd = sys.stdout.fileno()
            self.own = False
        else:
            flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
            try:
                self.fd = os.open(path, flags, 0o644)
            except OSError as exc:
                raise UsageError(f"cannot open {path}: {exc.strerror or exc}") from None
            self.own = True
        self.buf: List[bytes] = []
        self.schedule: Optional[Callable[[Callable[[], None]], Any]] = None
        #: Called with an exception a scheduled write raised (a closed pipe, a full disk).
        self.on_error: Optional[Callable[[BaseException], None]] = None
        self.broken = False

    def write(self, rec: Dict[str, Any]) -> None:
        buf = self.buf
        buf.append(_json.dumps(rec) + b"\n")
        if len(buf) == 1:
            if self.schedule is None:
                self.flush()
            else:
                self.schedule(self._scheduled_flush)  # once the burst is processed
        elif len(buf) >= 1024:
            self.flush()

    def _scheduled_flush(self) -> None:
        try:
            self.flush()
        except OSError as exc:
            if self.on_error is None:
                raise
            self.on_error(exc)

    def flush(self) -> None:
        if self.buf:
            data = b"".join(self.buf)
            self.buf.clear()
            self._write(data)

    def _write(self, data: bytes) -> None:
        if self.broken:
            return
        try:
            view = memoryview(data)
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
        except BrokenPipeError:
            self.broken = True
            raise

    def close(self) -> None:
        self.schedule = None
        try:
            self.flush()
        finally:
            if self.own:
                os.close(self.fd)
                self.own = False


class ParquetOutput:
    """Parquet through pyarrow: rows gathered into row groups of up to
    ``group`` records; closing writes the footer (also after Ctrl-C)."""

    def __init__(self, path: str, body_mode: str, headers: bool, group: int = 10_000) -> None:
        try:
            import pyarrow as pa  # type: ignore[import-untyped, import-not-found, unused-ignore]
            import pyarrow.parquet as pq  # type: ignore[import-untyped, import-not-found, unused-ignore]
        except ImportError:
            raise UsageError(
                f"writing {path} as Parquet needs pyarrow: pip install pyarrow "
                "(or pip install 'fastreq[parquet]'), or write JSON lines (-o out.jsonl)"
            ) from None
        self.pa = pa
        self.body_mode = body_mode
        cols = [
            ("index", pa.int64()), ("error_kind", pa.string()), ("error_message", pa.string()),
            ("url", pa.string()), ("final_url", pa.string()), ("status", pa.int32()),
            ("http_version", pa.string()),
        ]
        if headers:
            cols.append(("headers", pa.map_(pa.string(), pa.string())))
        cols += [("elapsed", pa.float64()), ("attempts", pa.int32()), ("size", pa.int64()), ("path", pa.string())]
        if body_mode == "text":
            cols.append(("body", pa.string()))
        elif body_mode == "json":
            cols.append(("body", pa.string()))  # the JSON text of the parsed body
        elif body_mode == "base64":
            cols.append(("body", pa.binary()))  # Parquet holds bytes as they are
        cols.append(("id", pa.string()))
        self.schema = pa.schema(cols)
        self.names = [c[0] for c in cols]
        self.columns: Dict[str, List[Any]] = {n: [] for n in self.names}
        self.group = group
        try:
            self.writer = pq.ParquetWriter(path, self.schema)
        except OSError as exc:
            raise UsageError(f"cannot open {path}: {exc}") from None
        self.rows = 0

    def write(self, rec: Dict[str, Any]) -> None:
        c = self.columns
        err = rec.get("error")
        c["index"].append(rec["index"])
        c["error_kind"].append(err["kind"] if err else None)
        c["error_message"].append(err["message"] if err else None)
        for k in ("url", "final_url", "status", "http_version", "elapsed", "attempts", "size", "path"):
            c[k].append(rec.get(k))
        if "headers" in c:
            h = rec.get("headers")
            c["headers"].append(list(h.items()) if h is not None else None)
        if "body" in c:
            body = rec.get("body")
            if self.body_mode == "json":
                body = None if body is None else _json.dumps(body).decode("utf-8")
            elif self.body_mode == "base64" and body is not None:
                body = base64.b64decode(body)
            c["body"].append(body)
        ident = rec.get("id")
        c["id"].append(ident if ident is None or isinstance(ident, str) else _json.dumps(ident).decode("utf-8"))
        self.rows += 1
        if self.rows >= self.group:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        table = self.pa.table({n: self.pa.array(self.columns[n], type=self.schema.field(n).type)
                               for n in self.names}, schema=self.schema)
        self.writer.write_table(table)
        for v in self.columns.values():
            v.clear()
        self.rows = 0

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.writer.close()


def scan_for_resume(path: str, stats: Stats) -> DoneSet:
    """Indices already recorded in a JSON lines output. A last line without
    its newline (torn by a kill) is cut off the file. Any other line that
    is not a record is an error: the file is not this command's output."""
    done = DoneSet()
    if not os.path.exists(path):
        return done
    good_end = 0
    pos = 0
    lineno = 0
    with open(path, "r+b") as fh:
        for raw in fh:
            lineno += 1
            if not raw.endswith(b"\n"):
                break  # torn last line
            m = _RESUME_PREFIX.match(raw)
            if m:
                index = int(m.group(1))
                failed = m.group(2) is None
            else:
                try:
                    rec = _json.loads(raw)
                    index = int(rec["index"])
                    failed = rec.get("error") is not None
                except (*_json.DECODE_ERRORS, KeyError, TypeError):
                    raise UsageError(f"--resume: {path} line {lineno} is not a fastreq record; "
                                     "fix or remove it, or write to a new file") from None
            if done.add(index):
                stats.earlier += 1
                stats.earlier_failed += failed
            pos += len(raw)
            good_end = pos
        size = fh.seek(0, os.SEEK_END)
        if size != good_end:
            fh.truncate(good_end)
            _err(f"--resume: dropped a torn last line of {path} ({size - good_end} bytes)")
    return done


# ---- save-dir names -----------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(s: str) -> str:
    s = _UNSAFE.sub("_", s).strip(".") or "_"
    return s[:200]


class Namer:
    """Paths under --save-dir from the --name template."""

    FIELDS = ("index", "line", "host", "port", "scheme", "path", "name", "ext", "hash", "id")

    def __init__(self, root: str, template: str) -> None:
        self.root = os.path.abspath(root)
        self.template = template
        try:
            names = {f[1] for f in string.Formatter().parse(template) if f[1] is not None}
        except ValueError as exc:
            raise UsageError(f"--name {template!r}: {exc}") from None
        unknown = names - set(self.FIELDS)
        if unknown:
            raise UsageError(f"--name: unknown field {{{sorted(unknown)[0]}}}; valid: "
                             + " ".join("{%s}" % f for f in self.FIELDS))
        self.names = names
        self.made: set[str] = set()
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--save-dir {root}: {exc.strerror or exc}") from None

    def path(self, index: int, request: Any, ident: Any) -> str:
        url = request if isinstance(request, str) else request["url"]
        v: Dict[str, Any] = {"index": index, "line": index + 1}
        if self.names & {"host", "port", "scheme", "path", "name", "ext"}:
            u = urlsplit(url)
            v["host"] = _safe(u.hostname or "_")
            v["port"] = u.port or (443 if u.scheme.lower() == "https" else 80)
            v["scheme"] = u.scheme.lower()
            segs = [_safe(s) for s in u.path.split("/") if s and s not in (".", "..")]
            v["path"] = "/".join(segs) or "index"
            v["name"] = segs[-1] if segs else "index"
            v["ext"] = os.path.splitext(v["name"])[1].lstrip(".")
        if "hash" in self.names:
            v["hash"] = hashlib.sha1(url.encode("utf-8", "replace")).hexdigest()[:16]
        if "id" in self.names:
            v["id"] = _safe(str(ident)) if ident is not None else str(index)
        rel = os.path.normpath(self.template.format(**v))
        if rel.startswith("..") or os.path.isabs(rel):
            rel = _safe(rel)
        full = os.path.join(self.root, rel)
        parent = os.path.dirname(full)
        if parent not in self.made:
            os.makedirs(parent, exist_ok=True)
            if len(self.made) > 10_000:
                self.made.clear()
            self.made.add(parent)
        return full


# ---- progress -------------------------------------------------------------------


class Progress:
    """A tqdm or rich bar when installed, else a plain stderr line; updated
    from a timer (never per request)."""

    def __init__(self, total: Optional[int]) -> None:
        self.total = total
        self.shown = 0
        self.bar: Any = None
        self.kind = "plain"
        try:
            from tqdm import tqdm  # type: ignore

            self.bar = tqdm(total=total, unit="req", desc="fetch", dynamic_ncols=True, file=sys.stderr)
            self.kind = "tqdm"
        except ImportError:
            try:
                from rich.console import Console  # type: ignore[import-not-found, unused-ignore]
                from rich.progress import (  # type: ignore[import-not-found, unused-ignore]
                    BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeRemainingColumn)

                # stderr: stdout may be the output
                self.bar = RichProgress(TextColumn("fetch"), BarColumn(), MofNCompleteColumn(),
                                        TimeRemainingColumn(), console=Console(stderr=True), transient=False)
                self.bar.start()
                self.task = self.bar.add_task("fetch", total=total)
                self.kind = "rich"
            except ImportError:
                pass

    def update(self, stats: Stats) -> None:
        n = stats.done + stats.bad
        if self.kind == "tqdm":
            self.bar.set_postfix_str(f"failed {stats.failed + stats.bad:,}", refresh=False)
            self.bar.update(n - self.shown)
        elif self.kind == "rich":
            self.bar.update(self.task, completed=n)
        else:
            el = stats.elapsed()
            total = f"/{self.total:,}" if self.total else ""
            rate = stats.done / el if el > 0 else 0.0
            sys.stderr.write(f"\r{PROG}: {n:,}{total} done, {stats.failed + stats.bad:,} failed, "
                             f"{rate:,.0f} req/s   ")
            sys.stderr.flush()
        self.shown = n

    def close(self, stats: Stats) -> None:
        self.update(stats)
        if self.kind == "tqdm":
            self.bar.close()
        elif self.kind == "rich":
            self.bar.stop()
        else:
            sys.stderr.write("\n")
            sys.stderr.flush()


def count_lines(path: str) -> Optional[int]:
    """Lines of a regular file (a quick pass in 1 MiB blocks), for the bar."""
    try:
        if not os.path.isfile(path):
            return None
        n = 0
        last = b"\n"
        with open(path, "rb") as fh:
            while True:
                block = fh.read(1 << 20)
                if not block:
                    break
                n += block.count(b"\n")
                last = block[-1:]
        return n + (last != b"\n")
    except OSError:
        return None


# ---- fetch ------------------------------------------------------------------------


class FetchJob:
    """One `fetch` run: a reader thread turns the input into chunks, the
    event loop submits them (at most two chunks queued in the engine) and
    writes each record as its request completes."""

    def __init__(self, a: argparse.Namespace, client_kw: Dict[str, Any], request_kw: Dict[str, Any], out: Any,
                 done: Optional[DoneSet], stats: Stats, namer: Optional[Namer],
                 progress: Optional[Progress]) -> None:
        self.a = a
        self.client_kw = client_kw
        self.out = out
        self.done = done
        self.stats = stats
        self.namer = namer
        self.progress = progress
        self.build = make_record_builder("none" if namer else a.body, a.headers, stats)
        self.req_kw = request_kw
        self.chunk_size = a.chunk_size
        self.window = 2 * a.chunk_size
        self.inflight = 0
        self.reported = 0
        self.stop_code: Optional[int] = None
        self.reader_error: Optional[BaseException] = None
        self.failure: Optional[BaseException] = None
        self._main_task: Optional["asyncio.Task[Any]"] = None
        self._shown = 0.0

    # -- the input, in a thread (stdin may block; the loop must not) --

    def _reader(self, loop: asyncio.AbstractEventLoop, q: "asyncio.Queue[Optional[Chunk]]",
                stop: threading.Event) -> None:
        def put(item: Optional[Chunk]) -> bool:
            fut = asyncio.run_coroutine_threadsafe(q.put(item), loop)
            while True:
                try:
                    fut.result(timeout=0.2)
                    return True
                except concurrent.futures.TimeoutError:
                    if stop.is_set():
                        fut.cancel()
                        return False
                except BaseException:  # cancelled, or the loop is gone
                    return False

        stream = None
        try:
            stream = sys.stdin.buffer if self.a.input == "-" else open(self.a.input, "rb")
            for chunk in read_chunks(stream, self.chunk_size, self.done, self.stats):
                if stop.is_set() or not put(chunk):
                    return
        except BaseException as exc:  # noqa: BLE001 - reported by the loop
            self.reader_error = exc
        finally:
            if stream is not None and stream is not sys.stdin.buffer:
                stream.close()
            if not stop.is_set():
                put(None)

    # -- the loop --

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        main = asyncio.current_task()
        assert main is not None
        self._main_task = main

        def on_signal(code: int) -> None:
            if self.stop_code is None:
                self.stop_code = code
                main.cancel()
            else:  # a second Ctrl-C: leave at once (lines written so far are whole)
                os._exit(code)

        for sig, code in ((signal.SIGINT, EXIT_INTERRUPTED), (signal.SIGTERM, EXIT_TERMINATED)):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, on_signal, code)

        q: "asyncio.Queue[Optional[Chunk]]" = asyncio.Queue(maxsize=1)
        stop = threading.Event()
        reader = threading.Thread(target=self._reader, args=(loop, q, stop), name="fastreq-cli-input",
                                  daemon=True)
        self.room = asyncio.Event()
        tasks: "set[asyncio.Task[None]]" = set()
        self._timer = loop.call_later(0.1, self._tick, loop)
        if isinstance(self.out, JsonlOutput):
            self.out.schedule = loop.call_soon
            self.out.on_error = self._fail
        client = FastRequests(**self.client_kw)
        reader.start()
        try:
            while True:
                while self.inflight + self.chunk_size > self.window or len(tasks) >= MAX_BATCHES:
                    self.room.clear()
                    await self.room.wait()
                chunk = await q.get()
                if chunk is None:
                    break
                for index, message in chunk.bad:
                    self._bad(index, message)
                if chunk.requests:
                    self.inflight += len(chunk.requests)
                    t = asyncio.ensure_future(self._batch(client, chunk.indices, chunk.requests, chunk.ids))
                    tasks.add(t)
                    t.add_done_callback(tasks.discard)
                    t.add_done_callback(self._task_done)
            if self.reader_error is not None:
                raise self.reader_error
            while tasks:
                await asyncio.gather(*list(tasks))
        finally:
            stop.set()
            self._timer.cancel()
            for t in list(tasks):
                t.cancel()
            if tasks:
                await asyncio.gather(*list(tasks), return_exceptions=True)
            await client.close()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)

    def _task_done(self, t: "asyncio.Task[None]") -> None:
        self.room.set()  # a batch fewer
        if not t.cancelled() and t.exception() is not None:
            self._fail(t.exception())

    def _fail(self, exc: Optional[BaseException]) -> None:
        """An output or engine error: the job stops."""
        if self.failure is None and exc is not None:
            self.failure = exc
            main = self._main_task
            if main is not None and not main.done():
                main.cancel()

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = time.monotonic()
        if self.progress is not None and now - self._shown >= 0.5:
            self._shown = now
            self.progress.update(self.stats)
        self._timer = loop.call_later(0.1, self._tick, loop)

    def _bad(self, index: int, message: str) -> None:
        self.stats.bad += 1
        if not self.a.quiet:
            self.reported += 1
            if self.reported <= 20:
                _err(message)
            elif self.reported == 21:
                _err("more bad input lines: see the records with error kind 'input'")
        self.out.write(bad_line_record(index, message))

    async def _batch(self, client: Any, indices: List[int], requests: List[Any], ids: Optional[List[Any]]) -> None:
        """Run one batch and write its records as they complete. A batch the
        engine refuses as a whole (an invalid request it found) is split in
        halves until the bad requests are alone, and those are recorded as
        bad lines; nothing of a refused batch has run."""
        save_to = None
        if self.namer is not None:
            save_to = [self.namer.path(i, r, None if ids is None else ids[k])
                       for k, (i, r) in enumerate(zip(indices, requests))]
        out_write = self.out.write
        build = self.build
        started = False
        try:
            it = client.as_completed(requests, return_type="response", save_to=save_to, **self.req_kw)
            async with it:
                async for done in it:
                    started = True
                    k = done.index
                    out_write(build(indices[k], done, None if ids is None else ids[k]))
                    self.inflight -= 1
                    if self.inflight + self.chunk_size <= self.window:
                        self.room.set()
        except (ValidationError, ConfigurationError) as exc:
            if started:
                raise
            if len(requests) == 1:
                self.inflight -= 1
                msg = _REQUEST_PREFIX.sub("", str(exc))
                self._bad(indices[0], f"input line {indices[0] + 1}: {msg}")
            else:  # the halves account for their requests in flight
                half = len(requests) // 2
                await asyncio.gather(*(
                    self._batch(client, indices[lo:hi], requests[lo:hi], None if ids is None else ids[lo:hi])
                    for lo, hi in ((0, half), (half, len(requests)))))
            self.room.set()


def _summary(stats: Stats, interrupted: Optional[int], output: str) -> None:
    el = stats.elapsed()
    rate = stats.done / el if el > 0 else 0.0
    ok = stats.done - stats.failed
    lines = [f"{stats.done:,} requests in {el:.2f} s ({rate:,.0f} req/s): {ok:,} answered, "
             f"{stats.failed:,} failed; {_human(stats.bytes)} of bodies"]
    if stats.by_status:
        lines.append("  status: " + ", ".join(f"{s}: {n:,}" for s, n in sorted(stats.by_status.items())))
    if stats.by_kind:
        lines.append("  errors: " + ", ".join(f"{k}: {n:,}" for k, n in
                                              sorted(stats.by_kind.items(), key=lambda kv: -kv[1])))
    if stats.bad:
        lines.append(f"  bad input lines: {stats.bad:,} (skipped, recorded with error kind 'input')")
    if stats.earlier:
        lines.append(f"  resumed: {stats.earlier:,} records already in {output} "
                     f"({stats.earlier_failed:,} failed), {stats.skipped:,} input lines skipped")
    if interrupted:
        lines.append("  interrupted: every record written is complete; --resume continues the job")
    _err(lines[0])
    for ln in lines[1:]:
        try:
            sys.stderr.write(ln + "\n")
        except (OSError, ValueError):  # pragma: no cover
            pass


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TiB"  # pragma: no cover


def cmd_fetch(a: argparse.Namespace) -> int:
    _setup_logging(a)
    if a.dask is not None:
        return cmd_fetch_dask(a)
    fmt = a.format
    output = a.output
    if a.save_dir and output is None:
        output = os.path.join(a.save_dir, "index.jsonl")
    if output == "-":
        output = None
    if fmt is None:
        fmt = "parquet" if output and output.lower().endswith((".parquet", ".pq")) else "jsonl"
    if fmt == "parquet" and output is None:
        raise UsageError("Parquet output needs a file: -o OUTPUT.parquet")
    if a.resume and (output is None or fmt != "jsonl"):
        raise UsageError("--resume needs a JSON lines output file (-o OUTPUT.jsonl)")
    if a.input != "-" and not os.path.isfile(a.input):
        raise UsageError(f"no such input file: {a.input}")
    if a.input == "-" and sys.stdin is None:
        raise UsageError("no input: give INPUT or pipe the URLs into stdin")
    if a.input == "-" and sys.stdin.isatty() and not a.quiet:
        _err("reading URLs from the terminal, one per line (Ctrl-D to end)")
    if a.save_dir and a.body != "text":
        _err("--body is ignored with --save-dir (the bodies go to files)")
    client_kw, request_kw = check_request_flags(a)  # flag errors before anything starts

    stats = Stats()
    done = scan_for_resume(output, stats) if a.resume else None
    namer = Namer(a.save_dir, a.name) if a.save_dir else None
    if fmt == "parquet":
        assert output is not None
        out: Any = ParquetOutput(output, a.body if not namer else "none", a.headers)
    else:
        out = JsonlOutput(output, append=bool(a.resume))
    show = a.progress if a.progress is not None else sys.stderr.isatty()
    progress = None
    if show:
        total = count_lines(a.input) if a.input != "-" else None
        if total is not None and done is not None:
            total = max(total - done.count, 0)
        progress = Progress(total)
    # Each record makes a few short-lived containers (no cycles): collecting
    # the young generation every 700 allocations cost ~10 % of the loop.
    gc.set_threshold(100_000, 50, 100)
    stats.started = time.monotonic()
    job = FetchJob(a, client_kw, request_kw, out, done, stats, namer, progress)
    code: Optional[int] = None
    broken = False
    try:
        try:
            asyncio.run(job.run())
        except asyncio.CancelledError:
            code = EXIT_INTERRUPTED
        except KeyboardInterrupt:
            code = EXIT_INTERRUPTED
        except BrokenPipeError:
            broken = True
        if job.failure is not None:  # a write or the engine failed: the job stopped
            if not isinstance(job.failure, BrokenPipeError):
                raise job.failure
            broken, code = True, None
        elif job.stop_code is not None:
            code = job.stop_code
    finally:
        with contextlib.suppress(BrokenPipeError):
            out.close()
        if progress is not None:
            progress.close(stats)
    if broken:
        with contextlib.suppress(OSError):
            sys.stdout = None  # type: ignore[assignment, unused-ignore]
        return EXIT_FAILED
    if not a.quiet:
        _summary(stats, code, output or "stdout")
    if code is not None:
        return code
    failed = stats.failed + stats.bad + stats.earlier_failed
    return EXIT_FAILED if failed else EXIT_OK


def cmd_fetch_dask(a: argparse.Namespace) -> int:
    """fetch --dask ADDRESS: the job on a Dask cluster (fastreq.dask.fetch_to).
    Each worker writes its chunks (--chunk-size requests each) as part files
    into the directory OUTPUT; the limits are for the whole cluster."""
    if a.output in (None, "-"):
        raise UsageError("--dask writes part files: give their directory with -o DIR")
    for flag, bad in (("--resume", a.resume), ("--save-dir", a.save_dir)):
        if bad:
            raise UsageError(f"{flag} does not work with --dask")
    if a.input != "-" and not os.path.isfile(a.input):
        raise UsageError(f"no such input file: {a.input}")
    if a.input == "-" and sys.stdin is None:
        raise UsageError("no input: give INPUT or pipe the URLs into stdin")
    fmt = a.format or ("parquet" if a.output.lower().endswith((".parquet", ".pq")) else "jsonl")
    client_kw, request_kw = check_request_flags(a)
    try:
        from . import dask as fdask
    except ImportError as exc:
        raise UsageError(f"--dask needs dask and distributed: pip install 'fastreq[dask]' ({exc})") from None
    if fmt == "parquet":
        try:
            import pyarrow  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: F401
        except ImportError:
            raise UsageError("Parquet output needs pyarrow: pip install pyarrow") from None
    with contextlib.ExitStack() as stack:
        try:
            client = stack.enter_context(fdask.connect(a.dask))
        except OSError as exc:
            raise UsageError(f"--dask {a.dask}: cannot reach the scheduler ({exc})") from None
        urls: Any = a.input
        if a.input == "-":
            urls = (line.decode("utf-8", "replace") for line in sys.stdin.buffer)
        summary = fdask.fetch_to(urls, a.output, fmt, client=client, partition_size=a.chunk_size,
                                 body=a.body, headers=a.headers, **client_kw, **request_kw)
    if not a.quiet:
        stats = Stats()
        stats.started = time.monotonic() - summary["elapsed"]
        stats.done = summary["requests"] - summary["bad_input"]
        stats.failed, stats.bad, stats.bytes = summary["failed"], summary["bad_input"], summary["bytes"]
        stats.by_status, stats.by_kind = summary["by_status"], summary["by_kind"]
        _summary(stats, None, a.output)
        _err(f"{summary['parts']:,} part files in {summary['path']}")
    return EXIT_FAILED if summary["failed"] or summary["bad_input"] else EXIT_OK


def check_request_flags(a: argparse.Namespace) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(client_kwargs(a), request_kwargs(a)), once the package accepted
    them: flags it rejects (a negative rate limit, a bad proxy selection...)
    are refused before anything runs, rather than on every line. Neither
    the client nor the call is started: nothing is submitted."""
    ckw, rkw = client_kwargs(a), request_kwargs(a)
    try:
        with FastRequests(**ckw) as client:
            it = client.as_completed(["http://127.0.0.1/"], return_type="response", **rkw)
            del it
    except (ValidationError, ConfigurationError) as exc:
        raise UsageError(_REQUEST_PREFIX.sub("", str(exc))) from None
    return ckw, rkw


# ---- get -------------------------------------------------------------------------


def _status_line(version: str, status: int) -> str:
    ver = {"HTTP/2.0": "HTTP/2", "HTTP/3.0": "HTTP/3"}.get(version, version or "HTTP/1.1")
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"{ver} {status} {phrase}".rstrip()


def cmd_get(a: argparse.Namespace) -> int:
    _setup_logging(a)
    try:
        _check_url(a.url)
    except BadLine as exc:
        raise UsageError(str(exc)) from None
    ckw, rkw = check_request_flags(a)
    try:
        with FastRequests(**ckw) as client:
            r = client.request_sync(a.url, return_type="response", **rkw)
    except PartialFailureError as exc:
        err = next(iter(exc.failures_by_index.values())).error if exc.failures_by_index else exc
        e = _error_of(err)
        _err(f"{e['kind']}: {e['message']}")
        return EXIT_FAILED
    except (ValidationError, ConfigurationError) as exc:
        raise UsageError(str(exc)) from None
    out = sys.stdout.buffer
    try:
        if a.include:
            head = [_status_line(r.http_version, r.status_code)]
            for name, value in r.headers.items():
                for v in value.split("\n") if name == "set-cookie" else [value]:
                    head.append(f"{name}: {v}")
            out.write(("\r\n".join(head) + "\r\n\r\n").encode("utf-8", "replace"))
        out.write(r.content)
        out.flush()
    except BrokenPipeError:
        sys.stdout = None  # type: ignore[assignment, unused-ignore]
    return EXIT_OK


# ---- bench ------------------------------------------------------------------------


def cmd_bench(a: argparse.Namespace) -> int:
    from . import _clibench

    return _clibench.run(a)


# ---- main -------------------------------------------------------------------------


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    if a.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        if a.command == "fetch":
            return cmd_fetch(a)
        if a.command == "get":
            return cmd_get(a)
        return cmd_bench(a)
    except UsageError as exc:
        _err(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except FastRequestsError as exc:
        _err(f"{type(exc).__name__}: {exc}")
        return EXIT_FAILED
    except OSError as exc:  # writing the output failed (a full disk...)
        where = f": {exc.filename}" if exc.filename else ""
        _err(f"{exc.strerror or exc}{where}")
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
