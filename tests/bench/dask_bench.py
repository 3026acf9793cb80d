#!/usr/bin/env python3
"""fastreq.dask against one process (not part of `make test` or `make bench`).

N GET requests to the engine's loopback bench server (a child process,
128-byte bodies): fastreq() in this process, then fastreq.dask.fetch
(results back in order) and fastreq.dask.fetch_to (JSON lines part files,
nothing back) on a LocalCluster of W worker processes, one thread each.
Concurrency is the same for the whole job in every case. Prints a
Markdown table.

    PYTHONPATH=python FASTREQ_LIBRARY=build/libfastreq.so python3 tests/bench/dask_bench.py [-n 200000] [-w 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

from distributed import Client, LocalCluster

from fastreq import fastreq
import fastreq.dask as fdask
from fastreq._clibench import ServerProcess


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=200_000)
    ap.add_argument("-w", "--workers", type=int, default=2)
    ap.add_argument("-c", "--concurrency", type=int, default=128)
    ap.add_argument("--partition-size", type=int, default=10_000)
    a = ap.parse_args()
    server = ServerProcess(128)
    urls = [f"{server.url}/r{i}" for i in range(a.n)]
    rows = []
    try:
        t = time.monotonic()
        res = fastreq(urls, concurrency=a.concurrency, return_type="content", verbose=False)
        el = time.monotonic() - t
        assert len(res) == a.n
        del res
        rows.append(("fastreq(), one process", el))
        with LocalCluster(n_workers=a.workers, processes=True, threads_per_worker=1, dashboard_address=None,
                          silence_logs=40) as cluster, Client(cluster) as client:
            kw = dict(client=client, partition_size=a.partition_size, concurrency=a.concurrency,
                      return_type="content", verbose=False)
            fdask.fetch(urls[:100], **kw)  # workers warm: plugin registered, engine loaded
            t = time.monotonic()
            res = fdask.fetch(urls, **kw)
            el = time.monotonic() - t
            assert len(res) == a.n
            del res
            rows.append((f"fastreq.dask.fetch, LocalCluster({a.workers} workers)", el))
            out = tempfile.mkdtemp(prefix="fastreq-dask-bench-")
            try:
                kw.pop("return_type")
                t = time.monotonic()
                s = fdask.fetch_to(urls, out, client=client, partition_size=a.partition_size,
                                   concurrency=a.concurrency, body="none", headers=False, verbose=False)
                el = time.monotonic() - t
                assert s["requests"] == a.n and s["answered"] == a.n, s
                rows.append((f"fastreq.dask.fetch_to (jsonl), LocalCluster({a.workers} workers)", el))
            finally:
                shutil.rmtree(out, ignore_errors=True)
    finally:
        server.close()
    print(f"{a.n:,} requests, concurrency {a.concurrency} in all, {os.cpu_count()} CPUs\n")
    print("| run | seconds | requests/s |")
    print("|---|---:|---:|")
    for name, el in rows:
        print(f"| {name} | {el:.2f} | {a.n / el:,.0f} |")


if __name__ == "__main__":
    main()
