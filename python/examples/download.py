"""Downloads straight to files: bodies never sit in memory.

    python download.py http://127.0.0.1:8080 [directory]
"""

import tempfile
from pathlib import Path

from _base import arg, base_url

from fastreq import fastreq


def main() -> None:
    base = base_url()
    out = Path(arg(2, "FASTREQ_EXAMPLE_DIR") or tempfile.mkdtemp(prefix="fastreq-download-"))
    out.mkdir(parents=True, exist_ok=True)
    sizes = [100_000, 2_000_000, 5_000_000]
    urls = [f"{base}/x/bytes/{n}" for n in sizes]

    # One path per URL (a function (index, url) -> path works too).
    paths = fastreq(urls, save_to=[out / f"file{i}.bin" for i in range(len(urls))], concurrency=3)
    for p in paths:
        print(p.name, p.stat().st_size)

    # max_body_size limits bodies kept in memory, not downloads.
    big = fastreq(urls[-1], save_to=out / "big.bin", max_body_size=1_000_000)
    print("big:", big.stat().st_size)


if __name__ == "__main__":
    main()
