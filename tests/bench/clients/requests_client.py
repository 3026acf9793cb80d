"""requests peer: a ThreadPoolExecutor of `concurrency` threads, one Session
per thread (a Session is not thread-safe); resp.json() / resp.content.
HTTP/1.1 only, no rate limit of its own."""

import importlib.metadata
import threading
import warnings

import requests

import _common as c

warnings.simplefilter("ignore")


def main() -> None:
    args = c.parse_args()
    if args.proto != "h1":
        c.unsupported("requests speaks HTTP/1.1 only")
    if args.mode == "rate":
        c.unsupported("requests has no rate limit of its own")
    version = importlib.metadata.version("requests") + " (urllib3 " + importlib.metadata.version("urllib3") + ")"
    bytes_mode = args.mode == "bytes"
    local = threading.local()
    sessions: list[requests.Session] = []
    lock = threading.Lock()

    def session() -> requests.Session:
        s = getattr(local, "s", None)
        if s is None:
            s = local.s = requests.Session()
            s.verify = False
            with lock:
                sessions.append(s)
        return s

    def fetch():
        r = session().get(args.url)
        c.check_status(r.status_code)
        return r.content if bytes_mode else r.json()

    if args.mode == "serial":
        c.run_serial("requests", version, args, fetch)
    else:
        c.run_sync("requests", version, args, lambda: c.thread_pool(args.n, args.concurrency, fetch))
    for s in sessions:
        s.close()


if __name__ == "__main__":
    main()
