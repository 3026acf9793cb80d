"""Our command line, `fastreq fetch URLS -o OUT.jsonl` (mode jsonl only),
run in this process through fastreq.cli.main so that its work is timed
like every other client's: the file of URLs is written before the clock
starts; the clock covers reading it, every request and writing the JSON
lines. Runs from the repository like fastreq_sync.py."""

import os
import tempfile

import fastreq as fr
from fastreq import cli

import _common as c


def main() -> None:
    args = c.parse_args()
    if args.mode != "jsonl":
        c.unsupported("the command line's job is mode jsonl")
    fd, urls = tempfile.mkstemp(suffix=".txt")
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(c.jsonl_urls(args)) + "\n")
    argv = ["fetch", urls, "--concurrency", str(args.concurrency), "--max-retries", "0", "--no-progress",
            "--quiet", "--body", "text"]

    def work(path: str) -> None:
        rc = cli.main(argv + ["-o", path])
        if rc not in (0, 1):
            raise SystemExit(f"fastreq fetch exited with {rc}")

    try:
        c.run_jsonl("fastreq-fetch", getattr(fr, "__version__", "?"), args, work)
    finally:
        os.unlink(urls)


if __name__ == "__main__":
    main()
