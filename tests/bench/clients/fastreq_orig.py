"""The original pure-Python fastreq 3.x from PyPI (niquests transport), in a
virtual environment of its own (it installs under the same import name as
ours). Driven like fastreq_sync.py: one fastreq() call for the batch; mode
serial: one fastreq(url) call per request. Its http2 flag maps to niquests'
disable_http2; it never disables HTTP/1.1, so over http:// it cannot ask for
h2c: the harness's protocol check shows what it really spoke."""

import importlib.metadata
import warnings

import fastreq as fr

import _common as c

warnings.simplefilter("ignore")


def main() -> None:
    args = c.parse_args()
    o = c.fastreq_options(args)
    o["http2"] = args.proto != "h1"
    version = importlib.metadata.version("fastreq") + " (niquests " + importlib.metadata.version("niquests") + ")"
    if args.mode == "serial":
        o["concurrency"] = 1
        c.run_serial("fastreq-orig", version, args, lambda: fr.fastreq(args.url, **o))
    else:
        c.run_sync("fastreq-orig", version, args, lambda: fr.fastreq([args.url] * args.n, **o))


if __name__ == "__main__":
    main()
