"""Where the examples send their requests: the first command-line
argument, else FASTREQ_EXAMPLE_BASE_URL, else a local fastreq-testserver
(go-httpbin plus the /x/ endpoints) on 127.0.0.1:8080."""

import os
import sys


def base_url() -> str:
    if len(sys.argv) > 1:
        return sys.argv[1].rstrip("/")
    return os.environ.get("FASTREQ_EXAMPLE_BASE_URL", "http://127.0.0.1:8080").rstrip("/")


def arg(n: int, env: str, default: str = "") -> str:
    if len(sys.argv) > n:
        return sys.argv[n]
    return os.environ.get(env, default)
