"""Streaming: chunks reach a callback as they arrive.

    python streaming.py http://127.0.0.1:8080
"""

import time

from _base import base_url

from fastreq import fastreq


def main() -> None:
    base = base_url()
    started = time.monotonic()
    arrivals = []

    def on_chunk(chunk: bytes) -> None:
        arrivals.append((round(time.monotonic() - started, 2), len(chunk)))

    fastreq(f"{base}/x/slow-chunks?n=5&size=64&interval_ms=100", return_type="stream", stream_callback=on_chunk)
    print("chunks:", len(arrivals), "bytes:", sum(n for _, n in arrivals))
    print("first at", arrivals[0][0], "s, last at", arrivals[-1][0], "s")

    # Several streams at once, each with its own callback.
    sizes = {"a": 0, "b": 0}

    def counter(name):
        def cb(chunk):
            sizes[name] += len(chunk)
        return cb

    fastreq([{"url": f"{base}/x/bytes/100000", "stream_callback": counter("a")},
             {"url": f"{base}/x/bytes/50000", "stream_callback": counter("b")}], return_type="stream")
    print("streamed:", sizes)


if __name__ == "__main__":
    main()
