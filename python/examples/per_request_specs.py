"""Per-request specs: each request with its own method, body, headers.

    python per_request_specs.py http://127.0.0.1:8080
"""

from _base import base_url

from fastreq import RequestConfig, fastreq


def main() -> None:
    base = base_url()
    results = fastreq(
        [
            f"{base}/x/echo?kind=plain",                                     # a URL: the call's settings
            {"url": f"{base}/x/echo", "method": "POST", "json": {"name": "fastreq"}},
            {"url": f"{base}/x/echo", "method": "PUT", "data": {"field": "value"},
             "headers": {"X-Request": "three"}},
            RequestConfig(f"{base}/x/echo", method="PATCH", params={"page": 2}, data="raw text"),
            {"url": f"{base}/x/json", "return_type": "text"},              # its own return type
        ],
        headers={"X-Call": "shared"},
    )
    for r in results[:4]:
        print(r["method"], r["url"], r["json"] or r["form"] or r["body"] or "-", r["headers"]["x-call"][0])
    print("text:", results[4][:20])


if __name__ == "__main__":
    main()
