"""Synchronous fastreq(): one call, many URLs, results in order.

    python sync_basic.py http://127.0.0.1:8080
"""

from _base import base_url

from fastreq import PartialFailureError, fastreq


def main() -> None:
    base = base_url()
    urls = [f"{base}/get?page={i}" for i in range(10)]

    # A list in, a list out, in the same order.
    pages = fastreq(urls, concurrency=5)
    print("pages:", [p["args"]["page"][0] for p in pages])

    # keys= turns the result into a dict.
    by_name = fastreq([f"{base}/x/json", f"{base}/uuid"], keys=["doc", "uuid"])
    print("doc id:", by_name["doc"]["id"], "uuid ok:", len(by_name["uuid"]["uuid"]) == 36)

    # Other return types and a parse function.
    print("text:", fastreq(f"{base}/x/proto", return_type="text"))
    status = fastreq(f"{base}/status/404", return_type="response", parse_func=lambda r: r.status_code)
    print("status:", status)

    # A failure raises PartialFailureError once every request has finished...
    try:
        fastreq([f"{base}/x/json", f"{base}/x/reset"], max_retries=1, backoff_multiplier=0.05)
    except PartialFailureError as e:
        print(f"failed: {len(e.failures)} of {e.total}; succeeded: {e.successes}")
    # ...or gives None in the failed slots.
    res = fastreq([f"{base}/x/json", f"{base}/x/reset"], max_retries=0, return_none_on_failure=True)
    print("with None:", [r if r is None else r["id"] for r in res])


if __name__ == "__main__":
    main()
