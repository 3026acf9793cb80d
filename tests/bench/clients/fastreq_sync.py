"""Our fastreq, synchronous API: one fastreq() call for the whole batch
(mode serial: one client kept open, FastRequests.request_sync(url) per
request, so connections are reused as with the async peers). Runs from the
repository: PYTHONPATH=python and FASTREQ_LIBRARY=build/libfastreq.so, set
by the harness."""

import warnings

import fastreq as fr

import _common as c

warnings.simplefilter("ignore")


def options(args) -> dict:
    o = c.fastreq_options(args)
    if args.proto == "h1":
        o["http2"] = False
    elif args.proto == "h2c":
        o["backend"] = "http2"  # h2c with prior knowledge
    else:
        o["http2"] = True  # h2 by ALPN
    return o


def main() -> None:
    args = c.parse_args()
    o = options(args)
    version = getattr(fr, "__version__", "?")
    if args.mode == "serial":
        o["concurrency"] = 1
        rt = o.pop("return_type")
        with fr.FastRequests(**o) as client:
            c.run_serial("fastreq", version, args, lambda: client.request_sync(args.url, return_type=rt))
    else:
        c.run_sync("fastreq", version, args, lambda: fr.fastreq([args.url] * args.n, **o))


if __name__ == "__main__":
    main()
