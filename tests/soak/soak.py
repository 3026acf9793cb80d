#!/usr/bin/env python3
"""Soak: long and hostile runs of the engine, with bounds.

    make soak                       # or: python3 tests/soak/soak.py [a b c d e]

Uses the library in $FASTREQ_LIBRARY (default build/libfastreq.so) and the
test server in $FASTREQ_TESTSERVER (default build/fastreq-testserver); it
builds nothing. The test server runs once for all scenarios; each scenario
runs in its own interpreter (so peak RSS and descriptor counts are its
own), prints one line of figures and PASS or FAIL with the broken bounds.
The exit status is 1 when a bound is broken or a scenario crashed.

  a  steady: 1,000,000 requests in calls of 100,000 to /x/json; RSS after
     each call. Bound: RSS after the last call within 50 MB of after the first.
  b  many hosts: 50,000 requests over 5,000 hosts (127.0.X.Y) at
     concurrency 256 under a descriptor limit of 1024. Bounds: no failure,
     peak descriptors <= 256 + 64 over the baseline.
  c  retry storm: 50,000 GETs to a closed port at concurrency 64, with
     max_retries=2 and 0, circuit breaker off (threshold 0) and default.
     Bound: the retry run's peak RSS within 100 MB of the no-retry run's.
  d  bombs: a gzip body of 10 GiB decoded at the default max_body_size
     (1 GiB), one and three at once. Bounds: peak RSS growth <= 1.25 x 1 GiB
     x bodies + 100 MB; RSS 5 s later within 100 MB of the start.
  e  Ctrl-C: 1,000,000 requests queued to a stalling endpoint, SIGINT.
     Bound: KeyboardInterrupt caught < 0.2 s after the signal.

Only loopback addresses are used. Figures are in MB (10^6 bytes).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

REPO = Path(__file__).resolve().parents[2]
MB = 1_000_000
GiB = 1 << 30


# ---- measuring (in the children) ---------------------------------------------------------


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def rss() -> int:
    return _status("VmRSS")


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def reset_hwm() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


class Sampler:
    """Samples RSS (and descriptors) in a thread; past kill_rss it prints a
    result saying so and exits, so a broken bound cannot eat the machine."""

    def __init__(self, kill_rss: int, interval: float = 0.005, count_fds: bool = False) -> None:
        self.kill_rss = kill_rss
        self.interval = interval
        self.count_fds = count_fds
        self.peak_rss = rss()
        self.peak_fds = fds()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            r = rss()
            self.peak_rss = max(self.peak_rss, r)
            if self.count_fds:
                self.peak_fds = max(self.peak_fds, fds())
            if r > self.kill_rss:
                emit({"killed_at_rss": r})
                os._exit(3)
            time.sleep(self.interval)

    def close(self) -> None:
        self._stop.set()
        self._t.join()
        self.peak_rss = max(self.peak_rss, _status("VmHWM"))


def emit(d: Dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(d) + "\n")
    sys.stdout.flush()


def root_error(e: BaseException) -> BaseException:
    last = getattr(e, "last_error", None)
    return last if getattr(e, "kind", None) == "retries_exhausted" and last is not None else e


def warm(url: str) -> None:
    import fastreq

    fastreq.fastreq(url, return_type="content", verbose=False)


# ---- scenarios (children) ------------------------------------------------------------------


def child_a(info: Dict[str, Any], _: str) -> Dict[str, Any]:
    import gc

    import fastreq

    url = info["http_url"] + "/x/json"
    warm(url)
    after: List[int] = []
    t0 = time.monotonic()
    for _call in range(10):
        res = fastreq.fastreq([url] * 100_000, concurrency=64, return_type="content", verbose=False,
                              return_none_on_failure=True)
        failures = sum(r is None for r in res)
        del res
        gc.collect()
        after.append(rss())
        if failures:
            return {"rss_after": after, "failures": failures, "wall": time.monotonic() - t0}
    return {"rss_after": after, "failures": 0, "wall": time.monotonic() - t0}


def many_hosts(n: int) -> List[str]:
    return [f"127.0.{1 + k // 250}.{1 + k % 250}" for k in range(n)]


def child_b(info: Dict[str, Any], _: str) -> Dict[str, Any]:
    import resource

    from fastreq import FastRequests

    # As `ulimit -n 1024`: soft and hard, since the Go runtime raises the
    # soft limit to the hard one when the library loads.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lim = min(1024, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lim, lim))
    port = info["many_hosts_port"]
    hosts = many_hosts(5000)
    urls = [f"http://{hosts[i % 5000]}:{port}/x/json" for i in range(50_000)]
    warm(f"http://127.0.0.1:{port}/x/json")
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    time.sleep(0.2)
    base = fds()
    s = Sampler(rss() + 4 * GiB, interval=0.005, count_fds=True)
    failures, kinds, first = 0, {}, None
    t0 = time.monotonic()
    done = 0
    with FastRequests(concurrency=256, max_retries=0, return_none_on_failure=True, verbose=False) as c:
        with c.as_completed_sync(urls, return_type="content") as it:
            for d in it:
                done += 1
                if d.error is not None:
                    failures += 1
                    e = root_error(d.error)
                    kinds[e.kind] = kinds.get(e.kind, 0) + 1
                    first = first or str(e)[:160]
                if time.monotonic() - t0 > 240:
                    break
    wall = time.monotonic() - t0
    after = fds()
    s.close()
    time.sleep(1)
    return {"done": done, "failures": failures, "kinds": kinds, "first_error": first, "nofile": nofile,
            "base_fds": base,
            "peak_fds": s.peak_fds, "fds_after": after, "fds_after_1s": fds(), "wall": wall}


def child_c(info: Dict[str, Any], variant: str) -> Dict[str, Any]:
    from fastreq import FastRequests

    retries, cb = variant.split(":")
    closed = info["closed_url"]
    urls = [f"{closed}/get?i={i}" for i in range(50_000)]
    kw: Dict[str, Any] = dict(concurrency=64, max_retries=int(retries), return_none_on_failure=True,
                              verbose=False)
    supported = True
    if cb == "off":
        kw["circuit_breaker_threshold"] = 0
        try:
            FastRequests(**kw)
        except TypeError:
            supported = False  # this build has no circuit breaker: off is all it does
            del kw["circuit_breaker_threshold"]
    warm(info["http_url"] + "/x/json")
    time.sleep(0.2)
    reset_hwm()
    base = rss()
    s = Sampler(base + 4 * GiB)
    done = circuit = 0
    t0 = time.monotonic()
    with FastRequests(**kw) as c:
        with c.as_completed_sync(urls) as it:
            for d in it:
                done += 1
                if d.error is not None:
                    e = root_error(d.error)
                    if e.kind == "connect" and "circuit" in str(e).lower():
                        circuit += 1
                if time.monotonic() - t0 > 150:
                    break
    wall = time.monotonic() - t0
    s.close()
    return {"done": done, "circuit": circuit, "peak_rss": s.peak_rss, "base_rss": base, "wall": wall,
            "cb_option": supported}


def child_d(info: Dict[str, Any], variant: str) -> Dict[str, Any]:
    import fastreq

    k = int(variant)
    urls = [f"{info['http_url']}/x/bomb/gzip?size={10 * GiB}&i={i}" for i in range(k)]
    warm(info["http_url"] + "/x/json")
    time.sleep(0.2)
    reset_hwm()
    base = rss()
    s = Sampler(base + int(2.5 * GiB * k + GiB))
    t0 = time.monotonic()
    kinds: Dict[str, int] = {}
    try:
        res = fastreq.fastreq(urls, return_type="content", verbose=False)
        ok = len(res)
        del res
    except fastreq.PartialFailureError as e:
        ok = e.successes
        for fd in e.failures_by_index.values():
            kinds[str(fd.error.kind)] = kinds.get(str(fd.error.kind), 0) + 1
        e.results = []
    wall = time.monotonic() - t0
    s.close()
    time.sleep(5)
    return {"bodies": k, "ok": ok, "kinds": kinds, "growth": s.peak_rss - base, "after_5s": rss() - base,
            "wall": wall}


def child_e(info: Dict[str, Any], _: str) -> Dict[str, Any]:
    import fastreq

    urls = [f"{info['http_url']}/x/stall?seconds=600&i={i}" for i in range(1_000_000)]
    warm(info["http_url"] + "/x/json")
    sent: Dict[str, float] = {}

    def interrupt() -> None:
        # Wait until the batch is in the engine (client + batch handles),
        # let requests pile up a moment, then signal the main thread.
        deadline = time.monotonic() + 60
        while fastreq.engine.live_handles() < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(1.0)
        sent["t"] = time.monotonic()
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(30)
        emit({"error": "no KeyboardInterrupt 30 s after SIGINT"})
        os._exit(4)

    threading.Thread(target=interrupt, daemon=True).start()
    t0 = time.monotonic()
    try:
        fastreq.fastreq(urls, concurrency=64, max_retries=0, verbose=False)
        return {"error": "the call returned"}
    except KeyboardInterrupt:
        caught = time.monotonic()
    return {"latency": caught - sent["t"], "queued_for": sent["t"] - t0}


CHILDREN: Dict[str, Callable[[Dict[str, Any], str], Dict[str, Any]]] = {
    "a": child_a, "b": child_b, "c": child_c, "d": child_d, "e": child_e,
}


# ---- the parent ------------------------------------------------------------------------------


class Server:
    def __init__(self, exe: str) -> None:
        self.proc = subprocess.Popen([exe, "-exit-on-stdin-close"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.proc.kill()
            raise SystemExit("soak: the test server did not start")
        self.info = json.loads(line)

    def close(self) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(15)
        except Exception:
            self.proc.kill()
            self.proc.wait()


def run_child(name: str, variant: str, info: Dict[str, Any], env: Dict[str, str],
              timeout: float) -> Dict[str, Any]:
    try:
        p = subprocess.run([sys.executable, __file__, "--child", name, variant], input=json.dumps(info),
                           env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        tail = " | ".join(p.stderr.strip().splitlines()[-3:])
        return {"error": f"exit {p.returncode}: {tail}"}
    return json.loads(lines[-1])


def mb(n: float) -> str:
    return f"{n / MB:.0f}"


def report_a(r: Dict[str, Any]) -> List[str]:
    after = r["rss_after"]
    drift = after[-1] - after[0]
    print(f"a steady 10x100k: RSS after each call MB [{' '.join(mb(x) for x in after)}], "
          f"last-first {drift / MB:+.0f} MB (bound 50), failures {r['failures']}, wall {r['wall']:.1f} s", end="")
    broken = []
    if len(after) < 10 or r["failures"]:
        broken.append(f"{r['failures']} failures")
    if drift > 50 * MB:
        broken.append(f"RSS grew {drift / MB:.0f} MB > 50")
    return broken


def report_b(r: Dict[str, Any]) -> List[str]:
    over = r["peak_fds"] - r["base_fds"]
    print(f"b many-hosts 50k/5000 hosts c256 nofile {r['nofile']}: failures {r['failures']} of {r['done']} "
          f"{r['kinds'] or ''}, peak fds +{over} over baseline {r['base_fds']} (bound 320), "
          f"fds after +{r['fds_after'] - r['base_fds']} (+{r['fds_after_1s'] - r['base_fds']} 1 s later), "
          f"wall {r['wall']:.1f} s" + (f", first error: {r['first_error']}" if r["first_error"] else ""), end="")
    broken = []
    if r["failures"] or r["done"] < 50_000:
        broken.append(f"{r['failures']} failures, {r['done']} done")
    if over > 256 + 64:
        broken.append(f"peak fds +{over} > 320")
    return broken


def report_c(rs: Dict[str, Dict[str, Any]]) -> List[str]:
    parts, broken = [], []
    for v, r in rs.items():
        retries, cb = v.split(":")
        label = f"retries={retries} cb={'off' if cb == 'off' else 'default'}"
        if "error" in r:
            parts.append(f"{label}: {r['error']}")
            broken.append(f"{label}: {r['error']}")
            continue
        note = "" if r["cb_option"] else " (no cb option: ran without)"
        parts.append(f"{label}: peak RSS {mb(r['peak_rss'])} MB (+{mb(r['peak_rss'] - r['base_rss'])}), "
                     f"wall {r['wall']:.1f} s, circuit {r['circuit']}, done {r['done']}{note}")
        if r["done"] < 50_000:
            broken.append(f"{label}: only {r['done']} done")
    for cb in ("off", "default"):
        a, b = rs.get(f"2:{cb}", {}), rs.get(f"0:{cb}", {})
        if "peak_rss" in a and "peak_rss" in b and a["peak_rss"] - b["peak_rss"] > 100 * MB:
            broken.append(f"cb={cb}: retry peak RSS {(a['peak_rss'] - b['peak_rss']) / MB:.0f} MB over no-retry > 100")
    print("c retry storm 50k closed port c64: " + "; ".join(parts), end="")
    return broken


def report_d(rs: Dict[str, Dict[str, Any]]) -> List[str]:
    parts, broken = [], []
    for v, r in rs.items():
        if "error" in r:
            parts.append(f"{v} bomb(s): {r['error']}")
            broken.append(f"{v} bomb(s): {r['error']}")
            continue
        k = r["bodies"]
        bound = 1.25 * GiB * k + 100 * MB
        parts.append(f"{k} at once: peak growth {mb(r['growth'])} MB (bound {mb(bound)}), "
                     f"5 s later +{mb(r['after_5s'])} MB (bound 100), errors {r['kinds']}, wall {r['wall']:.1f} s")
        if r["growth"] > bound:
            broken.append(f"{k}: peak growth {mb(r['growth'])} MB > {mb(bound)}")
        if r["after_5s"] > 100 * MB:
            broken.append(f"{k}: +{mb(r['after_5s'])} MB 5 s later > 100")
        if r["ok"] or sum(r["kinds"].values()) != k:
            broken.append(f"{k}: {r['ok']} bombs succeeded")
    print("d gzip bombs 10 GiB, max_body_size 1 GiB: " + "; ".join(parts), end="")
    return broken


def report_e(r: Dict[str, Any]) -> List[str]:
    print(f"e Ctrl-C with 1M queued to /x/stall: SIGINT -> KeyboardInterrupt {r['latency'] * 1000:.0f} ms "
          f"(bound 200), signalled {r['queued_for']:.1f} s after the call started", end="")
    return [f"latency {r['latency'] * 1000:.0f} ms > 200"] if r["latency"] >= 0.2 else []


def killed(r: Dict[str, Any]) -> Dict[str, Any]:
    if "killed_at_rss" in r:
        return {"error": f"killed at RSS {mb(r['killed_at_rss'])} MB (bound far exceeded)"}
    return r


def main(argv: List[str]) -> int:
    if len(argv) >= 2 and argv[0] == "--child":
        info = json.loads(sys.stdin.read())
        emit(CHILDREN[argv[1]](info, argv[2] if len(argv) > 2 else ""))
        return 0

    lib = Path(os.environ.get("FASTREQ_LIBRARY") or REPO / "build" / "libfastreq.so").resolve()
    exe = Path(os.environ.get("FASTREQ_TESTSERVER") or REPO / "build" / "fastreq-testserver").resolve()
    for p in (lib, exe):
        if not p.exists():
            print(f"soak: {p} is missing (make lib build/fastreq-testserver)", file=sys.stderr)
            return 2
    want = argv or list(CHILDREN)
    unknown = [w for w in want if w not in CHILDREN]
    if unknown:
        print(f"soak: unknown scenario(s) {unknown}; choose from {list(CHILDREN)}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env["FASTREQ_LIBRARY"] = str(lib)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "python"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    server = Server(str(exe))
    print(f"soak: {lib}, test server {exe}", flush=True)
    failed = False
    started = time.monotonic()
    try:
        for name in want:
            t0 = time.monotonic()
            if name == "c":
                rs = {v: killed(run_child("c", v, server.info, env, 180))
                      for v in ("2:off", "2:default", "0:off", "0:default")}
                broken = report_c(rs)
            elif name == "d":
                rs = {v: killed(run_child("d", v, server.info, env, 180)) for v in ("1", "3")}
                broken = report_d(rs)
            else:
                r = killed(run_child(name, "", server.info, env, 300))
                if "error" in r:
                    print(f"{name}: {r['error']}", end="")
                    broken = [r["error"]]
                else:
                    broken = {"a": report_a, "b": report_b, "e": report_e}[name](r)
            verdict = "PASS" if not broken else "FAIL (" + "; ".join(broken) + ")"
            print(f" [{time.monotonic() - t0:.0f} s] {verdict}", flush=True)
            failed = failed or bool(broken)
    finally:
        server.close()
    print(f"soak: {'FAIL' if failed else 'PASS'} in {time.monotonic() - started:.0f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
