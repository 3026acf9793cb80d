"""(fastreq addition) fastreq on a Dask distributed cluster.

One process runs one engine; a job of tens of millions of requests can run
on many. This module hands the requests to the workers of a Dask
``distributed`` cluster, one partition (``partition_size`` requests) per
task, and Dask does the scheduling, the retries of lost tasks and the
scaling::

    from distributed import Client
    import fastreq.dask

    client = Client("tcp://scheduler:8786")          # or Client(LocalCluster())
    results = fastreq.dask.fetch(urls, concurrency=400, rate_limit=2000)
    summary = fastreq.dask.fetch_to("urls.txt", "out/", format="parquet", concurrency=400)
    bag = fastreq.dask.fetch_bag(dask.bag.read_text("urls-*.txt"), return_type="text")

- :func:`fetch` returns the results in input order, as ``fastreq()`` does;
  :func:`fetch_bag` gives a lazy :class:`dask.bag.Bag` of results, for
  pipelines; :func:`fetch_to` has each worker write its partitions as
  part files (JSON lines or Parquet, the records of ``fastreq fetch``):
  the results never travel to the client, which gets a summary.
- Input: a list or tuple, any iterable (read on the client one partition
  at a time, at most a few partitions ahead of the workers), a text file
  path or glob (one URL or JSON request spec per line, read by the workers
  with :func:`dask.bag.read_text`, so it must be where they can read it),
  or a :class:`dask.bag.Bag` of URLs or specs.
- Each worker process keeps one engine client for a set of client options
  (a :class:`FastreqWorkerPlugin`, registered by these functions and
  closed with the worker): its connections, DNS cache and concurrency gate
  are shared by every task on that worker.
- The limits given (``concurrency``, ``rate_limit``, ``rate_limit_burst``,
  ``concurrency_per_host``, ``rate_limit_per_host``,
  ``rate_limit_per_host_burst``) are for the whole cluster: each of the N
  workers gets 1/N of them (integers are split exactly by the rank of the
  worker's address, at least 1 each). N is read from the scheduler when a
  task starts, so a task that starts after workers joined or left uses the
  new share. Limits not given are per worker (the package defaults:
  ``concurrency`` 20 on each worker), and so is ``max_connections``, a
  bound on one process's descriptors.
- Worker processes must be spawned (distributed's default,
  ``distributed.worker.multiprocessing-method: spawn``), not forked: the
  engine does not survive fork. Nothing here loads the engine on the
  client.

Needs ``dask[bag]`` and ``distributed`` (``pip install "fastreq[dask]"``).
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import os
import re
import threading
import time
import uuid
from collections import deque
from contextlib import contextmanager
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, List, Optional, Tuple

try:
    import dask.bag as _dask_bag
    import distributed as _distributed
    from distributed import WorkerPlugin
except ImportError as _exc:  # pragma: no cover - depends on the environment
    raise ImportError("fastreq.dask needs dask and distributed: pip install 'fastreq[dask]' "
                      f"(or: pip install 'dask[bag]' distributed); {_exc}") from _exc

from . import _ffi, _json
from ._params import RequestSettings, split_one_shot
from .client import FastRequests, _partial_failure
from .exceptions import ConfigurationError, FailureDetails, ForkedProcessError, ValidationError

# dask's functions are not all annotated: they are called through Any.
db: Any = _dask_bag
distributed: Any = _distributed

__all__ = ["fetch", "fetch_bag", "fetch_to", "connect", "FastreqWorkerPlugin", "worker_share", "DEFAULT_PARTITION_SIZE"]

DEFAULT_PARTITION_SIZE = 10_000
#: Limits given for the whole cluster and split between its workers.
SPLIT_COUNTS = ("concurrency", "rate_limit_burst", "concurrency_per_host", "rate_limit_per_host_burst")
SPLIT_RATES = ("rate_limit", "rate_limit_per_host")
#: Request parameters of fastreq() that mean nothing on a cluster.
_REFUSED = ("keys", "progress", "progress_callback")
_PART = re.compile(r"^part-(\d+)\.(jsonl|parquet)$")
_TMP = re.compile(r"^\.part-\d+\..*\.tmp$")
#: Seconds a worker reuses what the scheduler said about the worker set.
_VIEW_TTL = 1.0


# ---- the split of cluster-wide limits -----------------------------------------


def worker_share(client_kw: Dict[str, Any], rank: int, n_workers: int) -> Dict[str, Any]:
    """The client options of the worker of that rank (0-based, in the
    sorted worker addresses) among n_workers: each limit of
    :data:`SPLIT_COUNTS` given in client_kw split into integer shares that
    add up to it (at least 1 each, so a limit below n_workers gives n_workers
    in all), each of :data:`SPLIT_RATES` divided by n_workers."""
    n = max(1, n_workers)
    rank = min(max(rank, 0), n - 1)
    kw = dict(client_kw)
    for name in SPLIT_COUNTS:
        total = kw.get(name)
        if total is not None:
            kw[name] = max(1, total // n + (1 if rank < total % n else 0))
    for name in SPLIT_RATES:
        total = kw.get(name)
        if total:  # 0 (no limit) stays 0
            kw[name] = float(total) / n
    return kw


# ---- on the workers --------------------------------------------------------------


class FastreqWorkerPlugin(WorkerPlugin):
    """The engine clients of one worker process for one set of client
    options: one :class:`~fastreq.FastRequests` per share of the limits
    (normally one; a new one when the worker set changed, the old one
    closed once its last task ends), closed when the worker closes.

    Registered under a name derived from the options (``fastreq-<hash>``)
    with ``idempotent = True``: registering it again is a no-op.
    """

    idempotent = True

    def __init__(self, name: str, client_kw: Dict[str, Any]) -> None:
        self.name = name
        self.client_kw = client_kw
        self._setup_state()

    def _setup_state(self) -> None:
        self._lock = threading.Lock()
        self._clients: Dict[Tuple[Any, ...], List[Any]] = {}  # share -> [client, tasks using it]
        self._current: Optional[Tuple[Any, ...]] = None
        self._view: Optional[Tuple[float, int, int]] = None  # (when, rank, n)
        self._worker: Any = None

    def __getstate__(self) -> Dict[str, Any]:
        return {"name": self.name, "client_kw": self.client_kw}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.name = state["name"]
        self.client_kw = state["client_kw"]
        self._setup_state()

    def setup(self, worker: Any) -> None:
        self._worker = worker

    def teardown(self, worker: Any) -> None:
        with self._lock:
            clients = [entry[0] for entry in self._clients.values()]
            self._clients.clear()
            self._current = None
        for c in clients:
            c.close_sync()

    def view(self) -> Tuple[int, int]:
        """(rank, number of workers): this worker's place among the
        scheduler's workers, re-read at most every second."""
        now = time.monotonic()
        v = self._view
        if v is not None and now - v[0] < _VIEW_TTL:
            return v[1], v[2]
        worker = self._worker if self._worker is not None else distributed.get_worker()
        try:
            info = distributed.get_client().scheduler_info(n_workers=-1)
            addresses = sorted(info.get("workers", {}))
        except Exception:  # noqa: BLE001 - keep the last view (or assume alone)
            return (v[1], v[2]) if v is not None else (0, 1)
        me = worker.address
        if me not in addresses:
            addresses = sorted(addresses + [me])
        rank, n = addresses.index(me), len(addresses)
        self._view = (now, rank, n)
        return rank, n

    @contextmanager
    def client(self) -> Iterator[FastRequests]:
        """The engine client for this worker's share of the limits now."""
        rank, n = self.view()
        kw = worker_share(self.client_kw, rank, n)
        share = tuple(kw.get(k) for k in SPLIT_COUNTS + SPLIT_RATES)
        stale: List[FastRequests] = []
        with self._lock:
            if self._current != share:
                old = self._clients.get(self._current) if self._current is not None else None
                if old is not None and old[1] == 0:
                    del self._clients[self._current]  # type: ignore[arg-type]
                    stale.append(old[0])
                self._current = share
            entry = self._clients.get(share)
            if entry is None:
                entry = self._clients[share] = [FastRequests(**kw), 0]
            entry[1] += 1
        for c in stale:
            c.close_sync()
        try:
            yield entry[0]
        finally:
            with self._lock:
                entry[1] -= 1
                done = entry[1] == 0 and share != self._current and self._clients.get(share) is entry
                if done:
                    del self._clients[share]
            if done:
                entry[0].close_sync()


#: Plugins made in a worker that was not given one (a bag computed through
#: another client than the one that built it).
_LOCAL_PLUGINS: Dict[str, FastreqWorkerPlugin] = {}
_LOCAL_LOCK = threading.Lock()


def _plugin(name: str, client_kw: Dict[str, Any]) -> FastreqWorkerPlugin:
    if _ffi.forked():
        raise ForkedProcessError(
            "fastreq cannot run in a Dask worker forked from a process that loaded the engine: "
            "start workers with the 'spawn' method (dask config distributed.worker.multiprocessing-method, "
            "the default) or 'forkserver'")
    try:
        worker = distributed.get_worker()
    except ValueError:
        worker = None
    if worker is not None:
        plugin = worker.plugins.get(name)
        if isinstance(plugin, FastreqWorkerPlugin):
            return plugin
    with _LOCAL_LOCK:
        plugin = _LOCAL_PLUGINS.get(name)
        if plugin is None:
            plugin = _LOCAL_PLUGINS[name] = FastreqWorkerPlugin(name, client_kw)
            if worker is not None:
                plugin.setup(worker)
        return plugin


def _requests(items: Iterable[Any], lines: bool) -> Tuple[List[Any], List[int]]:
    """The requests of a partition and their positions in it: with lines
    (from a text file), blank lines and lines starting with # are skipped
    and a line starting with { is a JSON request spec."""
    if not lines:
        reqs = list(items)
        return reqs, list(range(len(reqs)))
    reqs, pos = [], []
    for k, raw in enumerate(items):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        reqs.append(_json.loads(line) if line.startswith("{") else line)
        pos.append(k)
    return reqs, pos


_BUFFER_REFUSED = ("return_type='buffer' views memory of the process that fetched; fastreq.dask's results "
                   "travel between processes: use 'content'")


def _no_views(results: List[Any]) -> List[Any]:
    """results, refused when a request spec asked for return_type "buffer"
    (a view cannot travel to another process)."""
    if any(type(r) is memoryview for r in results):
        raise ValidationError(_BUFFER_REFUSED, field_name="return_type")
    return results


def _fetch_part(items: Iterable[Any], name: str, client_kw: Dict[str, Any], call_kw: Dict[str, Any],
                lines: bool) -> Tuple[List[Any], Dict[int, FailureDetails]]:
    """One partition's results in order (None where a request failed) and
    its failures by position."""
    from .exceptions import PartialFailureError

    reqs, _ = _requests(items, lines)
    if not reqs:
        return [], {}
    with _plugin(name, client_kw).client() as c:
        try:
            return _no_views(list(c.request_sync(reqs, **call_kw))), {}
        except PartialFailureError as exc:
            results = _no_views(list(exc.results))
            for i in exc.failures_by_index:
                results[i] = None
            return results, dict(exc.failures_by_index)


def _fetch_part_listed(items: Iterable[Any], name: str, client_kw: Dict[str, Any], call_kw: Dict[str, Any],
                       lines: bool) -> List[Tuple[List[Any], Dict[int, FailureDetails]]]:
    return [_fetch_part(items, name, client_kw, call_kw, lines)]


def _bag_part(items: Iterable[Any], name: str, client_kw: Dict[str, Any], call_kw: Dict[str, Any],
              lines: bool) -> List[Any]:
    """One partition's results, as fastreq() gives them (a failure raises
    PartialFailureError unless return_none_on_failure)."""
    reqs, _ = _requests(items, lines)
    if not reqs:
        return []
    with _plugin(name, client_kw).client() as c:
        return _no_views(list(c.request_sync(reqs, **call_kw)))


def _count_part(items: Iterable[Any]) -> List[int]:
    return [sum(1 for _ in items)]


def part_name(index: int, fmt: str) -> str:
    """The file name of partition index: part-00042.jsonl."""
    return f"part-{index:05d}.{fmt}"


def _write_part(items: Iterable[Any], index: int, offset: int, path: str, fmt: str, body: str, headers: bool,
                name: str, client_kw: Dict[str, Any], call_kw: Dict[str, Any]) -> Dict[str, Any]:
    """Run one partition and write its records to path/part-<index>: first
    to a temporary file, renamed over the part file when complete, so a
    rerun of the partition replaces it. Returns the partition's counts."""
    from .cli import JsonlOutput, ParquetOutput, Stats, make_record_builder

    stats = Stats()
    tmp = os.path.join(path, f".{part_name(index, fmt)}.{uuid.uuid4().hex}.tmp")
    final = os.path.join(path, part_name(index, fmt))
    out: Any = ParquetOutput(tmp, body, headers) if fmt == "parquet" else JsonlOutput(tmp, append=False)
    if fmt == "jsonl":
        out.schedule = lambda flush: None  # written 1,024 records at a time, and at close
    try:
        build = make_record_builder(body, headers, stats)
        indices: List[int] = []
        requests: List[Any] = []
        ids: List[Any] = []
        for k, item in enumerate(items):
            i = offset + k
            try:
                req, ident = _record_request(item)
            except _Skip:
                continue
            except _BadItem as exc:
                _bad(out, stats, i, f"input {i}: {exc}")
                continue
            indices.append(i)
            requests.append(req)
            ids.append(ident)
        if requests:
            with _plugin(name, client_kw).client() as c:
                _run_records(c, indices, requests, ids, call_kw, build, out.write, lambda i, m: _bad(out, stats, i, m))
        out.close()
        out = None
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    finally:
        if out is not None:
            try:
                out.close()
            finally:
                _remove(tmp)
    return {"partition": index, "requests": stats.done + stats.bad, "failed": stats.failed, "bad": stats.bad,
            "by_status": stats.by_status, "by_kind": stats.by_kind, "bytes": stats.bytes}


def _write_part_bag(items: Iterable[Any], meta: List[Tuple[int, int]], *args: Any) -> List[Dict[str, Any]]:
    (index, offset), = meta
    return [_write_part(items, index, offset, *args)]


class _Skip(Exception):
    pass


class _BadItem(Exception):
    pass


def _record_request(item: Any) -> Tuple[Any, Any]:
    """(request, id) of an input item, as ``fastreq fetch`` reads a line:
    a URL, or a spec (a dict, or a line starting with {) whose "id" is
    echoed in its record; a blank line or one starting with # is skipped."""
    from .cli import BadLine, parse_line

    if isinstance(item, (str, bytes)):
        line = item.strip()
        if not line:
            raise _Skip
        if isinstance(line, str):
            line = line.encode("utf-8")
        if line.startswith(b"#"):
            raise _Skip
        try:
            return parse_line(line)
        except BadLine as exc:
            raise _BadItem(str(exc)) from None
    if isinstance(item, dict) and "id" in item:
        spec = dict(item)
        return spec, spec.pop("id")
    return item, None


def _bad(out: Any, stats: Any, index: int, message: str) -> None:
    from .cli import bad_line_record

    stats.bad += 1
    out.write(bad_line_record(index, message))


def _run_records(c: FastRequests, indices: List[int], requests: List[Any], ids: List[Any], call_kw: Dict[str, Any],
                 build: Callable[..., Dict[str, Any]], write: Callable[[Dict[str, Any]], None],
                 bad: Callable[[int, str], None]) -> None:
    """Run requests and write a record for each as it completes. A batch
    the package refuses as a whole (an invalid request) is split in halves
    until the bad requests are alone; those are recorded as bad input."""
    from .cli import _REQUEST_PREFIX

    try:
        it = c.as_completed_sync(requests, return_type="response", **call_kw)
    except (ValidationError, ConfigurationError) as exc:
        if len(requests) == 1:
            bad(indices[0], f"input {indices[0]}: {_REQUEST_PREFIX.sub('', str(exc))}")
            return
        half = len(requests) // 2
        for lo, hi in ((0, half), (half, len(requests))):
            _run_records(c, indices[lo:hi], requests[lo:hi], ids[lo:hi], call_kw, build, write, bad)
        return
    with it:
        for done in it:
            k = done.index
            write(build(indices[k], done, ids[k]))


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


# ---- on the client ----------------------------------------------------------------


def _split_options(options: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """fastreq()'s keyword arguments as client and call options, checked
    here (without loading the engine) so that a bad one fails before any
    task runs."""
    for name in _REFUSED:
        if options.get(name) is not None:
            raise ValidationError(f"fastreq.dask does not take {name}=", field_name=name)
    client_kw, call_kw = split_one_shot(options)
    rt = call_kw.get("return_type")
    if isinstance(rt, str) and rt.lower() == "buffer":
        raise ValidationError(_BUFFER_REFUSED, field_name="return_type")
    FastRequests(**client_kw)  # checks every client setting; starts nothing
    RequestSettings(**call_kw)
    return client_kw, call_kw


@contextmanager
def connect(address: str) -> Iterator[Any]:
    """A :class:`distributed.Client` of the scheduler at address, closed at
    the end; "local" starts a LocalCluster of worker processes (one thread
    each, as many as cores) for the duration."""
    if address == "local":
        with distributed.LocalCluster(processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
            with distributed.Client(cluster) as client:
                yield client
    else:
        with distributed.Client(address, timeout="30s") as client:
            yield client


def _plugin_name(client_kw: Dict[str, Any]) -> str:
    text = _json.dumps({k: repr(v) for k, v in sorted(client_kw.items())})
    return "fastreq-" + hashlib.sha256(text).hexdigest()[:16]


def _dask_client(client: Any) -> Any:
    if client is not None:
        return client
    try:
        return distributed.get_client()
    except ValueError:
        raise ValueError("fastreq.dask needs a Dask distributed client: create one (distributed.Client(address) "
                         "or Client(LocalCluster())) or pass client=") from None


def _register(client: Any, client_kw: Dict[str, Any]) -> str:
    name = _plugin_name(client_kw)
    client.register_plugin(FastreqWorkerPlugin(name, client_kw), name=name)
    return name


def _is_path(urls: Any) -> bool:
    if isinstance(urls, os.PathLike):
        return True
    if isinstance(urls, str):
        if urls[:8].lower().startswith(("http://", "https://")):
            raise ValidationError("fastreq.dask takes many requests (a list, an iterable, a file path or a bag), "
                                  "not one URL: use fastreq() for one", field_name="urls")
        return True
    return False


def _file_bag(path: Any, partition_size: int) -> Any:
    """The lines of a text file (or glob) as a bag of about partition_size
    lines per partition (the block size from the first lines' length)."""
    path = os.fspath(path)
    first = sorted(glob.glob(path))[:1] if glob.has_magic(path) else [path]
    if first and os.path.isfile(first[0]):
        with open(first[0], "rb") as fh:
            sample = fh.read(1 << 16)
        nl = sample.count(b"\n")
        per_line = len(sample) / nl if nl else max(len(sample), 64)
    else:
        per_line = 64.0  # a remote or not yet visible file: read_text will tell
    blocksize = max(int(per_line * partition_size), 1 << 12)
    return db.read_text(path, blocksize=blocksize)


def _chunks(urls: Iterable[Any], size: int) -> Iterator[List[Any]]:
    if isinstance(urls, (list, tuple)):
        for lo in range(0, len(urls), size):
            yield list(urls[lo:lo + size])
        return
    it = iter(urls)
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        yield chunk


def _window(client: Any) -> int:
    """Partitions submitted ahead: twice the cluster's threads (at least 4)."""
    try:
        workers = client.scheduler_info(n_workers=-1).get("workers", {})
        threads = sum(int(w.get("nthreads", 1)) for w in workers.values())
    except Exception:  # noqa: BLE001
        threads = 2
    return max(4, 2 * threads)


def _check_partition_size(partition_size: int) -> int:
    if isinstance(partition_size, bool) or not isinstance(partition_size, int) or partition_size < 1:
        raise ValidationError(f"partition_size must be an int >= 1, got {partition_size!r}",
                              field_name="partition_size")
    return partition_size


def fetch(urls: Any, *, client: Any = None, partition_size: int = DEFAULT_PARTITION_SIZE, **options: Any) -> List[Any]:
    """Run every request on the cluster and return the results in input
    order, as ``fastreq(urls, **options)`` does for a list.

    Args:
        urls: a list or iterable of URLs or request specs, a text file path
            or glob (one URL or JSON spec per line; blank and # lines
            skipped), or a dask bag of URLs or specs.
        client: the :class:`distributed.Client`; default: the current one.
        partition_size: requests per task.
        **options: fastreq()'s keyword arguments (but keys, progress and
            progress_callback); the limits are for the whole cluster (see
            the module documentation).

    Raises:
        PartialFailureError: after every request finished, when some failed
            (unless return_none_on_failure), as fastreq() does, with the
            results of all requests and the failures by input index.
    """
    _check_partition_size(partition_size)
    client_kw, call_kw = _split_options(options)
    dc = _dask_client(client)
    name = _register(dc, client_kw)
    parts: Iterable[Tuple[List[Any], Dict[int, FailureDetails]]]
    if _is_path(urls) or isinstance(urls, db.Bag):
        lines = not isinstance(urls, db.Bag)
        bag = _file_bag(urls, partition_size) if lines else urls
        parts = dc.compute(bag.map_partitions(_fetch_part_listed, name, client_kw, call_kw, lines)).result()
    else:
        job = uuid.uuid4().hex[:12]
        parts = _in_order(dc, (
            (f"fastreq-fetch-{job}-{i}", _fetch_part, (chunk, name, client_kw, call_kw, False))
            for i, chunk in enumerate(_chunks(urls, partition_size))))
    results: List[Any] = []
    failures: Dict[int, FailureDetails] = {}
    for part_results, part_failures in parts:
        offset = len(results)
        for i, fd in part_failures.items():
            fd.index = offset + i
            failures[offset + i] = fd
        results.extend(part_results)
    if failures and not client_kw.get("return_none_on_failure"):
        for i, fd in failures.items():
            results[i] = fd.error
        raise _partial_failure(failures, results, len(results))
    return results


def _in_order(dc: Any, tasks: Iterator[Tuple[str, Callable[..., Any], Tuple[Any, ...]]]) -> Iterator[Any]:
    """Submit tasks (key, function, args) a window ahead of the results,
    which come back in submission order."""
    window = _window(dc)
    pending: Deque[Any] = deque()
    try:
        for key, fn, args in tasks:
            pending.append(dc.submit(fn, *args, key=key, pure=False))
            while len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        if pending:
            dc.cancel(list(pending))


def fetch_bag(bag: Any, *, client: Any = None, partition_size: int = DEFAULT_PARTITION_SIZE,
              **options: Any) -> Any:
    """A lazy :class:`dask.bag.Bag` of the results of the requests of bag,
    partition by partition, for pipelines (``.map``, ``.filter``,
    ``.to_dataframe()``...).

    bag may also be a list, a file path or glob (as :func:`fetch`; a list is
    partitioned by partition_size). A partition with a failed request fails
    its task with PartialFailureError unless ``return_none_on_failure=True``
    (then the failed result is None). The worker plugin is registered with
    client (default: the current client): compute the bag on that cluster.
    """
    _check_partition_size(partition_size)
    client_kw, call_kw = _split_options(options)
    name = _register(_dask_client(client), client_kw)
    lines = False
    if _is_path(bag):
        bag, lines = _file_bag(bag, partition_size), True
    elif not isinstance(bag, db.Bag):
        bag = db.from_sequence(list(bag), partition_size=partition_size)
    return bag.map_partitions(_bag_part, name, client_kw, call_kw, lines)


def fetch_to(urls: Any, path: Any, format: str = "jsonl", *, client: Any = None,
             partition_size: int = DEFAULT_PARTITION_SIZE, body: str = "text", headers: bool = True,
             **options: Any) -> Dict[str, Any]:
    """Run every request on the cluster; each worker writes the records of
    its partitions into the directory path, one part file per partition
    (``part-00000.jsonl`` or ``.parquet``), and nothing but counts comes
    back to the client.

    A record is that of ``fastreq fetch`` (index, error, url, final_url,
    status, http_version, headers, elapsed, attempts, size, body, id);
    index is the request's position in the input (its 0-based line for a
    file, blank lines included), and an input item that is not a request
    gets a record with error kind "input". A part file is written to a
    temporary file and renamed when complete: a partition rerun after its
    worker died replaces its file, so the directory holds every request
    exactly once. Part files and temporary files a previous job left in
    path are removed first. The directory must be one every worker can
    write (a shared file system for a cluster of several machines).

    Args:
        urls: as :func:`fetch`. A bag or file is read twice by the workers:
            once to count each partition's items (for the indices).
        path: the output directory (created).
        format: "jsonl" or "parquet" (needs pyarrow on the workers).
        body: "text", "json", "base64" or "none": how bodies are recorded.
        headers: record the response headers.
        **options: fastreq()'s keyword arguments (cluster-wide limits).

    Returns:
        A summary: ``requests``, ``answered``, ``failed``, ``bad_input``,
        ``by_status``, ``by_kind``, ``bytes``, ``elapsed`` (s), ``parts``
        and ``path``.
    """
    started = time.monotonic()
    if format not in ("jsonl", "parquet"):
        raise ValidationError(f"format must be 'jsonl' or 'parquet', got {format!r}", field_name="format")
    if body not in ("text", "json", "base64", "none"):
        raise ValidationError(f"body must be 'text', 'json', 'base64' or 'none', got {body!r}", field_name="body")
    _check_partition_size(partition_size)
    client_kw, call_kw = _split_options(options)
    for k in ("return_type", "save_to", "parse_func", "stream_callback"):
        if call_kw.pop(k, None) is not None:
            raise ValidationError(f"fetch_to records responses itself: {k}= is not taken", field_name=k)
    out_dir = os.path.abspath(os.fspath(path))
    os.makedirs(out_dir, exist_ok=True)
    _clear(out_dir)
    dc = _dask_client(client)
    name = _register(dc, client_kw)
    args = (out_dir, format, body, bool(headers), name, client_kw, call_kw)
    if _is_path(urls) or isinstance(urls, db.Bag):
        bag = urls if isinstance(urls, db.Bag) else _file_bag(urls, partition_size)
        counts = dc.compute(bag.map_partitions(_count_part)).result()
        offsets = list(itertools.accumulate([0] + list(counts)))[:-1]
        meta = db.from_sequence(list(enumerate(offsets)), partition_size=1)
        assert meta.npartitions == bag.npartitions, (meta.npartitions, bag.npartitions)
        stats = dc.compute(db.map_partitions(_write_part_bag, bag, meta, *args)).result()
    else:
        stats = list(_any_order(dc, urls, partition_size, args))
    summary = _summarize(stats, time.monotonic() - started)
    summary["path"] = out_dir
    _clear(out_dir, parts=False)  # temporary files of killed tasks
    return summary


def _any_order(dc: Any, urls: Iterable[Any], partition_size: int, args: Tuple[Any, ...]) -> Iterator[Any]:
    """Submit a partition per chunk of urls, a window ahead of the finished
    ones; their counts in completion order."""
    window = _window(dc)
    job = uuid.uuid4().hex[:12]
    pending: Any = distributed.as_completed()
    n = 0
    try:
        offset = 0
        for i, chunk in enumerate(_chunks(urls, partition_size)):
            pending.add(dc.submit(_write_part, chunk, i, offset, *args, key=f"fastreq-fetch-to-{job}-{i}",
                                  pure=False))
            offset += len(chunk)
            n += 1
            while pending.count() >= window:
                yield next(pending).result()
        for fut in pending:
            yield fut.result()
    finally:
        rest = list(pending.futures)
        if rest:
            dc.cancel(rest)


def _clear(out_dir: str, parts: bool = True) -> None:
    """Remove the part files (when parts) and the temporary files of
    fetch_to from out_dir."""
    for entry in os.listdir(out_dir):
        if (parts and _PART.match(entry)) or _TMP.match(entry):
            _remove(os.path.join(out_dir, entry))


def _summarize(parts: Iterable[Dict[str, Any]], elapsed: float) -> Dict[str, Any]:
    total = failed = bad = nbytes = count = 0
    by_status: Dict[int, int] = {}
    by_kind: Dict[str, int] = {}
    for p in parts:
        count += 1
        total += p["requests"]
        failed += p["failed"]
        bad += p["bad"]
        nbytes += p["bytes"]
        for s, n in p["by_status"].items():
            by_status[s] = by_status.get(s, 0) + n
        for k, n in p["by_kind"].items():
            by_kind[k] = by_kind.get(k, 0) + n
    return {"requests": total, "answered": total - failed - bad, "failed": failed, "bad_input": bad,
            "by_status": dict(sorted(by_status.items())), "by_kind": by_kind, "bytes": nbytes,
            "elapsed": elapsed, "parts": count}
