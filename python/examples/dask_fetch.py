"""Requests on a Dask distributed cluster: results in order, part files
written by the workers, and a bag for pipelines (needs fastreq[dask]).

    python dask_fetch.py http://127.0.0.1:8080 [SCHEDULER_ADDRESS]

Without a scheduler address it starts a LocalCluster of two worker
processes on this machine.
"""

import contextlib
import tempfile

import dask.bag as db
from distributed import Client, LocalCluster

from _base import arg, base_url

import fastreq.dask


def main() -> None:
    base = base_url()
    address = arg(2, "FASTREQ_EXAMPLE_SCHEDULER")
    with contextlib.ExitStack() as stack:
        if address:
            client = stack.enter_context(Client(address))
        else:
            cluster = stack.enter_context(LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None))
            client = stack.enter_context(Client(cluster))
        urls = [f"{base}/x/echo?id={i}" for i in range(1000)]

        # Results in input order, as fastreq() gives them; concurrency and
        # rate_limit are for the whole cluster (split between the workers).
        docs = fastreq.dask.fetch(urls, partition_size=250, concurrency=32, rate_limit=2000)
        print("fetch:", len(docs), "results, first ids", [int(d["query"]["id"][0]) for d in docs[:3]])

        # Each worker writes its partitions as part files; only counts come back.
        with tempfile.TemporaryDirectory() as out:
            s = fastreq.dask.fetch_to(urls, out, "jsonl", partition_size=250, concurrency=32)
            print(f"fetch_to: {s['requests']} requests, {s['answered']} answered, {s['failed']} failed "
                  f"in {s['parts']} part files ({s['elapsed']:.2f} s)")

        # A lazy bag of results, for a pipeline.
        bag = fastreq.dask.fetch_bag(db.from_sequence(urls, npartitions=4), return_type="response")
        statuses = bag.map(lambda r: r.status_code).frequencies().compute()
        print("bag:", ", ".join(f"{n} statuses {s}" for s, n in statuses))


if __name__ == "__main__":
    main()
