"""fastreq.dask on a LocalCluster of two spawned worker processes (one
thread each) against the test server: results in order, part files with
every request exactly once (also after a worker is killed mid-job), the
cluster-wide rate and concurrency, and `fastreq fetch --dask`.

The issue asks for 100,000 URLs; 20,000 keep this file within a 2-core
CI's budget (the module takes about 30 s, most of it the rate test's 5 s,
the kill test and the cluster's start).
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

import pytest

pytest.importorskip("dask.bag")
pytest.importorskip("distributed")

import dask  # noqa: E402
import dask.bag as db  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

import fastreq  # noqa: E402
import fastreq.dask as fdask  # noqa: E402
from fastreq import PartialFailureError, ValidationError  # noqa: E402
from conftest import PYTHON_DIR  # noqa: E402

N = 20_000


@pytest.fixture(scope="module")
def dask_client():
    # The engine is loaded here before the workers start: they are spawned
    # (distributed's default), so they do not inherit it.
    assert dask.config.get("distributed.worker.multiprocessing-method") == "spawn"
    fastreq.engine.version()
    cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                           silence_logs=40)
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


def probe(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def echo_urls(server, n: int, base: str = "") -> list:
    return [f"{base or server.http}/x/echo?i={i}" for i in range(n)]


def read_parts(path: str) -> list:
    records = []
    for part in sorted(glob.glob(os.path.join(path, "part-*.jsonl"))):
        with open(part, "rb") as fh:
            records += [json.loads(line) for line in fh]
    return records


def query_i(doc) -> int:
    return int(doc["query"]["i"][0])


def test_worker_share_splits_exactly():
    kw = {"concurrency": 10, "rate_limit": 400.0, "concurrency_per_host": 3, "rate_limit_burst": 5, "timeout": 7}
    shares = [fdask.worker_share(kw, r, 3) for r in range(3)]
    assert [s["concurrency"] for s in shares] == [4, 3, 3]
    assert [s["concurrency_per_host"] for s in shares] == [1, 1, 1]
    assert [s["rate_limit_burst"] for s in shares] == [2, 2, 1]
    assert all(s["rate_limit"] == pytest.approx(400 / 3) and s["timeout"] == 7 for s in shares)
    assert fdask.worker_share({"concurrency": 2}, 4, 5) == {"concurrency": 1}  # at least 1
    assert fdask.worker_share({}, 0, 4) == {}  # limits not given stay per worker


def test_fetch_in_order(server, dask_client, monkeypatch):
    """20,000 requests over 10 partitions, results in input order; the
    client process never calls the engine."""
    def no_engine():
        raise AssertionError("the engine was used on the client")

    monkeypatch.setattr(fastreq._ffi, "lib", no_engine)
    t = time.monotonic()
    res = fdask.fetch(echo_urls(server, N), client=dask_client, partition_size=2_000, concurrency=64)
    elapsed = time.monotonic() - t
    assert [query_i(d) for d in res] == list(range(N))
    print(f"fetch: {N:,} requests in {elapsed:.2f} s ({N / elapsed:,.0f}/s) on 2 workers")


def test_fetch_failures_by_input_index(server, dask_client):
    urls = echo_urls(server, 30)
    bad = {3, 17, 25}
    for i in bad:
        urls[i] = server.info["closed_url"] + f"/?i={i}"
    with pytest.raises(PartialFailureError) as ei:
        fdask.fetch(urls, client=dask_client, partition_size=7, max_retries=0)
    exc = ei.value
    assert set(exc.failures_by_index) == bad and exc.total == 30 and exc.successes == 27
    assert all(exc.failures_by_index[i].index == i for i in bad)
    assert [query_i(exc.results[i]) for i in range(30) if i not in bad] == [i for i in range(30) if i not in bad]
    res = fdask.fetch(iter(urls), client=dask_client, partition_size=7, max_retries=0, return_none_on_failure=True,
                      parse_func=query_i)
    assert res == [None if i in bad else i for i in range(30)]


def test_fetch_from_file_and_bag(server, dask_client, tmp_path):
    urls = echo_urls(server, 3_000)
    f = tmp_path / "urls.txt"
    f.write_text("# a comment\n" + "\n".join(urls[:1500]) + "\n\n" + "\n".join(urls[1500:]) + "\n")
    assert [query_i(d) for d in fdask.fetch(str(f), client=dask_client, partition_size=500)] == list(range(3_000))
    bag = fdask.fetch_bag(db.from_sequence(urls, npartitions=4), client=dask_client, return_type="json")
    assert bag.npartitions == 4
    assert sorted(bag.map(query_i).compute()) == list(range(3_000))
    with pytest.raises(ValidationError):
        fdask.fetch(urls[0], client=dask_client)  # one URL: fastreq() is for that
    with pytest.raises(ValidationError):
        fdask.fetch(urls, client=dask_client, keys=list(range(len(urls))))
    with pytest.raises(ValidationError, match="buffer"):
        fdask.fetch_bag(db.from_sequence(urls), client=dask_client, return_type="buffer")
    with pytest.raises(ValidationError, match="buffer"):  # a spec's own, found on the worker
        fdask.fetch([urls[0], {"url": urls[1], "return_type": "buffer"}], client=dask_client)


def test_fetch_to_jsonl_from_file_exactly_once(server, dask_client, tmp_path):
    urls = echo_urls(server, N)
    f = tmp_path / "urls.txt"
    f.write_text("\n".join(urls[:10]) + "\nnot a url\n" + "\n".join(urls[10:]) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "part-00999.jsonl").write_text('{"stale": true}\n')  # a previous job's file: removed
    (out / "notes.txt").write_text("kept")
    summary = fdask.fetch_to(str(f), str(out), client=dask_client, partition_size=2_000, concurrency=64,
                             body="json", headers=False)
    assert summary["requests"] == N + 1 and summary["answered"] == N and summary["bad_input"] == 1
    assert summary["by_status"] == {200: N} and summary["failed"] == 0 and summary["bytes"] > 0
    assert (out / "notes.txt").exists() and not (out / "part-00999.jsonl").exists()
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]
    records = read_parts(str(out))
    assert sorted(r["index"] for r in records) == list(range(N + 1))  # the input line numbers, 0-based
    bad = [r for r in records if r["error"] is not None]
    assert len(bad) == 1 and bad[0]["index"] == 10 and bad[0]["error"]["kind"] == "input"
    for r in records:
        if r["error"] is None:
            i = r["index"] - (r["index"] > 10)
            assert r["url"] == urls[i] and query_i(r["body"]) == i and "headers" not in r


def test_fetch_to_parquet_from_iterable(server, dask_client, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    n = 5_000
    gen = (u for u in echo_urls(server, n))
    summary = fdask.fetch_to(gen, str(tmp_path / "pq"), "parquet", client=dask_client, partition_size=1_000,
                             concurrency=32)
    assert summary["requests"] == n and summary["parts"] == 5
    table = pq.read_table(str(tmp_path / "pq"))
    assert table.num_rows == n
    assert sorted(table.column("index").to_pylist()) == list(range(n))
    assert set(table.column("status").to_pylist()) == {200}


def test_one_client_per_worker_shares_connections(server, dask_client):
    """concurrency=16 for the cluster: 8 per worker, whatever the number of
    tasks; the connections the server accepts are about 16 (not a pool per
    task), and a second job with the same options reuses them."""
    port = server.info["many_hosts_port"]
    host = f"127.0.{100 + uuid.uuid4().int % 100}.{1 + uuid.uuid4().int % 250}"
    key = uuid.uuid4().hex
    urls = [f"http://{host}:{port}/x/busy?hold=0.005&key={key}&i={i}" for i in range(4_000)]
    stats = server.url("/x/many-hosts/stats")
    before = probe(stats)["accepted"]
    kw = dict(client=dask_client, partition_size=250, concurrency=16, http2=False)
    assert len(fdask.fetch(urls, **kw)) == 4_000  # 16 tasks
    first = probe(stats)["accepted"] - before
    busy = probe(server.url(f"/x/busy-stats?key={key}"))
    assert busy["served"] == 4_000 and busy["max"] <= 16
    assert 2 <= first <= 16 + 4, f"{first} connections for concurrency 16"
    fdask.fetch(urls, **kw)
    second = probe(stats)["accepted"] - before - first
    assert second <= 4, f"{second} new connections for the same options"
    shares = dask_client.run(_plugin_concurrency, fdask._plugin_name(fdask._split_options(
        {"concurrency": 16, "http2": False})[0]))
    assert sorted(shares.values()) == [[8], [8]]
    print(f"connections: {first} for 16 partitions at concurrency 16, then {second} for the same job again")


def _plugin_concurrency(name, dask_worker=None):
    plugin = dask_worker.plugins[name]
    return [entry[0].concurrency for entry in plugin._clients.values()]


def test_cluster_wide_rate_limit(server, dask_client):
    """rate_limit=400 for the cluster: 200/s on each worker, 400/s in all."""
    rate, n = 400, 2_000
    kw = dict(client=dask_client, partition_size=n // 2, rate_limit=rate, concurrency=32)
    fdask.fetch(echo_urls(server, 4), **kw)  # the plugin and the engine ready on both workers
    t = time.monotonic()
    res = fdask.fetch(echo_urls(server, n), **kw)
    elapsed = time.monotonic() - t
    achieved = n / elapsed
    assert len(res) == n
    print(f"rate: {achieved:.0f}/s for rate_limit={rate} ({n:,} requests in {elapsed:.2f} s)")
    assert rate * 0.90 <= achieved <= rate * 1.05, achieved


def test_cli_fetch_dask(server, dask_client, tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("\n".join(echo_urls(server, 1_000)) + "\n")
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(PYTHON_DIR))
    p = subprocess.run([sys.executable, "-m", "fastreq", "fetch", str(f), "-o", str(out), "--dask",
                        dask_client.scheduler.address, "--chunk-size", "300", "-c", "16", "--no-headers"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    parts = glob.glob(str(out / "part-*.jsonl"))
    assert len(parts) >= 2  # read_text blocks of about 300 lines
    assert "1,000 requests" in p.stderr and f"{len(parts)} part files" in p.stderr, p.stderr
    records = read_parts(str(out))
    assert sorted(r["index"] for r in records) == list(range(1_000))
    assert all(r["status"] == 200 and "headers" not in r for r in records)


def test_example(server, dask_client):
    env = dict(os.environ, PYTHONPATH=str(PYTHON_DIR))
    p = subprocess.run([sys.executable, str(PYTHON_DIR / "examples" / "dask_fetch.py"), server.http,
                        dask_client.scheduler.address], capture_output=True, text=True, env=env, timeout=60,
                       cwd=str(PYTHON_DIR / "examples"))
    assert p.returncode == 0, p.stderr
    out = p.stdout.splitlines()
    assert out[0] == "fetch: 1000 results, first ids [0, 1, 2]"
    assert out[1].startswith("fetch_to: 1000 requests, 1000 answered, 0 failed in 4 part files")
    assert out[2] == "bag: 1000 statuses 200"


def test_worker_killed_mid_fetch_to(server, dask_client, tmp_path):
    """SIGKILL one worker process while fetch_to runs: Dask reruns its
    partitions, and the part files hold every request exactly once."""
    n = N
    urls = echo_urls(server, n)
    out = tmp_path / "killed"
    result = {}

    def job():
        try:
            result["summary"] = fdask.fetch_to(urls, str(out), client=dask_client, partition_size=1_000,
                                               rate_limit=4_000, concurrency=64, body="none")
        except BaseException as exc:  # noqa: BLE001
            result["error"] = exc

    pids = dask_client.run(os.getpid)
    assert len(pids) == 2 and os.getpid() not in pids.values()
    t = threading.Thread(target=job)
    t.start()
    deadline = time.monotonic() + 20
    while not glob.glob(str(out / "part-*.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    victim = sorted(pids.values())[0]
    os.kill(victim, signal.SIGKILL)
    t.join(60)
    assert not t.is_alive()
    assert "error" not in result, result.get("error")
    summary = result["summary"]
    records = read_parts(str(out))
    indices = sorted(r["index"] for r in records)
    assert indices == list(range(n)), f"{len(indices)} records, {len(set(indices))} distinct"
    assert summary["requests"] == n and summary["by_status"] == {200: n}
    assert all(r["url"] == urls[r["index"]] for r in records)
    print(f"killed worker {victim} mid-job: {len(records):,} records, each request once, "
          f"{summary['elapsed']:.2f} s")
    dask_client.wait_for_workers(2, timeout=30)
    assert victim not in dask_client.run(os.getpid).values()  # the nanny started a new worker process


def test_plugin_teardown_closes_the_clients(server, dask_client):
    """Unregistering the plugins (as closing a worker tears them down)
    closes every engine client of the workers."""
    fdask.fetch(echo_urls(server, 10), client=dask_client, concurrency=7)
    assert all(v > 0 for v in dask_client.run(fastreq.engine.live_handles).values())
    names = [n for n in dask_client.run_on_scheduler(_worker_plugin_names) if n.startswith("fastreq-")]
    assert fdask._plugin_name({"concurrency": 7}) in names
    for name in names:
        dask_client.unregister_worker_plugin(name)
    assert set(dask_client.run(fastreq.engine.live_handles).values()) == {0}


def _worker_plugin_names(dask_scheduler=None):
    return list(dask_scheduler.worker_plugins)
