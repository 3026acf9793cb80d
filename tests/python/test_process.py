"""Process-level behaviour: Ctrl-C, fork, library lookup."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import PYTHON_DIR, run_python

CTRL_C_CHILD = r"""
import signal, sys, time, fastreq
stall, fast = sys.argv[1], sys.argv[2]
# Python's own Ctrl-C handling, as a foreground program has it: a shell
# without job control starts background commands with SIGINT ignored,
# and Python then leaves it ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)

def progress(done, total):
    print("ready", flush=True)  # the fast request finished; the stalled one is in flight

t = None
try:
    t = time.monotonic()
    fastreq.fastreq([fast, stall], progress_callback=progress, max_retries=0)
    print("finished?!", flush=True)
except KeyboardInterrupt:
    took = time.monotonic() - t
    print("KeyboardInterrupt handles=%d buffers=%d" % (fastreq.engine.live_handles(), fastreq.engine.live_buffers()),
          flush=True)
    sys.exit(42)
"""


@pytest.mark.parametrize("variant", ["fastreq", "as_completed", "single"])
def test_ctrl_c_raises_keyboard_interrupt_quickly(server, variant):
    code = CTRL_C_CHILD
    call = "fastreq.fastreq([fast, stall], progress_callback=progress, max_retries=0)"
    if variant == "as_completed":
        code = code.replace(call, "[progress(1, 2) for _ in fastreq.fastreq_as_completed([fast, stall], max_retries=0)]")
    elif variant == "single":  # request_sync's one-request path
        code = code.replace(call, "with fastreq.FastRequests(max_retries=0) as c:\n"
                                  "        c.request_sync(fast); progress(1, 1); c.request_sync(stall)")
    env = dict(os.environ, PYTHONPATH=str(PYTHON_DIR))
    p = subprocess.Popen([sys.executable, "-c", code, server.url("/x/stall?seconds=60"), server.url("/x/json")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert p.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # now inside the 100 ms waits
        t = time.monotonic()
        p.send_signal(signal.SIGINT)
        rc = p.wait(timeout=5)
        took = time.monotonic() - t
        out = p.stdout.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rc == 42, p.stderr.read()
    assert took < 2.0
    assert "KeyboardInterrupt handles=0 buffers=0" in out


FORK_CHILD = r"""
import os, sys, fastreq
from fastreq import FastRequests, ForkedProcessError
url = sys.argv[1]
client = FastRequests()
assert client.request_sync(url)["id"] == 12345     # the engine runs in the parent
view = client.request_sync(url.replace("/x/json", "/x/bytes/70000"), return_type="buffer")
pid = os.fork()
if pid == 0:
    ok = len(view) == 70000 and view[:3] == bytes([0, 1, 2])
    del view              # the library's memory: must not call into the dead runtime to free it
    code = 0
    try:
        fastreq.fastreq(url)
        code = 1
    except ForkedProcessError as e:
        code = 7 if "spawn" in str(e) else 2
    try:
        client.request_sync(url)
        code = 3
    except ForkedProcessError:
        pass
    try:
        fastreq.engine.live_handles()
        code = 4
    except ForkedProcessError:
        pass
    client.close_sync()   # must not call into the dead runtime
    del client
    os._exit(code if ok else 5)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status), flush=True)
print("parent", client.request_sync(url)["id"], flush=True)
del view
client.close_sync()
"""


def test_fork_child_gets_a_clear_error(server):
    out = run_python(FORK_CHILD, server.url("/x/json"), timeout=30)
    assert out.returncode == 0, out.stderr
    assert "child 7" in out.stdout
    assert "parent 12345" in out.stdout


def test_fork_before_loading_is_fine(server):
    code = r"""
import os, sys, fastreq
url = sys.argv[1]
c = fastreq.FastRequests()          # not started: the engine is not loaded
pid = os.fork()
if pid == 0:
    ok = c.request_sync(url)["id"] == 12345
    c.close_sync()
    os._exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
"""
    out = run_python(code, server.url("/x/json"), timeout=30)
    assert out.returncode == 0, out.stderr
    assert "child 0" in out.stdout


def test_spawned_workers_work(server):
    code = r"""
import multiprocessing as mp, sys, fastreq

def work(url):
    return fastreq.fastreq(url)["id"]

if __name__ == "__main__":
    fastreq.fastreq(sys.argv[1])
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        print(pool.map(work, [sys.argv[1]] * 4))
"""
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(code)
    try:
        env = dict(os.environ, PYTHONPATH=str(PYTHON_DIR))
        out = subprocess.run([sys.executable, f.name, server.url("/x/json")], capture_output=True, text=True,
                             env=env, timeout=60)
    finally:
        os.unlink(f.name)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[12345, 12345, 12345, 12345]"


def test_missing_library_is_a_clear_error(tmp_path):
    code = "import fastreq\ntry:\n    fastreq.fastreq('http://127.0.0.1:1/')\nexcept fastreq.LibraryError as e:\n" \
           "    print('LibraryError', e)\n"
    out = run_python(code, env={"FASTREQ_LIBRARY": str(tmp_path / "missing.so")})
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("LibraryError") and "FASTREQ_LIBRARY" in out.stdout
    bogus = tmp_path / "libbogus.so"
    bogus.write_bytes(b"not a library")
    out = run_python(code, env={"FASTREQ_LIBRARY": str(bogus)})
    assert out.stdout.startswith("LibraryError") and "cannot load" in out.stdout


@pytest.mark.skipif("FASTREQ_LIBRARY" not in os.environ, reason="an installed package uses its own library")
def test_library_is_loaded_from_fastreq_library(server):
    out = run_python("import fastreq; fastreq.fastreq(__import__('sys').argv[1]); print(fastreq.engine.library_path(),"
                     " fastreq.engine.version(), fastreq.engine.abi_version())", server.url("/x/json"))
    assert out.returncode == 0, out.stderr
    path, version, abi = out.stdout.split()
    assert os.path.samefile(path, os.environ["FASTREQ_LIBRARY"])
    assert version.count(".") == 2 and abi == "2"


def test_loading_the_engine_keeps_the_descriptor_limit():
    # The Go runtime raises the soft RLIMIT_NOFILE as it starts; the
    # library puts the host's back.
    code = ("import resource, fastreq.engine as e\n"
            "hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n"
            "soft = 256 if hard == resource.RLIM_INFINITY or hard > 257 else hard - 1\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))\n"
            "e.version()\n"
            "print(soft, *resource.getrlimit(resource.RLIMIT_NOFILE))")
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    soft, now_soft, now_hard = out.stdout.split()
    assert now_soft == soft, out.stdout


ONE_CPU_CHILD = r"""
import asyncio, os, sys, fastreq
url = sys.argv[1]
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # before the engine loads: it sizes itself then
with fastreq.FastRequests(max_retries=0) as c:
    for _ in range(20):
        assert c.request_sync(url)["id"] == 12345
    assert c.request_sync(url.replace("/x/json", "/x/stall?seconds=0.25"), return_type="text") == "done\n"
    assert fastreq.fastreq(url, max_retries=0)["id"] == 12345
    if sys.argv[2] == "batch":  # Python sees nothing before the end
        assert len(fastreq.fastreq([url] * 50, max_retries=0)) == 50
    elif sys.argv[2] == "progress":  # Python runs after each result
        assert len(fastreq.fastreq([url] * 50, max_retries=0, progress_callback=lambda done, total: None)) == 50
    elif sys.argv[2] == "async-one":  # the loop calls in before and after each request
        async def one():
            async with fastreq.FastRequests(max_retries=0) as a:
                return [await a.request(url) for _ in range(20)]
        assert [r["id"] for r in asyncio.run(one())] == [12345] * 20
    else:  # an async batch: the loop calls in while requests run
        async def many():
            return await fastreq.fastreq_async([url] * 50, max_retries=0)
        assert len(asyncio.run(many())) == 50
    print("ok")
"""


@pytest.mark.parametrize("then", ["batch", "progress", "async-one", "async"])
@pytest.mark.parametrize("gomaxprocs", [None, "1"])
def test_one_cpu_process_runs_every_driver(server, then, gomaxprocs):
    # A process confined to one CPU, where Python keeps running while the
    # engine works (a progress callback, an event loop) and a thread that
    # returned from the library holds a Go scheduler slot for a while: every
    # driver still gets all its results, also with GOMAXPROCS=1 set.
    env = {"GOMAXPROCS": gomaxprocs} if gomaxprocs else None
    out = run_python(ONE_CPU_CHILD, server.url("/x/json"), then, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok"]
