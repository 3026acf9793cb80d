"""Shared fixtures: the real local test server (tests/testserver) and a
leak check after every test.

`make test` runs `python -m pytest tests/python` with
FASTREQ_LIBRARY=build/libfastreq.so and PYTHONPATH=python; both are set
here too when missing, so a bare `pytest tests/python` works as well.
"""

from __future__ import annotations

import gc
import json
import os
import select
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build"
PYTHON_DIR = REPO / "python"

if str(PYTHON_DIR) not in sys.path:
    sys.path.insert(0, str(PYTHON_DIR))
if not os.environ.get("FASTREQ_LIBRARY") and (BUILD / "libfastreq.so").exists():
    os.environ["FASTREQ_LIBRARY"] = str(BUILD / "libfastreq.so")
if os.environ.get("FASTREQ_LIBRARY"):
    os.environ["FASTREQ_LIBRARY"] = str(Path(os.environ["FASTREQ_LIBRARY"]).resolve())


def _testserver_binary() -> Path:
    exe = Path(os.environ.get("FASTREQ_TESTSERVER") or BUILD / "fastreq-testserver")
    if not exe.exists():
        BUILD.mkdir(exist_ok=True)
        subprocess.run(
            ["go", "build", "-o", str(exe), "./tests/testserver/cmd/fastreq-testserver"],
            cwd=str(REPO), check=True,
        )
    return exe


class Server:
    """A running fastreq-testserver: its URLs from the JSON line it prints."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [str(_testserver_binary()), "-exit-on-stdin-close", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.proc.kill()
            err = self.proc.stderr.read().decode() if self.proc.stderr else ""
            raise RuntimeError(f"fastreq-testserver did not start: {err}")
        self.info: Dict[str, str] = json.loads(line)
        self.http: str = self.info["http_url"]
        self.tls: str = self.info["tls_url"]
        self.tls_h1: str = self.info["tls_h1_url"]
        self.proxy_url: str = self.info["proxy_url"]
        self.proxy_addr: str = self.info["proxy_addr"]
        self.socks5_url: str = self.info["socks5_url"]
        self.socks5_addr: str = self.info["socks5_addr"]
        self.ca_file: str = self.info["ca_file"]

    def url(self, path: str) -> str:
        return self.http + path

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(10)
            except Exception:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session", autouse=True)
def server():
    s = Server()
    # The TLS servers' CA, for verify_ssl=True. Go reads SSL_CERT_FILE from
    # the environment the process started with, so tests that need it run
    # in subprocesses (see env_with_ca); set it here for those.
    os.environ["FASTREQ_TEST_CA_FILE"] = s.ca_file
    yield s
    s.close()


@pytest.fixture(scope="session")
def auth_server():
    """A second server whose proxies demand credentials."""
    s = Server("-proxy-auth", "puser:ppass", "-socks5-auth", "suser:spass")
    yield s
    s.close()


@pytest.fixture
def key() -> str:
    """A fresh key for the per-key counters of /x/status-then-ok and /x/flaky-reset."""
    return uuid.uuid4().hex


@pytest.fixture(autouse=True)
def no_leaks():
    """After every test: no engine handle and no library buffer is left."""
    yield
    import fastreq

    if not fastreq.engine.loaded():
        return
    deadline = time.monotonic() + 5
    while True:
        gc.collect()
        handles, buffers = fastreq.engine.live_handles(), fastreq.engine.live_buffers()
        if (handles, buffers) == (0, 0) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert (handles, buffers) == (0, 0), f"leak: {handles} live handles, {buffers} live buffers"


def run_python(code: str, *args: str, env: Optional[Dict[str, str]] = None, timeout: float = 60,
               **kwargs) -> subprocess.CompletedProcess:
    """Run a Python snippet in a fresh interpreter with the package importable."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(PYTHON_DIR), e.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if env:
        e.update(env)
    return subprocess.run([sys.executable, "-c", code, *args], env=e, capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def env_with_ca(server: Server) -> Dict[str, str]:
    return {"SSL_CERT_FILE": server.ca_file}


def ids(results: List[dict]) -> List[int]:
    return [r["id"] for r in results]
