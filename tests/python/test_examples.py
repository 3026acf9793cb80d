"""Every example script runs against the local server and prints what it should."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import PYTHON_DIR

EXAMPLES = PYTHON_DIR / "examples"


def run_example(name: str, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(PYTHON_DIR))
    out = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                         env=env, timeout=60, cwd=str(EXAMPLES))
    assert out.returncode == 0, f"{name} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def test_every_example_is_tested():
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
    assert scripts == sorted(["sync_basic.py", "async_basic.py", "per_request_specs.py", "as_completed.py",
                              "streaming.py", "download.py", "proxies_rate_limit.py", "dask_fetch.py"])


def test_sync_basic(server):
    out = run_example("sync_basic.py", server.http)
    assert "pages: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']" in out
    assert "doc id: 12345 uuid ok: True" in out
    assert "text: HTTP/1.1" in out and "status: 404" in out
    assert "failed: 1 of 2; succeeded: 1" in out
    assert "with None: [12345, None]" in out


def test_async_basic(server):
    out = run_example("async_basic.py", server.http)
    assert "fastreq_async: 20 documents, id 12345" in out
    assert "batch a: ['0', '1', '2', '3', '4']" in out
    assert "cookies: {'session': 'abc'}" in out
    assert "cancelled the stalled request" in out


def test_per_request_specs(server):
    out = run_example("per_request_specs.py", server.http).splitlines()
    assert out[0].startswith("GET /x/echo?kind=plain") and out[0].endswith("shared")
    assert out[1].startswith("POST /x/echo {'name': 'fastreq'}")
    assert out[2].startswith("PUT /x/echo {'field': ['value']}")
    assert out[3].startswith("PATCH /x/echo?page=2 raw text")
    assert out[4] == 'text: {"id":12345,"name":"'


def test_as_completed(server):
    out = run_example("as_completed.py", server.http).splitlines()
    assert [ln.split()[2] for ln in out[:3]] == ["fast", "medium", "slow"]
    assert sorted(out[3:5]) == ["async done: 1 ok", "async done: 2 failed (BackendError)"]
    assert out[5] == "async done: 0 ok"


def test_streaming(server):
    out = run_example("streaming.py", server.http).splitlines()
    assert out[0] == "chunks: 5 bytes: 320"
    first, last = float(out[1].split()[2]), float(out[1].split()[6])
    assert last - first >= 0.3  # chunks arrived over time
    assert out[2] == "streamed: {'a': 100000, 'b': 50000}"


def test_download(server, tmp_path):
    out = run_example("download.py", server.http, str(tmp_path))
    assert out.splitlines() == ["file0.bin 100000", "file1.bin 2000000", "file2.bin 5000000", "big: 5000000"]
    assert (tmp_path / "file1.bin").read_bytes()[:4] == bytes([0, 1, 2, 3])


def test_proxies_rate_limit(server):
    out = run_example("proxies_rate_limit.py", server.http, server.proxy_url, server.socks5_url).splitlines()
    assert out[0] == "via proxy: 12345"
    assert out[1] == "via pool: [12345, 12345, 12345, 12345]"
    assert out[2] == "via socks5: 12345"
    secs = float(out[3].split()[5])
    assert out[3].startswith("rate limited: 12 requests in") and 0.8 <= secs < 3


@pytest.mark.parametrize("name", ["sync_basic.py"])
def test_examples_take_the_url_from_the_environment(server, name):
    env = dict(os.environ, PYTHONPATH=str(PYTHON_DIR), FASTREQ_EXAMPLE_BASE_URL=server.http)
    out = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, env=env,
                         timeout=60, cwd=str(EXAMPLES))
    assert out.returncode == 0, out.stderr
    assert "doc id: 12345" in out.stdout
