#!/usr/bin/env python3
"""fastreq benchmark harness (run by `make bench`, never by `make test`).

One Go server (tests/bench/server, GOMAXPROCS=1) pinned to CPU 0; every
client a separate process pinned to CPU 1; each (workload, client) run
--runs times, clients interleaved and rotated (A B C, B C A, C A B ...),
medians reported.
Writes results.csv, runs.csv, results.md and chart.png to the output
directory (tests/bench/results/ for a full run of everything). See
tests/bench/README.md.

Only the standard library is used here; the peers live in virtual
environments under tests/bench/venvs/ that this script creates with pinned
versions, and the chart is drawn by chart.py in a venv of its own.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import hashlib
import json
import math
import os
import platform
import random
import re
import resource
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
VENVS = HERE / "venvs"
WORK = HERE / "work"
# Each invocation gets a directory of its own under work/runs/ (binaries,
# logs, certificate), so that two harness runs never trip over each other;
# main() sets these.
RUN_DIR = WORK / "runs" / "unset"
BIN = RUN_DIR / "bin"
CLIENTS_DIR = HERE / "clients"
# The library our Python clients load: FASTREQ_LIBRARY when set (to measure
# another build, e.g. an old and a new one back to back), else the one
# `make` builds. The Python package always comes from this tree's python/,
# and go-core is compiled from this tree's core/.
LIB = Path(os.environ["FASTREQ_LIBRARY"]).resolve() if os.environ.get("FASTREQ_LIBRARY") \
    else REPO / "build" / "libfastreq.so"

SERVER_CPU = "0"
CLIENT_CPU = "1"

# Pinned versions of the peers (checked on PyPI with `pip index versions`
# when this harness was written). Each venv gets exactly these top-level
# requirements; what pip resolves beneath them is recorded with the results.
VENV_REQUIREMENTS: dict[str, list[str]] = {
    "fastreq": ["orjson==3.13.0"],  # ours: the package itself comes from python/
    "fastreq_orig": ["fastreq==3.2.1"],  # the original pure-Python fastreq 3.x
    "aiohttp": ["aiohttp==3.14.5"],
    "httpx": ["httpx[http2]==0.28.1", "h2==4.4.1"],
    "niquests": ["niquests==3.21.2"],
    "requests": ["requests==2.34.2"],
    "report": ["matplotlib==3.11.2"],
}


# ---------------------------------------------------------------- workloads


@dataclass
class Workload:
    id: str
    title: str
    path: str  # URL path on the server
    proto: str  # h1 | h2c | h2 (h2 = TLS port, ALPN; h1 over TLS when secure)
    n: int
    concurrency: int
    mode: str  # json | bytes | rate | serial | storm
    rate: float = 0.0
    body_size: int = 0  # bytes per body for mode bytes
    # Interleaved runs unless --runs says otherwise. Throughput and latency
    # rounds drift by up to a third on a shared VM, so their ratios take 5.
    runs: int = 5
    hosts: int = 0  # spread over this many loopback hosts 127.0.X.Y (the server's hosts port)
    retries: int = 0  # mode storm: retries per request
    clients: tuple[str, ...] = ()  # only these clients take part (empty: all)
    secure: bool = False  # proto h1 over TLS (https:// to the TLS ports)

    @property
    def tls(self) -> bool:
        return self.proto in ("h2", "h3") or self.secure

    @property
    def storm(self) -> bool:
        """N requests to a closed port, which must all fail (mode storm)."""
        return self.mode == "storm"


def workloads(quick: bool) -> list[Workload]:
    q = quick
    return [
        Workload("W1", "GETs of /json, concurrency 64, HTTP/1.1, parsed JSON kept",
                 "/json", "h1", 2_000 if q else 20_000, 64, "json"),
        Workload("W2-h2c", "GETs of /json, concurrency 64, h2c (prior knowledge), parsed JSON kept",
                 "/json", "h2c", 2_000 if q else 20_000, 64, "json"),
        Workload("W2-tls", "GETs of /json, concurrency 64, TLS + HTTP/2 (ALPN), parsed JSON kept",
                 "/json", "h2", 2_000 if q else 20_000, 64, "json"),
        Workload("W2-h3", "GETs of /json, concurrency 64, HTTP/3 over QUIC (certificates unchecked), "
                 "parsed JSON kept", "/json", "h3", 2_000 if q else 20_000, 64, "json", clients=H3_CLIENTS),
        Workload("W2-tls-hosts", f"GETs of /json over {200 if q else 2_000:,} HTTPS loopback hosts 127.0.X.Y, "
                 "concurrency 64, TLS + HTTP/1.1 (certificates unchecked), parsed JSON kept",
                 "/json", "h1", 2_000 if q else 20_000, 64, "json", hosts=200 if q else 2_000, secure=True,
                 runs=3, clients=TLS_HOSTS_CLIENTS),
        Workload("W3", "GETs of 64 KiB, concurrency 64, HTTP/1.1, bodies kept",
                 "/bytes/65536", "h1", 500 if q else 5_000, 64, "bytes", body_size=65536),
        Workload("W4", "GETs of 1 MiB, concurrency 64, HTTP/1.1, bodies kept",
                 "/bytes/1048576", "h1", 50 if q else 500, 64, "bytes", body_size=1 << 20),
        Workload("W5", "GETs of /json, concurrency 64, HTTP/1.1, parsed JSON kept (peak memory)",
                 "/json", "h1", 5_000 if q else 100_000, 64, "json",
                 runs=3),  # peak RSS hardly drifts, and this is the longest workload
        Workload("W6", "GETs of /json at rate_limit=500/s, concurrency 64, HTTP/1.1 "
                 f"({'1' if q else '5'} s)",
                 "/json", "h1", 500 if q else 2_500, 64, "rate", rate=500.0),
        Workload("W7", "GETs of /json one at a time, HTTP/1.1 (per-request latency)",
                 "/json", "h1", 200 if q else 2_000, 1, "serial"),
        Workload("W8", f"GETs of /json over {500 if q else 5_000:,} loopback hosts 127.0.X.Y, concurrency 256, "
                 "HTTP/1.1, parsed JSON kept (peak descriptors)",
                 "/json", "h1", 5_000 if q else 50_000, 256, "json", hosts=500 if q else 5_000,
                 clients=MANY_CLIENTS),
        Workload("W9", "GETs of a closed port, 2 retries each with the default backoff, concurrency 64 "
                 "(failure storm: wall time)",
                 "/json", "h1", 5_000 if q else 50_000, 64, "storm", retries=2, clients=MANY_CLIENTS),
        Workload("W10", "GETs of distinct /json URLs written as JSON lines (a bulk job: the command line "
                 "against the same job written with fastreq()), concurrency 64, HTTP/1.1",
                 "/json", "h1", 10_000 if q else 100_000, 64, "jsonl", runs=3, clients=JSONL_CLIENTS),
    ]


# ------------------------------------------------------------------ clients


@dataclass
class Client:
    name: str
    kind: str  # python | go | h2load | wrk
    venv: Optional[str] = None
    script: Optional[str] = None
    # returns a reason when the client cannot do the workload (marked n/a)
    support: Callable[[Workload], Optional[str]] = lambda w: None
    desc: str = ""
    args: tuple[str, ...] = ()  # extra command-line arguments of its script
    binary: str = ""  # kind go: the program under BIN (build_go)
    modes: tuple[str, ...] = ()  # takes part only in workloads of these modes (empty: all)
    named_only: bool = False  # takes part only in the workloads whose clients name it

    @property
    def ceiling(self) -> bool:
        return self.kind in ("h2load", "wrk")

    def takes_part(self, w: Workload) -> bool:
        """Whether this client runs workload w at all (a client that does
        not is left out of w's tables, where one that cannot is n/a)."""
        if not w.clients:
            return not self.named_only and (not self.modes or w.mode in self.modes)
        return self.name in w.clients and (not self.modes or w.mode in self.modes)


# W8 and W9 compare the engine (from Python and from Go) with aiohttp, the
# fastest of the Python peers.
MANY_CLIENTS = ("fastreq", "fastreq-nobreaker", "go-core", "aiohttp")
# W2-h3: the clients that speak HTTP/3 to a server that does not advertise
# it (the engine's backend "http3"); compare with their W2-tls (h2).
H3_CLIENTS = ("fastreq", "fastreq_async", "go-core")
# W10: the command line against the same job through the Python API.
JSONL_CLIENTS = ("fastreq", "fastreq-fetch")
# W2-tls-hosts: the same, with the bare net/http loop as the floor, and
# fastreq with a connection kept per host as go-floor and aiohttp keep them.
TLS_HOSTS_CLIENTS = ("fastreq", "fastreq-conns", "go-core", "go-floor", "aiohttp")


def _h1_only(what: str) -> Callable[[Workload], Optional[str]]:
    def f(w: Workload) -> Optional[str]:
        if w.proto != "h1":
            return f"{what} speaks HTTP/1.1 only"
        if w.mode == "rate":
            return f"{what} has no rate limit of its own"
        return None
    return f


def _no_rate(what: str) -> Callable[[Workload], Optional[str]]:
    return lambda w: f"{what} has no rate limit of its own" if w.mode == "rate" else None


def _floor_support(w: Workload) -> Optional[str]:
    return "a bare net/http loop has no retries" if w.storm else None


def _wrk_support(w: Workload) -> Optional[str]:
    if w.proto != "h1":
        return "wrk speaks HTTP/1.1 only"
    if w.mode == "rate":
        return "wrk has no rate control"
    return None


CLIENTS: list[Client] = [
    Client("fastreq", "python", "fastreq", "fastreq_sync.py",
           desc="ours, sync fastreq() (Go engine through the C ABI)"),
    Client("fastreq-nobreaker", "python", "fastreq", "fastreq_sync.py",
           desc="ours, sync fastreq() with circuit_breaker_threshold=0 (W9 only; n/a where the library "
                "lacks the option)",
           args=("--circuit-breaker-threshold", "0"), modes=("storm",)),
    Client("fastreq-conns", "python", "fastreq", "fastreq_sync.py",
           desc="ours, sync fastreq() with max_connections = hosts + concurrency, a connection kept per "
                "host (W2-tls-hosts only; n/a where the library lacks the option)",
           args=("--keep-per-host",), named_only=True),
    Client("fastreq-buffer", "python", "fastreq", "fastreq_sync.py", modes=("bytes",),
           desc="ours, sync fastreq(return_type=\"buffer\"): bodies as views of the engine's memory, not "
                "copied (W3, W4; n/a where the library lacks it)",
           args=("--buffer",)),
    Client("fastreq-fetch", "python", "fastreq", "fastreq_fetch.py", modes=("jsonl",),
           desc="ours, the command line: fastreq fetch URLS -o OUT.jsonl (W10 only)"),
    Client("fastreq_async", "python", "fastreq", "fastreq_async.py",
           desc="ours, await fastreq_async() / FastRequests"),
    Client("go-core", "go", desc="the Go engine used directly (package core, no FFI)", binary="goclient"),
    Client("go-floor", "go", support=_floor_support, binary="gofloor",
           desc="floor: a bare net/http client loop doing the same work (one Transport, 64 goroutines)"),
    Client("aiohttp", "python", "aiohttp", "aiohttp_client.py", _h1_only("aiohttp"),
           desc="aiohttp ClientSession, 64 worker tasks (W8: 256; W9: retries written by hand)"),
    Client("httpx", "python", "httpx", "httpx_client.py", _no_rate("httpx"),
           desc="httpx AsyncClient (+h2), 64 worker tasks"),
    Client("niquests", "python", "niquests", "niquests_client.py", _no_rate("niquests"),
           desc="niquests AsyncSession, 64 worker tasks"),
    Client("requests", "python", "requests", "requests_client.py", _h1_only("requests"),
           desc="requests, 64-thread pool, a Session per thread"),
    Client("fastreq-orig", "python", "fastreq_orig", "fastreq_orig.py",
           desc="the original pure-Python fastreq 3.x from PyPI, sync fastreq()"),
    Client("h2load", "h2load", desc="ceiling: nghttp2's h2load, 1 thread"),
    Client("wrk", "wrk", support=_wrk_support, desc="ceiling: wrk, 1 thread, fixed duration"),
]
CLIENT_BY_NAME = {c.name: c for c in CLIENTS}


# ------------------------------------------------------------------ helpers


def log(msg: str) -> None:
    print(msg, flush=True)


def sh(cmd: list[str], timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def sh_out(cmd: list[str], timeout: float = 30) -> str:
    try:
        r = sh(cmd, timeout=timeout)
        return (r.stdout or r.stderr).strip()
    except (OSError, subprocess.SubprocessError) as e:
        return f"unavailable ({e})"


def tail(path: Path, lines: int = 8, chars: int = 600) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    text = "\n".join(text.strip().splitlines()[-lines:])
    return text[-chars:]


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = math.ceil(p / 100 * len(sorted_values) - 1e-9) - 1
    return sorted_values[min(max(k, 0), len(sorted_values) - 1)]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("FASTREQ_") or k in ("PYTHONPATH", "PYTHONHOME", "GOMAXPROCS",
                                                      "GODEBUG", "GOGC", "GOMEMLIMIT",
                                                      "VIRTUAL_ENV", "PYTHONSTARTUP"))}
    env["PYTHONNOUSERSITE"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if extra:
        env.update(extra)
    return env


def apt_install(packages: list[str]) -> bool:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        log(f"  cannot apt-get install {packages} (not root or no apt-get)")
        return False
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        log(f"  apt-get install {' '.join(packages)}")
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        r = subprocess.run(["apt-get", "install", "-y", "-qq", *packages], env=env,
                           capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            log("  apt-get failed: " + r.stderr.strip()[-400:])
        return r.returncode == 0
    except (OSError, subprocess.SubprocessError) as e:
        log(f"  apt-get failed: {e}")
        return False


# ------------------------------------------------------------------- setup


def lock_file(path: Path, what: str) -> Any:
    """Take an exclusive lock on path, waiting (with a message) while
    another harness run holds it. Closing the returned file releases it."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        log(f"  another benchmark run ({f.read().strip() or 'unknown'}) is {what}: waiting for it")
        fcntl.flock(f, fcntl.LOCK_EX)
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()}")
    f.flush()
    return f


def prune_run_dirs(keep_days: float = 1.0) -> None:
    """Remove per-run directories older than keep_days (never a live run's)."""
    cutoff = time.time() - keep_days * 86400
    for d in (WORK / "runs").glob("*"):
        try:
            if d.is_dir() and d != RUN_DIR and d.stat().st_mtime < cutoff:
                shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass


def build_go() -> None:
    BIN.mkdir(parents=True, exist_ok=True)
    for pkg, out in (("./tests/bench/server", "bench-server"), ("./tests/bench/goclient", "goclient"),
                     ("./tests/bench/gofloor", "gofloor"), ("./tests/bench/launcher", "launcher")):
        log(f"  go build {pkg}")
        r = sh(["go", "build", "-trimpath", "-o", str(BIN / out), pkg], timeout=600, cwd=REPO)
        if r.returncode != 0:
            raise SystemExit(f"go build {pkg} failed:\n{r.stderr}")


def venv_python(name: str) -> Path:
    return VENVS / name / "bin" / "python"


def project_requirements() -> list[str]:
    """Runtime dependencies our package declares (python/pyproject.toml),
    besides orjson, which VENV_REQUIREMENTS pins."""
    for path in (REPO / "python" / "pyproject.toml", REPO / "pyproject.toml"):
        if path.exists():
            try:
                import tomllib
                deps = tomllib.loads(path.read_text()).get("project", {}).get("dependencies", [])
            except (ImportError, ValueError):
                return []
            return [d for d in deps if not re.match(r"\s*orjson\b", d, re.I)]
    return []


def requirements(name: str) -> list[str]:
    reqs = list(VENV_REQUIREMENTS[name])
    if name == "fastreq":
        reqs += project_requirements()
    return reqs


def ensure_venv(name: str) -> tuple[bool, str]:
    """Create venvs/NAME with its pinned requirements (once). Returns (ok, message)."""
    reqs = requirements(name)
    d = VENVS / name
    marker = d / ".bench-requirements"
    want = "\n".join(reqs) + "\n"
    if venv_python(name).exists() and marker.exists() and marker.read_text() == want:
        return True, "cached"
    if d.exists():
        shutil.rmtree(d)
    VENVS.mkdir(parents=True, exist_ok=True)
    log(f"  creating venv {name}: {' '.join(reqs)}")
    r = sh([sys.executable, "-m", "venv", str(d)], timeout=300)
    if r.returncode != 0:
        log("  venv creation failed; installing python3-venv")
        apt_install(["python3-venv"])
        shutil.rmtree(d, ignore_errors=True)
        r = sh([sys.executable, "-m", "venv", str(d)], timeout=300)
        if r.returncode != 0:
            return False, "venv creation failed: " + r.stderr.strip()[-300:]
    r = sh([str(venv_python(name)), "-m", "pip", "install", "-q", "--disable-pip-version-check", *reqs],
           timeout=1800, env=clean_env())
    if r.returncode != 0:
        return False, "pip install failed: " + (r.stderr or r.stdout).strip()[-500:]
    marker.write_text(want)
    return True, "created"


def venv_freeze(name: str) -> str:
    if not venv_python(name).exists():
        return "(no venv)"
    r = sh([str(venv_python(name)), "-m", "pip", "freeze", "--disable-pip-version-check"],
           timeout=120, env=clean_env())
    return " ".join(r.stdout.split())


def ensure_tool(binary: str, package: str) -> bool:
    if shutil.which(binary):
        return True
    apt_install([package])
    return shutil.which(binary) is not None


# ------------------------------------------------------------------ server


class Server:
    def __init__(self, pin: bool, hosts: bool = False) -> None:
        self.pin = pin
        self.hosts = hosts  # also serve every loopback address (W8, W2-tls-hosts)
        self.proc: Optional[subprocess.Popen] = None
        self.info: dict[str, Any] = {}
        self.stderr_path = RUN_DIR / "server.stderr"
        self.cert = RUN_DIR / "cert.pem"

    def start(self) -> None:
        cmd = [str(BIN / "bench-server"), "-gomaxprocs", "1", "-cert", str(self.cert), "-exit-on-stdin-close"]
        if self.hosts:
            # bound to the wildcard address to reach all of 127.0.0.0/8, but
            # tied to lo and closing any non-loopback peer (server/main.go)
            cmd += ["-hosts-addr", "0.0.0.0:0", "-tls-hosts-addr", "0.0.0.0:0"]
        if self.pin:
            cmd = ["taskset", "-c", SERVER_CPU, *cmd]
        self.stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, env=clean_env(), start_new_session=True)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.stop()
            raise SystemExit("bench server did not start: " + tail(self.stderr_path))
        self.info = json.loads(line)
        log(f"  server pid {self.info['pid']}: {self.info['http_url']} (HTTP/1.1 + h2c), "
            f"{self.info['tls_url']} (TLS h2)"
            + (f", ports {self.info['hosts_port']} (plain) and {self.info['tls_hosts_port']} (TLS) on every "
               f"loopback address (loopback peers only"
               f"{', sockets tied to lo' if self.info.get('hosts_bound_to_lo') else ''})"
               if self.info.get("hosts_port") else ""))

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def url(self, w: Workload) -> str:
        if w.hosts:
            # the clients spread it over 127.0.X.Y (_common.host_urls)
            if w.tls:
                return f"https://127.0.0.1:{self.info['tls_hosts_port']}{w.path}"
            return f"http://127.0.0.1:{self.info['hosts_port']}{w.path}"
        if w.proto == "h3":
            return self.info.get("h3_url", "https://127.0.0.1:1") + w.path  # port 1: no UDP port, every request fails
        return (self.info["tls_url"] if w.tls else self.info["http_url"]) + w.path

    def stats(self) -> Optional[dict[str, int]]:
        """Requests served per protocol so far; None when the server does not answer."""
        try:
            with urllib.request.urlopen(self.info["http_url"] + "/stats", timeout=10) as r:
                return json.load(r)
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        try:
            if p.stdin:
                p.stdin.close()  # -exit-on-stdin-close
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.wait(timeout=10)
        self.stderr.close()


class ClosedPort:
    """A port on 127.0.0.1 where nothing listens, for mode storm: one the
    harness could bind (so nobody held it) and closed again, below the
    ephemeral range, so that no client's own outgoing connection can take
    it as its local port and connect to itself. Checked before every run,
    since another program could start listening on it."""

    def __init__(self) -> None:
        self.port = 0

    def url(self, path: str) -> str:
        if not self.port or not self.refused(self.port):
            self.port = self.allocate()
        return f"http://127.0.0.1:{self.port}{path}"

    @staticmethod
    def allocate() -> int:
        try:
            low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            low = 32768
        candidates = list(range(10_000, max(low, 10_001)))
        random.shuffle(candidates)
        for port in candidates[:200]:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            if ClosedPort.refused(port):
                return port
        raise OSError("found no free port below the ephemeral range for the failure storm")

    @staticmethod
    def refused(port: int) -> bool:
        """Whether a connection to 127.0.0.1:port is refused (nothing listens)."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            try:
                s.connect(("127.0.0.1", port))
            except ConnectionRefusedError:
                return True
            except OSError:
                return False
            return False


# -------------------------------------------------------------- one run


@dataclass
class Run:
    workload: str
    client: str
    index: int
    status: str = "ok"  # ok | failed | timeout | n/a | wrong-proto
    note: str = ""
    ok: int = 0
    failed: int = 0
    n: int = 0
    elapsed: float = float("nan")  # workload time reported by the client
    wall: float = float("nan")  # process wall time, measured here
    rps: float = float("nan")
    cpu: float = float("nan")  # process user+sys, measured here (wait4)
    cpu_work: float = float("nan")  # workload only, reported by the client
    rss_mib: float = float("nan")  # peak RSS of the process (wait4)
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    achieved_rate: float = float("nan")
    bytes: int = 0
    proto_seen: str = ""
    version: str = ""
    peak_fds: float = float("nan")  # most open descriptors seen (W8, W9; the launcher samples /proc/PID/fd)
    attempts: float = float("nan")  # mode storm: attempts made in all, where the client knows
    info: str = ""  # the client's remarks: descriptor limit, options, failure kinds
    tls_full: float = float("nan")  # TLS handshakes the server made during the run: full ones
    tls_resumed: float = float("nan")  # and resumed ones (TLS session resumption)


def command(c: Client, w: Workload, url: str, quick: bool, wrk_duration: float) -> tuple[list[str], dict[str, str], Path | None]:
    log_file: Path | None = None
    env = clean_env()
    if c.kind == "python":
        cmd = [str(venv_python(c.venv)), str(CLIENTS_DIR / c.script), "--url", url, "--n", str(w.n),
               "--concurrency", str(w.concurrency), "--mode", w.mode, "--rate", str(w.rate),
               "--proto", w.proto, *c.args]
        if w.hosts:
            cmd += ["--hosts", str(w.hosts)]
        if w.retries:
            cmd += ["--retries", str(w.retries)]
        if c.venv == "fastreq":
            env["PYTHONPATH"] = str(REPO / "python")
            env["FASTREQ_LIBRARY"] = str(LIB)
    elif c.kind == "go":
        cmd = [str(BIN / c.binary), "-url", url, "-n", str(w.n), "-c", str(w.concurrency),
               "-mode", w.mode, "-rate", str(w.rate), "-proto", w.proto,
               "-hosts", str(w.hosts), "-retries", str(w.retries)]
    elif c.kind == "h2load":
        cmd = ["h2load", "-t", "1", "-n", str(w.n)]
        if w.proto == "h1":
            cmd.append("--h1")
        if w.mode == "serial":
            log_file = RUN_DIR / "h2load-requests.log"
            cmd += ["-c", "1", "-m", "1", f"--log-file={log_file}"]
        elif w.mode == "rate":
            cmd += ["-c", "1", "-m", "1", f"--rps={int(w.rate)}"]
        elif w.proto == "h1":
            cmd += ["-c", str(min(w.concurrency, w.n)), "-m", "1"]
        else:  # one HTTP/2 connection with 64 streams, as the HTTP/2 clients do
            cmd += ["-c", "1", "-m", str(w.concurrency)]
        cmd.append(url)
    elif c.kind == "wrk":
        conns = 1 if w.mode == "serial" else w.concurrency
        cmd = ["wrk", "-t", "1", "-c", str(conns), "-d", f"{wrk_duration:g}s", "--latency", url]
    else:
        raise ValueError(c.kind)
    return cmd, env, log_file


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _dur_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def parse_output(c: Client, w: Workload, run: Run, out: str, log_file: Path | None) -> None:
    if c.kind in ("python", "go"):
        line = next((l for l in reversed(out.splitlines()) if l.startswith("{")), None)
        if line is None:
            raise ValueError("no JSON result line on stdout")
        d = json.loads(line)
        run.ok, run.failed = int(d["ok"]), int(d["failed"])
        run.elapsed = float(d["elapsed"])
        run.cpu_work = float(d.get("cpu_work_s", float("nan")))
        run.bytes = int(d.get("bytes", 0))
        run.p50_ms = float(d.get("p50_ms", float("nan")))
        run.p99_ms = float(d.get("p99_ms", float("nan")))
        run.achieved_rate = float(d.get("achieved_rate", float("nan")))
        run.version = str(d.get("version", ""))
        run.attempts = float(d.get("attempts", float("nan")))
        run.info = str(d.get("info", ""))
        if d.get("errors"):
            run.note = "; ".join(d["errors"])[:300]
    elif c.kind == "h2load":
        m = re.search(r"finished in ([\d.]+)(us|ms|s|m),", out)
        if not m:
            raise ValueError("no 'finished in' line in h2load output")
        run.elapsed = _dur_ms(m.group(1) + m.group(2)) / 1000
        m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                      r"(\d+) errored, (\d+) timeout", out)
        if not m:
            raise ValueError("no 'requests:' line in h2load output")
        run.ok = int(m.group(4))
        run.failed = w.n - run.ok
        if w.mode == "rate" and run.elapsed > 0:
            run.achieved_rate = run.ok / run.elapsed
        if log_file is not None:
            lat = []
            for l in log_file.read_text().splitlines():
                parts = l.split("\t")
                if len(parts) >= 3:
                    lat.append(int(parts[2]) / 1000)
            lat.sort()
            run.p50_ms, run.p99_ms = percentile(lat, 50), percentile(lat, 99)
    elif c.kind == "wrk":
        m = re.search(r"(\d+) requests in ([\d.]+\w+),", out)
        if not m:
            raise ValueError("no 'requests in' line in wrk output")
        total = int(m.group(1))
        run.elapsed = _dur_ms(m.group(2)) / 1000
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        run.ok = total - (int(non2xx.group(1)) if non2xx else 0)
        run.failed = total - run.ok
        errs = re.search(r"Socket errors: (.*)", out)
        if errs:
            run.note = "socket errors: " + errs.group(1)
        for pct, attr in (("50", "p50_ms"), ("99", "p99_ms")):
            m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
            if m:
                setattr(run, attr, _dur_ms(m.group(1)))


def run_once(c: Client, w: Workload, index: int, server: Server, args: argparse.Namespace,
             url: str = "") -> Run:
    run = Run(w.id, c.name, index, n=w.n)
    cmd, env, log_file = command(c, w, url or server.url(w), args.quick, args.wrk_duration)
    logs = RUN_DIR / "logs" / w.id
    logs.mkdir(parents=True, exist_ok=True)
    out_path = logs / f"{c.name}-{index}.out"
    err_path = logs / f"{c.name}-{index}.err"
    ru_path = logs / f"{c.name}-{index}.rusage.json"
    ru_path.unlink(missing_ok=True)
    # taskset pins the launcher, which starts the client (inheriting the
    # pinning) and reports its CPU time and peak RSS: see launcher/main.go
    # W8/W9: the launcher also counts the client's open descriptors (every
    # 20 ms, less often when counting costs more: launcher/main.go)
    fds = ["-fds-every", "20ms"] if w.hosts or w.storm else []
    cmd = [str(BIN / "launcher"), "-rusage", str(ru_path), *fds, "--", *cmd]
    if args.pin:
        cmd = ["taskset", "-c", CLIENT_CPU, *cmd]
    (logs / f"{c.name}-{index}.cmd").write_text(shlex.join(cmd) + "\n")
    if log_file is not None and log_file.exists():
        log_file.unlink()
    timeout = args.wrk_duration + 60 if c.kind == "wrk" else args.timeout
    before = server.stats()
    t0 = time.perf_counter()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                    cwd=REPO, start_new_session=True)
        except OSError as e:
            run.status, run.note = "failed", f"cannot start: {e}"
            return run
        deadline = time.monotonic() + timeout
        status = rusage = None
        timed_out = False

        def kill_group() -> tuple[int, Any]:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # launcher and client share the group
            except OSError:
                pass
            _, st, ru = os.wait4(proc.pid, 0)
            return st, ru

        try:
            while True:
                pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
                if pid == proc.pid:
                    break
                if time.monotonic() > deadline:
                    timed_out = True
                    status, rusage = kill_group()
                    break
                time.sleep(0.02)
        except BaseException:  # interrupted: leave no client behind
            kill_group()
            proc.returncode = -9
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)  # keep Popen from waiting again
    run.wall = time.perf_counter() - t0
    try:
        ru = json.loads(ru_path.read_text())
        run.cpu = ru["utime_s"] + ru["stime_s"]
        run.rss_mib = ru["maxrss_kib"] / 1024
        run.peak_fds = float(ru.get("peak_fds", float("nan")))
    except (OSError, ValueError, KeyError):
        # no report from the launcher (killed): launcher and client together,
        # with the harness's own peak RSS as a floor
        run.cpu = rusage.ru_utime + rusage.ru_stime
        run.rss_mib = rusage.ru_maxrss / 1024  # KiB on Linux
    time.sleep(0.2)  # let the server finish requests still in flight before counting
    after = server.stats()
    seen = {k: after[k] - before[k] for k in after} if before and after else None
    run.proto_seen = " ".join(f"{k}={v}" for k, v in seen.items() if v) if seen is not None else "unknown"
    if seen is not None and w.tls and "tls_full" in seen:
        run.tls_full, run.tls_resumed = float(seen["tls_full"]), float(seen.get("tls_resumed", 0))
    rc = proc.returncode

    if timed_out:
        err_tail = tail(err_path, 3, 300)
        run.status, run.note = "timeout", f"killed after {timeout:g} s" + (f"; stderr: {err_tail}" if err_tail else "")
        return run
    if rc == 3 and c.kind == "python":
        run.status, run.note = "n/a", tail(err_path, 1, 200).removeprefix("unsupported: ")
        return run
    if rc != 0:
        run.status, run.note = "failed", f"exit {rc}; stderr: {tail(err_path)}"
        return run
    out_text = out_path.read_text(errors="replace")
    try:
        parse_output(c, w, run, out_text, log_file)
    except (ValueError, KeyError, OSError) as e:
        run.status = "failed"
        run.note = f"{e}; stderr: {tail(err_path)}"
        return run
    if run.elapsed > 0:
        run.rps = run.ok / run.elapsed
    # every request must succeed (the duration-based wrk has no fixed count)
    if run.failed or (c.kind != "wrk" and run.ok != w.n):
        run.status = "failed"
        run.note = (f"{run.ok} of {w.n} failed as they should (refused), {run.failed} did not" if w.storm
                    else f"{run.ok} of {w.n} ok, {run.failed} failed") + (f": {run.note}" if run.note else "")
        return run
    if w.mode == "bytes" and c.kind in ("python", "go") and run.bytes != w.n * w.body_size:
        run.status, run.note = "failed", f"kept {run.bytes} body bytes, expected {w.n * w.body_size}"
        return run
    if w.storm:
        return run  # nothing reached the server; the client checked every failure's kind
    if seen is None:
        run.status, run.note = "failed", "the server's /stats did not answer (server down?)"
        return run
    want = {"h1": "h1", "h3": "h3"}.get(w.proto, "h2")
    others = sum(seen.get(p, 0) for p in ("h1", "h2", "h3") if p != want)
    if others > 0 or seen.get(want, 0) < max(run.ok, 1) * (0 if c.kind == "wrk" else 1):
        run.status = "wrong-proto"
        run.note = f"asked for {w.proto}, the server saw {run.proto_seen or 'nothing'}"
    return run


# ---------------------------------------------------------- aggregation


def med(values: list[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return statistics.median(vals) if vals else float("nan")


@dataclass
class Summary:
    workload: Workload
    client: Client
    status: str
    note: str
    runs_ok: int
    runs: int
    rps: float = float("nan")
    cpu: float = float("nan")
    cpu_work: float = float("nan")
    rss_mib: float = float("nan")
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    achieved_rate: float = float("nan")
    rate_error_pct: float = float("nan")
    elapsed: float = float("nan")
    vs_go: float = float("nan")
    vs_floor: float = float("nan")  # req/s over go-floor's (the bare net/http loop), paired by round
    vs_aiohttp: float = float("nan")
    vs_ceiling: float = float("nan")
    version: str = ""
    round_rps: dict[int, float] = field(default_factory=dict)  # run index -> req/s of the good runs
    round_p50: dict[int, float] = field(default_factory=dict)  # run index -> p50 ms (mode serial)
    p50_gap_us: float = float("nan")  # mode serial: p50 minus go-core's, median over the rounds
    p50_gap_floor_us: float = float("nan")  # mode serial: p50 minus go-floor's, median over the rounds
    peak_fds: float = float("nan")
    attempts: float = float("nan")
    info: str = ""  # the last good run's remarks (descriptor limit, options, failure kinds)
    round_elapsed: dict[int, float] = field(default_factory=dict)  # run index -> workload seconds
    time_vs_go: float = float("nan")  # mode storm: wall time over go-core's, median over the rounds
    tls_full: float = float("nan")  # TLS handshakes per run (median): full
    tls_resumed: float = float("nan")  # and resumed

    @property
    def cpu_us_per_req(self) -> float:
        """CPU of the whole client process per request, microseconds."""
        return self.cpu / self.workload.n * 1e6


def summarize(w: Workload, c: Client, runs: list[Run], na_reason: Optional[str]) -> Summary:
    if na_reason is not None:
        return Summary(w, c, "n/a", na_reason, 0, 0)
    good = [r for r in runs if r.status == "ok"]
    s = Summary(w, c, "ok" if good else (runs[-1].status if runs else "skipped"), "", len(good), len(runs))
    bad = [r for r in runs if r.status != "ok"]
    if bad:
        s.note = bad[-1].note
        if good:
            s.status = "partial"
            s.note = f"run {bad[-1].index} {bad[-1].status}: {bad[-1].note}"
    if not good:
        return s
    s.rps = med([r.rps for r in good])
    s.cpu = med([r.cpu for r in good])
    s.cpu_work = med([r.cpu_work for r in good])
    s.rss_mib = med([r.rss_mib for r in good])
    s.p50_ms = med([r.p50_ms for r in good])
    s.p99_ms = med([r.p99_ms for r in good])
    s.elapsed = med([r.elapsed for r in good])
    s.achieved_rate = med([r.achieved_rate for r in good])
    if w.mode == "rate" and not math.isnan(s.achieved_rate):
        s.rate_error_pct = (s.achieved_rate / w.rate - 1) * 100
    s.version = good[-1].version
    s.round_rps = {r.index: r.rps for r in good if not math.isnan(r.rps)}
    s.round_p50 = {r.index: r.p50_ms for r in good if not math.isnan(r.p50_ms)}
    s.peak_fds = med([r.peak_fds for r in good])
    s.attempts = med([r.attempts for r in good])
    s.info = good[-1].info
    s.round_elapsed = {r.index: r.elapsed for r in good if not math.isnan(r.elapsed)}
    s.tls_full = med([r.tls_full for r in good])
    s.tls_resumed = med([r.tls_resumed for r in good])
    return s


def paired(mine: dict[int, float], ref: dict[int, float], f: Callable[[float, float], float]) -> float:
    """The median, over the interleaved rounds both ran well, of f(mine,
    ref) in the same round: drift over a long run (the VM's neighbours, a
    slower hour) moves both sides alike, where comparing two medians would
    mix rounds. NaN when no round is shared."""
    both = sorted(set(mine) & set(ref))
    return statistics.median(f(mine[i], ref[i]) for i in both) if both else float("nan")


def paired_ratio(s: Summary, ref: Summary) -> float:
    """s's req/s over ref's, paired by round (falls back to the ratio of
    the medians)."""
    r = paired(s.round_rps, ref.round_rps, lambda a, b: a / b)
    return s.rps / ref.rps if math.isnan(r) else r


def add_ratios(summaries: list[Summary]) -> None:
    by_w: dict[str, list[Summary]] = {}
    for s in summaries:
        by_w.setdefault(s.workload.id, []).append(s)
    for group in by_w.values():
        if group[0].workload.mode == "rate":
            continue  # throughput is fixed by the rate: no ratios
        ref = {s.client.name: s for s in group if not math.isnan(s.rps)}
        ceilings = [s for s in group if s.client.ceiling and not math.isnan(s.rps)]
        ceil = max(ceilings, key=lambda s: s.rps, default=None)
        for s in group:
            if math.isnan(s.rps):
                continue
            if "go-core" in ref:
                s.vs_go = paired_ratio(s, ref["go-core"])
                s.p50_gap_us = paired(s.round_p50, ref["go-core"].round_p50, lambda a, b: (a - b) * 1000)
                if s.workload.storm:
                    s.time_vs_go = paired(s.round_elapsed, ref["go-core"].round_elapsed, lambda a, b: a / b)
            if "go-floor" in ref:
                s.vs_floor = paired_ratio(s, ref["go-floor"])
                s.p50_gap_floor_us = paired(s.round_p50, ref["go-floor"].round_p50, lambda a, b: (a - b) * 1000)
            if "aiohttp" in ref:
                s.vs_aiohttp = paired_ratio(s, ref["aiohttp"])
            if ceil is not None and not s.client.ceiling:
                s.vs_ceiling = paired_ratio(s, ceil)


# -------------------------------------------------------------- reports


def fmt(v: float, digits: int = 0, suffix: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if digits == 0:
        return f"{v:,.0f}{suffix}"
    return f"{v:,.{digits}f}{suffix}"


def machine_info() -> dict[str, str]:
    model = ""
    for line in sh_out(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {
        "cpu": model or platform.processor(),
        "cores": str(os.cpu_count()),
        "memory": mem,
        "kernel": platform.release(),
        "os": sh_out(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "python": sys.version.split()[0] + f" ({sys.executable})",
        "go": sh_out(["go", "version"]),
        "h2load": sh_out(["h2load", "--version"]) if shutil.which("h2load") else "not installed",
        "wrk": (sh_out(["wrk", "-v"]).splitlines() or [""])[0].split(" Copyright")[0]
        if shutil.which("wrk") else "not installed",
        "repo": sh_out(["git", "-C", str(REPO), "describe", "--always", "--dirty"]),
        "nofile": "/".join(str(v) for v in resource.getrlimit(resource.RLIMIT_NOFILE)),
    }


def library_info() -> str:
    """Which libfastreq our Python clients load: path, size, a hash and the
    time it was built, so that runs of two builds can be told apart."""
    try:
        data = LIB.read_bytes()
    except OSError as e:
        return f"{LIB} (unreadable: {e.strerror})"
    built = dt.datetime.fromtimestamp(LIB.stat().st_mtime).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    via = "FASTREQ_LIBRARY" if os.environ.get("FASTREQ_LIBRARY") else "default"
    return f"`{LIB}` ({via}; {len(data) / 2**20:.1f} MiB, sha256 {hashlib.sha256(data).hexdigest()[:12]}, built {built})"


CSV_FIELDS = ["workload", "client", "status", "runs_ok", "runs", "n", "concurrency", "proto", "mode",
              "rps", "elapsed_s", "cpu_s", "cpu_work_s", "peak_rss_mib", "p50_ms", "p99_ms",
              "achieved_rate", "rate_error_pct", "vs_go_core", "vs_aiohttp", "vs_ceiling", "version", "note",
              "hosts", "peak_fds", "attempts", "time_vs_go_core", "info", "vs_go_floor", "p50_gap_go_core_us",
              "p50_gap_go_floor_us", "cpu_us_per_req", "tls_full", "tls_resumed"]


def write_csv(path: Path, summaries: list[Summary]) -> None:
    def num(v: float, d: int = 4) -> str:
        return "" if math.isnan(v) else f"{v:.{d}f}"

    with open(path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(CSV_FIELDS)
        for s in summaries:
            w = s.workload
            wr.writerow([w.id, s.client.name, s.status, s.runs_ok, s.runs, w.n, w.concurrency, w.proto, w.mode,
                         num(s.rps, 1), num(s.elapsed), num(s.cpu, 3), num(s.cpu_work, 3), num(s.rss_mib, 1),
                         num(s.p50_ms), num(s.p99_ms), num(s.achieved_rate, 2), num(s.rate_error_pct, 2),
                         num(s.vs_go, 3), num(s.vs_aiohttp, 3), num(s.vs_ceiling, 3), s.version,
                         s.note.replace("\n", " "), w.hosts or "", num(s.peak_fds, 0), num(s.attempts, 0),
                         num(s.time_vs_go, 3), s.info.replace("\n", " "), num(s.vs_floor, 3), num(s.p50_gap_us, 1),
                         num(s.p50_gap_floor_us, 1), num(s.cpu_us_per_req, 1), num(s.tls_full, 0),
                         num(s.tls_resumed, 0)])


def write_runs_csv(path: Path, runs: list[Run]) -> None:
    fields = list(Run.__dataclass_fields__)
    with open(path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(fields)
        for r in runs:
            row = []
            for k in fields:
                v = getattr(r, k)
                if isinstance(v, float):
                    v = "" if math.isnan(v) else f"{v:.6g}"
                elif isinstance(v, str):
                    v = v.replace("\n", " ")
                row.append(v)
            wr.writerow(row)


def md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def markdown(summaries: list[Summary], meta: dict[str, Any], chart: Optional[str]) -> str:
    m = meta["machine"]
    lines = [
        "# fastreq benchmark results",
        "",
        f"Generated {meta['date']} by `{meta['command']}` "
        f"({meta['runs']} runs per client and workload, medians; clients interleaved"
        f"{'; QUICK smoke run with small N, not for comparison' if meta['quick'] else ''}).",
        "Rerun: `make bench` (or `python3 tests/bench/run.py --help` for the options).",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; memory {m['memory']}",
        f"- kernel {m['kernel']}; {m['os']}",
        f"- load average before / after: {meta['load_before']} / {meta['load_after']}",
        f"- pinning: {'server on CPU ' + SERVER_CPU + ' (GOMAXPROCS=1), every client on CPU ' + CLIENT_CPU if meta['pin'] else 'none (fewer than 2 CPUs or --no-pin)'}",
        f"- repository: {m['repo']}; {m['go']}; Python {m['python']}",
        f"- ceilings: {m['h2load']}; {m['wrk']}",
    ]
    if meta.get("library"):
        lines.append(f"- library under test (our Python clients): {meta['library']}")
    if m.get("nofile"):
        lines.append(f"- descriptor limit (`ulimit -n`, soft/hard) the clients start with: {m['nofile']}")
    lines += [
        "",
    ]
    if chart:
        lines += [f"![benchmark chart]({chart})", ""]
    lines += [
        "## How to read",
        "",
        "req/s = successful requests / the client's own workload time (process start-up and imports "
        "excluded). CPU s = user+system time of the whole client process (wait4, start-up included); "
        "work CPU s = the client's own figure for the workload alone. Peak RSS = ru_maxrss of the "
        "client process. Ratios are req/s divided by that of go-core (the engine without FFI), "
        "go-floor (a bare net/http loop doing the same work: what the engine's machinery costs on top), "
        "aiohttp, and the best ceiling tool, taken round by round (each client's run against the "
        "reference's run of the same interleaved round) and then the median, so that drift during "
        "the run cancels out (h2load/wrk neither parse nor keep bodies; wrk runs "
        f"for a fixed {meta['wrk_duration']:g} s instead of N requests). Every run is checked: all N "
        "requests must succeed, kept bodies must add up, and the server counts which protocol it "
        "actually served (a client that asked for HTTP/2 but spoke HTTP/1.1 is `wrong-proto`). "
        "`n/a` = the peer cannot do this workload (no HTTP/2, no rate limit).",
        "",
    ]
    if any((s.workload.hosts and not s.workload.tls) or s.workload.storm for s in summaries):
        lines += [
            "W8 and W9 run fastreq, go-core and aiohttp only. W8: peak fds = the most descriptors the "
            "client process had open, counted from /proc/PID/fd while it ran (every 20 ms, less often when "
            "there are thousands). W9: every request must FAIL, at a port where nothing listens, after its "
            "retries (or fast, by a circuit breaker); wall s = the client's own time for all N, time vs "
            "go-core = that over go-core's in the same round (median; below 1 is faster), attempts = "
            "connection attempts made in all. The note column of W8 and W9 carries the client's own "
            "remarks: the descriptor limit it ran with and how each request failed.",
            "",
        ]
    if any(s.workload.hosts and s.workload.tls for s in summaries):
        lines += [
            "W2-tls-hosts runs fastreq, fastreq-conns, go-core, go-floor and aiohttp: HTTPS (HTTP/1.1) over "
            "thousands of hosts, where a client that bounds its sockets (the engine by default: concurrency + 8) "
            "connects anew for almost every request while one that keeps a connection per host (go-floor, "
            "aiohttp, fastreq-conns with max_connections = hosts + concurrency) handshakes once per host. "
            "CPU µs/req = CPU s / N; TLS full / resumed = the handshakes the server made during the run "
            "(median), full and resumed (TLS session resumption).",
            "",
        ]
    by_w: dict[str, list[Summary]] = {}
    for s in summaries:
        by_w.setdefault(s.workload.id, []).append(s)
    for wid, group in by_w.items():
        w = group[0].workload
        lines += [f"## {wid}: {w.n:,} {w.title}", ""]
        if w.storm:
            lines += ["| client | wall s | time vs go-core | attempts | settled/s | CPU s | work CPU s | peak RSS MiB | peak fds | runs | note |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
            for s in group:
                lines.append(
                    f"| {s.client.name} | {fmt(s.elapsed, 2)} | {fmt(s.time_vs_go, 2, 'x')} | {fmt(s.attempts)} | "
                    f"{fmt(s.rps)} | {fmt(s.cpu, 2)} | {fmt(s.cpu_work, 2)} | {fmt(s.rss_mib, 1)} | "
                    f"{fmt(s.peak_fds)} | {runs_cell(s)} | {md_escape(status_note(s))} |")
        elif w.hosts:
            tls = ["TLS full", "TLS resumed"] if w.tls else []
            lines += ["| " + " | ".join(["client", "req/s", "peak fds", "CPU s", "CPU µs/req", "work CPU s", "peak RSS MiB",
                                         *tls, "vs go-core", "vs go-floor", "vs aiohttp", "runs", "note"]) + " |",
                      "|---|" + "---:|" * (10 + len(tls)) + "---|"]
            for s in group:
                tls_cells = [fmt(s.tls_full), fmt(s.tls_resumed)] if w.tls else []
                lines.append("| " + " | ".join([
                    s.client.name, fmt(s.rps), fmt(s.peak_fds), fmt(s.cpu, 2), fmt(s.cpu_us_per_req), fmt(s.cpu_work, 2),
                    fmt(s.rss_mib, 1), *tls_cells, fmt(s.vs_go, 2, 'x'), fmt(s.vs_floor, 2, 'x'),
                    fmt(s.vs_aiohttp, 2, 'x'), runs_cell(s), md_escape(status_note(s))]) + " |")
        elif w.mode == "rate":
            lines += ["| client | achieved req/s | error vs 500/s | CPU s | work CPU s | peak RSS MiB | runs | note |",
                      "|---|---:|---:|---:|---:|---:|---:|---|"]
            for s in group:
                lines.append(
                    f"| {s.client.name} | {fmt(s.achieved_rate, 1)} | {fmt(s.rate_error_pct, 2, ' %')} | "
                    f"{fmt(s.cpu, 2)} | {fmt(s.cpu_work, 2)} | {fmt(s.rss_mib, 1)} | {runs_cell(s)} | "
                    f"{md_escape(status_note(s))} |")
        elif w.mode == "serial":
            lines += ["| client | p50 ms | p50 − go-core's (µs) | p50 − go-floor's (µs) | p99 ms | req/s | CPU s | work CPU s | peak RSS MiB | vs go-core | vs go-floor | vs aiohttp | vs ceiling | runs | note |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
            for s in group:
                lines.append(
                    f"| {s.client.name} | {fmt(s.p50_ms, 3)} | {fmt(s.p50_gap_us, 0)} | {fmt(s.p50_gap_floor_us, 0)} | "
                    f"{fmt(s.p99_ms, 3)} | {fmt(s.rps)} | "
                    f"{fmt(s.cpu, 2)} | {fmt(s.cpu_work, 2)} | {fmt(s.rss_mib, 1)} | {fmt(s.vs_go, 2, 'x')} | "
                    f"{fmt(s.vs_floor, 2, 'x')} | {fmt(s.vs_aiohttp, 2, 'x')} | {fmt(s.vs_ceiling, 2, 'x')} | "
                    f"{runs_cell(s)} | {md_escape(status_note(s))} |")
        else:
            lines += ["| client | req/s | CPU s | CPU µs/req | work CPU s | peak RSS MiB | vs go-core | vs go-floor | vs aiohttp | vs ceiling | runs | note |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
            for s in group:
                lines.append(
                    f"| {s.client.name} | {fmt(s.rps)} | {fmt(s.cpu, 2)} | {fmt(s.cpu_us_per_req)} | {fmt(s.cpu_work, 2)} | "
                    f"{fmt(s.rss_mib, 1)} | {fmt(s.vs_go, 2, 'x')} | {fmt(s.vs_floor, 2, 'x')} | "
                    f"{fmt(s.vs_aiohttp, 2, 'x')} | {fmt(s.vs_ceiling, 2, 'x')} | {runs_cell(s)} | "
                    f"{md_escape(status_note(s))} |")
        lines.append("")
    lines += ["## Clients and versions", "", "| client | what | version (as it reports) |", "|---|---|---|"]
    versions = meta["client_versions"]
    for c in (CLIENT_BY_NAME[n] for n in meta["clients"] if n in CLIENT_BY_NAME):
        lines.append(f"| {c.name} | {md_escape(c.desc)} | {md_escape(versions.get(c.name, ''))} |")
    lines += ["", "Virtual environments (pinned top-level requirements; `pip freeze`):", ""]
    for name, frozen in meta["freeze"].items():
        lines.append(f"- `{name}`: requirements {', '.join(requirements(name))}; installed: {frozen}")
    lines.append("")
    return "\n".join(lines)


def runs_cell(s: Summary) -> str:
    return "" if s.status == "n/a" else f"{s.runs_ok}/{s.runs}"


def status_note(s: Summary) -> str:
    if s.status == "ok":
        return s.note or s.info
    if s.status == "n/a":
        return f"n/a: {s.note}"
    return f"{s.status.upper()}: {s.note}"[:400]


README_BEGIN = "<!-- bench-results:begin -->"
README_END = "<!-- bench-results:end -->"


def replace_block(path: Path, begin: str, end: str, lines: list[str]) -> None:
    """Replace what lies between the markers begin and end (included) in
    the file at path with lines; nothing happens without both markers."""
    if not path.exists():
        return
    text = path.read_text()
    if begin not in text or end not in text:
        return
    start, stop = text.index(begin), text.index(end) + len(end)
    path.write_text(text[:start] + "\n".join(lines) + text[stop:])


def table_cell(s: Optional[Summary]) -> str:
    """One client's figure for one workload in the READMEs' tables."""
    if s is None:
        return ""
    if math.isnan(s.rps):
        return s.status
    if s.workload.mode == "rate":
        return f"{s.achieved_rate:.1f}/s ({s.rate_error_pct:+.2f}%)"
    if s.workload.mode == "serial":
        return f"{s.p50_ms * 1000:.0f} µs"
    if s.workload.id == "W5":
        return f"{s.rps:,.0f} ({s.rss_mib:.0f} MiB)"
    if s.workload.storm:
        return f"{s.elapsed:.2f} s ({s.rss_mib:.0f} MiB)"
    if s.workload.hosts:
        return f"{s.rps:,.0f} ({s.peak_fds:,.0f} fds)"
    return f"{s.rps:,.0f}"


def floor_ratios(summaries: list[Summary], client: str) -> list[str]:
    """client's figure against go-floor's (the bare net/http loop) per
    workload, for the READMEs: "W1 0.93x" (req/s, paired by round), "W7
    p50 +20 µs"."""
    out = []
    for s in summaries:
        if s.client.name != client:
            continue
        if not math.isnan(s.p50_gap_floor_us):
            out.append(f"{s.workload.id} p50 {s.p50_gap_floor_us:+.0f} µs")
        elif not math.isnan(s.vs_floor) and s.workload.mode != "rate":
            out.append(f"{s.workload.id} {s.vs_floor:.2f}x")
    return out


def update_readme(summaries: list[Summary], meta: dict[str, Any], has_chart: bool) -> None:
    m = meta["machine"]
    lines = [
        README_BEGIN,
        "",
        f"Last full run: {meta['date']}, `{meta['command']}`, runs per client and workload: {meta['runs']}; "
        f"{m['cpu']} ({m['cores']} cores), kernel {m['kernel']}, load average "
        f"{meta['load_before']} before / {meta['load_after']} after; repository {m['repo']}.",
        "",
    ]
    if has_chart:
        lines += ["![fastreq benchmark](results/chart.png)", ""]
    lines += ["Requests/s, medians (W5: and peak RSS; W6: achieved rate and its error against 500/s; W7: p50 "
              "latency of one request at a time; W8: and the client's peak open descriptors; W9: wall time "
              "for the whole storm, and peak RSS). Full tables with CPU, peak memory, ratios and versions: "
              "[results/results.md](results/results.md), [results/results.csv](results/results.csv).", ""]
    wids = list(dict.fromkeys(s.workload.id for s in summaries))
    names = list(dict.fromkeys(s.client.name for s in summaries))
    cell = {(s.workload.id, s.client.name): s for s in summaries}
    lines.append("| client | " + " | ".join(wids) + " |")
    lines.append("|---|" + "---:|" * len(wids))
    for n in names:
        lines.append(f"| {n} | " + " | ".join(table_cell(cell.get((wid, n))) for wid in wids) + " |")
    vs_floor = [f"{n}: " + ", ".join(r) for n in ("fastreq", "fastreq_async", "go-core")
                if (r := floor_ratios(summaries, n))]
    if vs_floor:
        lines += ["", "Against go-floor, the bare net/http loop (req/s ratio, median of the rounds' ratios; W7: p50 "
                  "difference): " + "; ".join(vs_floor) + "."]
    lines += ["", README_END]
    replace_block(HERE / "README.md", README_BEGIN, README_END, lines)


TOP_BEGIN = "<!-- bench-table -->"
TOP_END = "<!-- /bench-table -->"


def update_top_readme(summaries: list[Summary], meta: dict[str, Any], has_chart: bool) -> None:
    """The table of the repository's README: a row per workload, a column
    per client, then fastreq's ratios."""
    m = meta["machine"]
    names = list(dict.fromkeys(s.client.name for s in summaries))
    cell = {(s.workload.id, s.client.name): s for s in summaries}
    label = {"W1": "W1 20k GET /json, h1", "W2-h2c": "W2 same, h2c", "W2-tls": "W2 same, TLS h2",
             "W2-h3": "W2 same, HTTP/3",
             "W2-tls-hosts": "W2-tls-hosts 20k /json over 2k HTTPS hosts (peak fds)", "W3": "W3 5k × 64 KiB", "W4": "W4 500 × 1 MiB", "W5": "W5 100k /json (peak RSS)",
             "W6": "W6 rate_limit=500/s", "W7": "W7 one at a time, p50",
             "W8": "W8 50k /json over 5k hosts (peak fds)", "W9": "W9 50k to a closed port, 2 retries (wall, RSS)",
             "W10": "W10 100k URLs to JSON lines"}
    lines = [
        TOP_BEGIN,
        f"Measured on a {m['cores']}-core {m['cpu']} (server on CPU 0, each client on CPU 1), median of "
        f"{meta['runs']} interleaved runs, {meta['date']} (commit {m['repo']}). Requests/s unless noted; "
        "n/a: the peer cannot do it (no HTTP/2, no rate limit); wrong-proto: asked for h2c, spoke HTTP/1.1.",
        "",
        "| workload | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for wid in dict.fromkeys(s.workload.id for s in summaries):
        lines.append(f"| {label.get(wid, wid)} | " + " | ".join(table_cell(cell.get((wid, n))) for n in names) + " |")
    ratios = []
    for wid in dict.fromkeys(s.workload.id for s in summaries):
        s = cell.get((wid, "fastreq"))
        if s is None or math.isnan(s.vs_go):
            continue
        if s.workload.storm:
            r = f"{wid}: wall time {s.time_vs_go:.2f}x go-core's"
            if (nb := cell.get((wid, "fastreq-nobreaker"))) is not None and not math.isnan(nb.elapsed):
                r += f" ({s.elapsed:.2f} s; {nb.elapsed:.2f} s without the circuit breaker)"
            ratios.append(r)
            continue
        r = f"{wid}: {s.vs_go:.2f}x go-core"
        if not math.isnan(s.vs_floor):
            r += f", {s.vs_floor:.2f}x go-floor"
        if not math.isnan(s.vs_aiohttp):
            r += f", {s.vs_aiohttp:.2f}x aiohttp"
        if s.workload.mode == "bytes":
            r += f", peak RSS {s.rss_mib:.0f} MiB"
            if (fb := cell.get((wid, "fastreq-buffer"))) is not None and not math.isnan(fb.vs_go):
                r += f' (return_type="buffer": {fb.vs_go:.2f}x go-core, peak RSS {fb.rss_mib:.0f} MiB)'
        if s.workload.hosts:
            r += f", peak {s.peak_fds:,.0f} descriptors"
        if not math.isnan(s.p50_gap_us):
            r += f", p50 {s.p50_gap_us:+.0f} µs from go-core's"
        ratios.append(r)
    gaps = [f"{wid} p50 {a.p50_gap_us:+.0f} µs from go-core's" for wid in dict.fromkeys(x.workload.id for x in summaries)
            if (a := cell.get((wid, "fastreq_async"))) is not None and not math.isnan(a.p50_gap_us)]
    lines += ["", "fastreq (the sync `fastreq()` call), each ratio the median of the rounds' ratios: "
              + "; ".join(ratios) + "." + (" fastreq_async (`await client.request(url)`): " + "; ".join(gaps) + "."
                                           if gaps else "")]
    if core_floor := floor_ratios(summaries, "go-core"):
        lines += ["", "go-core (the engine from Go) against go-floor (a bare net/http loop doing the same work): "
                  + ", ".join(core_floor) + "."]
    if has_chart:
        lines += ["", "![benchmark chart](tests/bench/results/chart.png)"]
    lines += ["", "All figures, CPU seconds and ratios: [tests/bench/results/results.md]"
              "(tests/bench/results/results.md). Rerun with `make bench`.", TOP_END]
    replace_block(HERE.parent.parent / "README.md", TOP_BEGIN, TOP_END, lines)


# ------------------------------------------------------------------ main


def runs_description(args: argparse.Namespace, ws: list[Workload]) -> str:
    """"5", or "5 (W5: 3)" when workloads differ."""
    if args.runs:
        return str(args.runs)
    common = max({w.runs for w in ws}, key=lambda r: sum(w.runs == r for w in ws))
    odd = ", ".join(f"{w.id}: {w.runs}" for w in ws if w.runs != common)
    return f"{common} ({odd})" if odd else str(common)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=0, help="runs per client and workload (median; default 5, "
                   "W5 3)")
    p.add_argument("--quick", action="store_true", help="smoke run with small N (results/quick/)")
    p.add_argument("--only", default="", help="workloads, comma-separated: W1,W2 (W2 = every W2 variant),...")
    p.add_argument("--clients", default="", help="clients, comma-separated (default all): "
                   + ",".join(c.name for c in CLIENTS))
    p.add_argument("--timeout", type=float, default=0, help="seconds per client run before it is killed "
                   "(default 900, --quick 120)")
    p.add_argument("--wrk-duration", type=float, default=0, help="seconds per wrk run (default 10, --quick 2)")
    p.add_argument("--out", default="", help="output directory (default results/, or results/quick/ with "
                   "--quick, or results/partial/ with --only/--clients)")
    p.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin with taskset")
    p.add_argument("--no-install", action="store_true", help="neither apt-get nor pip: use what is there")
    p.add_argument("--list", action="store_true", help="list workloads and clients, then exit")
    p.add_argument("--report", default="", metavar="DIR", help="measure nothing: rebuild DIR's results.md, "
                   "results.csv and chart (and the READMEs for results/) from its runs.csv and meta.json")
    a = p.parse_args()
    a.timeout = a.timeout or (120 if a.quick else 900)
    a.wrk_duration = a.wrk_duration or (2 if a.quick else 10)
    if a.runs < 0:
        p.error("--runs must be at least 1 (or 0: each workload's own)")
    return a


def select_items(args: argparse.Namespace) -> tuple[list[Workload], list[Client]]:
    ws = workloads(args.quick)
    if args.only:
        want = [x.strip().upper() for x in args.only.split(",") if x.strip()]
        # "W2" names every W2 variant; "W2-tls" only itself (not W2-tls-hosts)
        def picks(x: str, w: Workload) -> bool:
            return w.id.upper() == x or ("-" not in x and w.id.upper().startswith(x + "-"))

        unknown = [x for x in want if not any(picks(x, w) for w in ws)]
        if unknown:
            raise SystemExit(f"unknown workload(s) {unknown}; known: {[w.id for w in ws]}")
        ws = [w for w in ws if any(picks(x, w) for x in want)]
    cs = CLIENTS
    if args.clients:
        names = [x.strip() for x in args.clients.split(",") if x.strip()]
        unknown = [x for x in names if x not in CLIENT_BY_NAME]
        if unknown:
            raise SystemExit(f"unknown client(s) {unknown}; known: {list(CLIENT_BY_NAME)}")
        cs = [c for c in CLIENTS if c.name in names]
    # no venv, tool or table row for a client that runs none of the workloads
    cs = [c for c in cs if any(c.takes_part(w) for w in ws)]
    return ws, cs


def main() -> int:
    args = parse_args()
    if args.report:
        return report_only(Path(args.report).resolve())
    ws, cs = select_items(args)
    if args.list:
        for w in ws:
            extra = f"  [clients: {', '.join(c.name for c in cs if c.takes_part(w))}]" if w.clients else ""
            log(f"{w.id:7} n={w.n:<7} c={w.concurrency:<3} {w.proto:4} {w.mode:6} {w.path}  {w.title}{extra}")
        for c in cs:
            log(f"{c.name:17} {c.desc}")
        return 0
    partial = bool(args.only or args.clients)
    out_dir = Path(args.out) if args.out else HERE / "results" / ("quick" if args.quick else "partial" if partial else "")
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    global RUN_DIR, BIN
    RUN_DIR = WORK / "runs" / f"{dt.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}"
    BIN = RUN_DIR / "bin"
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    prune_run_dirs()
    if (os.cpu_count() or 1) < 2 or not shutil.which("taskset"):
        args.pin = False
    command_line = "python3 tests/bench/run.py" + ("" if len(sys.argv) == 1 else " " + shlex.join(sys.argv[1:]))

    log("== setup")
    if not shutil.which("go"):
        raise SystemExit("go is not on PATH")
    build_go()
    if not LIB.exists() and any(c.venv == "fastreq" for c in cs):
        why = "named by FASTREQ_LIBRARY" if os.environ.get("FASTREQ_LIBRARY") else "make bench builds it"
        log(f"  warning: {LIB} is missing ({why}); our fastreq clients will fail")
    elif any(c.venv == "fastreq" for c in cs):
        log(f"  library: {library_info()}")
    setup_failed: dict[str, str] = {}
    for tool, pkg in (("h2load", "nghttp2-client"), ("wrk", "wrk")):
        if any(c.kind == tool for c in cs) and not (shutil.which(tool) or (not args.no_install and ensure_tool(tool, pkg))):
            setup_failed[tool] = f"{tool} is not installed (apt package {pkg})"
    venvs_needed = list(dict.fromkeys(c.venv for c in cs if c.venv)) + ["report"]
    setup_lock = lock_file(WORK / ".setup.lock", "setting up the venvs")
    for v in venvs_needed:
        if args.no_install:
            ok, msg = venv_python(v).exists(), "missing venv (--no-install)"
        else:
            ok, msg = ensure_venv(v)
        if not ok:
            log(f"  venv {v}: {msg}")
            for c in cs:
                if c.venv == v:
                    setup_failed[c.name] = msg
    if any(c.venv == "fastreq" for c in cs):
        probe = sh([str(venv_python("fastreq")), "-c", "from fastreq import fastreq, fastreq_async, FastRequests"],
                   timeout=60, env=clean_env({"PYTHONPATH": str(REPO / "python"), "FASTREQ_LIBRARY": str(LIB)}))
        if probe.returncode != 0:
            last = (probe.stderr.strip().splitlines() or [""])[-1]
            log(f"  warning: our fastreq does not import yet (its runs will fail): {last}")
    setup_lock.close()
    freeze = {v: venv_freeze(v) for v in venvs_needed if v != "report"}
    machine = machine_info()
    load_before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    log(f"  machine: {machine['cpu']}, {machine['cores']} cores, kernel {machine['kernel']}, load {load_before}")
    if not args.pin:
        log("  warning: not pinning (fewer than 2 CPUs, no taskset, or --no-pin)")

    # one measurement at a time on this machine: a second run waits
    measure_lock = lock_file(WORK / ".measure.lock", "measuring")
    if args.pin:
        # the harness only polls and waits while a client runs: keep it off the client's CPU
        os.sched_setaffinity(0, {int(SERVER_CPU)})
    server = Server(args.pin, hosts=any(w.hosts for w in ws))
    closed_port = ClosedPort()
    all_runs: list[Run] = []
    summaries: list[Summary] = []
    versions: dict[str, str] = {"h2load": machine["h2load"], "wrk": machine["wrk"]}

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    interrupted = False
    try:
        server.start()
        for w in ws:
            wcs = [c for c in cs if c.takes_part(w)]
            if not wcs:
                log(f"== {w.id}: none of the selected clients runs it ({', '.join(w.clients)} do)")
                continue
            log(f"== {w.id}: {w.n:,} {w.title}")
            runs: dict[str, list[Run]] = {c.name: [] for c in wcs}
            na: dict[str, Optional[str]] = {c.name: c.support(w) for c in wcs}
            dead: dict[str, bool] = {}
            nruns = args.runs or w.runs
            for i in range(1, nruns + 1):
                # Each round starts with the next client: the first run after
                # the ceiling tools' load sometimes finds the server slow to
                # recover, and that should not always hit the same client.
                k = (i - 1) % len(wcs)
                for c in wcs[k:] + wcs[:k]:
                    if na[c.name] is not None or dead.get(c.name):
                        continue
                    if c.name in setup_failed or c.kind in setup_failed:
                        r = Run(w.id, c.name, i, status="failed", note=setup_failed.get(c.name) or setup_failed[c.kind])
                    else:
                        if not server.alive():
                            log("  server died; restarting: " + tail(server.stderr_path, 3))
                            server.stop()
                            server.start()
                        try:
                            r = run_once(c, w, i, server, args, closed_port.url(w.path) if w.storm else "")
                        except (OSError, subprocess.SubprocessError, ValueError) as e:
                            r = Run(w.id, c.name, i, status="failed", note=f"harness error: {e!r}")
                    runs[c.name].append(r)
                    all_runs.append(r)
                    if r.version:
                        versions.setdefault(c.name, r.version)
                    if r.status == "n/a":
                        na[c.name] = r.note
                    elif r.status != "ok":
                        dead[c.name] = True  # a failed client is not retried in this workload
                    log(f"  [{i}/{nruns}] {c.name:17} {r.status:11} "
                        + (f"{r.rps:10,.0f} req/s  cpu {r.cpu:6.2f} s  rss {r.rss_mib:7.1f} MiB"
                           if r.status == "ok" else "")
                        + (f"  fds {r.peak_fds:,.0f}" if r.status == "ok" and not math.isnan(r.peak_fds) else "")
                        + (f"  wall {r.elapsed:.2f} s  attempts {r.attempts:,.0f}" if w.storm and r.status == "ok" else "")
                        + (f"  p50 {r.p50_ms:.3f} ms p99 {r.p99_ms:.3f} ms" if w.mode == "serial" and r.status == "ok" else "")
                        + (f"  rate {r.achieved_rate:.1f}/s" if w.mode == "rate" and r.status == "ok" else "")
                        + ("" if r.status == "ok" and w.storm else f"  [{r.proto_seen}]" if r.status == "ok"
                           else f"  {r.note[:300]}"))
            for c in wcs:
                reason = na[c.name] if not runs[c.name] or all(r.status == "n/a" for r in runs[c.name]) else None
                summaries.append(summarize(w, c, [r for r in runs[c.name] if r.status != "n/a"], reason))
    except KeyboardInterrupt as e:
        interrupted = True
        log(f"interrupted ({e}); writing what was measured")
    finally:
        server.stop()

    measure_lock.close()
    load_after = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    meta: dict[str, Any] = {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "command": command_line,
        "runs": runs_description(args, ws),
        "quick": args.quick,
        "pin": args.pin,
        "wrk_duration": args.wrk_duration,
        "machine": machine,
        "load_before": load_before,
        "load_after": load_after,
        "client_versions": versions,
        "library": library_info() if any(c.venv == "fastreq" for c in cs) else "",
        "freeze": freeze,
        "clients": [c.name for c in cs],
    }
    write_runs_csv(out_dir / "runs.csv", all_runs)
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2))
    write_reports(out_dir, summaries, meta, interrupted)
    log(f"   raw output of every run: {RUN_DIR / 'logs'}")
    return 130 if interrupted else 0


def write_reports(out_dir: Path, summaries: list[Summary], meta: dict[str, Any], interrupted: bool = False) -> None:
    """results.csv, the chart, results.md and (for a full run in results/)
    the READMEs' tables, from the summaries of a run."""
    add_ratios(summaries)
    machine = meta["machine"]
    write_csv(out_dir / "results.csv", summaries)
    chart = None
    if venv_python("report").exists() and summaries:
        r = sh([str(venv_python("report")), str(HERE / "chart.py"), str(out_dir / "results.csv"),
                str(out_dir / "chart.png"), "--title",
                f"fastreq benchmark: {machine['cpu']}, {meta['date']}" + (" (QUICK smoke run)" if meta["quick"] else "")],
               timeout=300, env=clean_env({"MPLBACKEND": "Agg"}))
        if r.returncode == 0:
            chart = "chart.png"
        else:
            log("  chart failed: " + r.stderr.strip()[-500:])
    (out_dir / "results.md").write_text(markdown(summaries, meta, chart))
    if out_dir == (HERE / "results").resolve() and not interrupted and not meta["quick"]:
        update_readme(summaries, meta, chart is not None)
        update_top_readme(summaries, meta, chart is not None)
    log(f"== wrote {out_dir}/results.md, results.csv, runs.csv" + (", chart.png" if chart else ""))


def report_only(out_dir: Path) -> int:
    """--report: rebuild the reports of a finished run from its files."""
    meta = json.loads((out_dir / "meta.json").read_text())
    types = {f.name: f.type for f in dataclasses.fields(Run)}
    runs: list[Run] = []
    with open(out_dir / "runs.csv", newline="") as f:
        for row in csv.DictReader(f):
            kw: dict[str, Any] = {}
            for k, v in row.items():
                t = types.get(k)
                if t in (int, "int"):
                    kw[k] = int(v) if v else 0
                elif t in (float, "float"):
                    kw[k] = float(v) if v else float("nan")
                elif t is not None:
                    kw[k] = v
            runs.append(Run(**kw))
    names = meta["clients"]
    summaries = []
    for w in workloads(meta["quick"]):
        wr = [r for r in runs if r.workload == w.id]
        if not wr:
            continue
        for c in (CLIENT_BY_NAME[n] for n in names if n in CLIENT_BY_NAME):
            if not c.takes_part(w):
                continue
            mine = [r for r in wr if r.client == c.name]
            na = [r for r in mine if r.status == "n/a"]
            reason = c.support(w) or (na[-1].note if na and len(na) == len(mine) else None)
            summaries.append(summarize(w, c, [r for r in mine if r.status != "n/a"], reason))
    write_reports(out_dir, summaries, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
