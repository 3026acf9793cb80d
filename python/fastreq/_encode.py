"""Building the request JSON array handed to fastreq_batch_submit.

The array holds one object per request with the header's field names
(url, method, params, data, content, json, headers, cookies, timeout,
proxy, http2, follow_redirects, verify_ssl, stream, output_path,
max_body_size, retry_non_idempotent, id). Query parameters and forms
travel as ``[[name, value], ...]`` pairs so their order is kept; bytes
bodies as base64 ``content``.

The common case, a list of str URLs sharing one set of settings, is built
without any per-URL Python work: the URL list is serialized once and the
shared settings are spliced in with one ``bytes.replace``.
"""

from __future__ import annotations

import base64
import dataclasses
import os
from collections.abc import Mapping, MappingView
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence
from urllib.parse import parse_qsl

from . import _json
from ._params import str_map
from .exceptions import ConfigurationError, ValidationError, redact_url
from .models import RequestConfig, RequestOptions, ReturnType

if TYPE_CHECKING:  # pragma: no cover
    from ._params import RequestSettings

RT_JSON, RT_TEXT, RT_CONTENT, RT_RESPONSE, RT_STREAM, RT_BUFFER = range(6)

#: A per-request timeout meaning "no limit" (the engine reads 0 as "the
#: client's timeout").
NO_TIMEOUT = 1e9

#: ReturnType -> RT_* code (the codes are in ReturnType's order).
_RT_CODES: Dict[Any, int] = {rt: code for code, rt in enumerate(ReturnType)}

_PREFIXES = ("http://", "https://")


def return_type_code(rt: Any) -> int:
    """ReturnType or its string value -> RT_* code; ValidationError otherwise."""
    code = _RT_CODES.get(rt)
    if code is None:
        try:
            code = _RT_CODES[ReturnType(rt.lower() if isinstance(rt, str) else rt)]
        except (ValueError, KeyError, TypeError):
            valid = ", ".join(repr(r.value) for r in ReturnType)
            raise ValidationError(f"unknown return_type {rt!r}; valid: {valid}", field_name="return_type") from None
    return code


# The engine checks URLs too, but shows a password in one it cannot parse
# as http(s) (user:pw@host/x): those are refused here, with the password
# redacted.


def check_url(u: Any) -> str:
    if isinstance(u, str):
        if u.startswith(_PREFIXES) or u[:8].lower().startswith(_PREFIXES):
            return u
        u = redact_url(u)
    raise ValidationError(f"Invalid URL: {u!r}. Must start with http:// or https://", field_name="url")


def check_urls(urls: Sequence[Any]) -> None:
    p = _PREFIXES
    for u in urls:
        if type(u) is not str or not u.startswith(p):
            check_url(u)


def _scalar(v: Any, name: str) -> Optional[str]:
    if isinstance(v, str):
        return v
    if v is None:
        return None
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8", "replace")
    if isinstance(v, (int, float)):  # bool included: str(True) == "True", as urlencode
        return str(v)
    if isinstance(v, (Mapping, list, tuple, set)):
        raise ValidationError(f"{name}: nested value {v!r} is not allowed", field_name=name)
    return str(v)


def to_pairs(obj: Any, name: str) -> List[List[str]]:
    """dict / list of pairs / query string -> [[name, value], ...]; a list
    value repeats the name, None values are dropped (as in requests)."""
    if isinstance(obj, str):
        return [[k, v] for k, v in parse_qsl(obj, keep_blank_values=True)]
    if isinstance(obj, (bytes, bytearray)):
        return to_pairs(bytes(obj).decode("utf-8", "replace"), name)
    items = obj.items() if isinstance(obj, Mapping) else obj
    pairs: List[List[str]] = []
    try:
        for k, v in items:
            ks = _scalar(k, name)
            if ks is None:
                continue
            for x in v if isinstance(v, (list, tuple)) else (v,):
                s = _scalar(x, name)
                if s is not None:
                    pairs.append([ks, s])
    except (TypeError, ValueError):
        raise ValidationError(f"{name} must be a dict or a list of (name, value) pairs", field_name=name) from None
    return pairs


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def body_fields(out: Dict[str, Any], data: Any, json_value: Any) -> None:
    """Add data/content/json to out as the header wants them."""
    if data is not None:
        if isinstance(data, str):
            out["data"] = data
        elif isinstance(data, (bytes, bytearray, memoryview)):
            out["content"] = _b64(bytes(data))
        elif isinstance(data, (Mapping, list, tuple)):
            out["data"] = to_pairs(data, "data")
        elif hasattr(data, "read"):
            body = data.read()
            if isinstance(body, str):
                out["data"] = body
            else:
                out["content"] = _b64(bytes(body))
        else:
            raise ValidationError(
                f"data must be a str, bytes, dict or list of pairs, got {type(data).__name__}", field_name="data"
            )
    if json_value is not None:
        out["json"] = json_value


# The engine checks a request's method, timeout, proxy, headers and body;
# these refuse only what JSON would hide from it: a method of None (null
# is no method, i.e. GET) and a NaN timeout (which JSON has no number for).


def _method(method: Any) -> Any:
    if method is None:
        raise ValidationError("method must be a str, got None", field_name="method")
    return method


def _timeout(t: Any) -> Any:
    if t != t:
        raise ValidationError(f"timeout must be a number of seconds >= 0, got {t!r}", field_name="timeout")
    return t


def _path(p: Any) -> str:
    try:
        path: str = os.path.abspath(os.fspath(p))
        return path
    except TypeError:
        raise ValidationError(f"save_to must be a path, got {p!r}", field_name="save_to") from None


@dataclasses.dataclass
class Plan:
    """Everything a call needs besides the engine: the payload and how to
    shape each result."""

    payload: bytes
    n: int
    urls: List[str]
    single: bool
    keys: Optional[List[Any]]
    rtype: int
    rtypes: Optional[List[int]] = None
    stream_cb: Optional[Callable[[bytes], Any]] = None
    stream_cbs: Optional[Dict[int, Callable[[bytes], Any]]] = None
    save_paths: Optional[Dict[int, Path]] = None


_SPEC_FIELDS = {
    "url", "method", "params", "data", "json", "content", "headers", "cookies", "timeout", "proxy",
    "http2", "stream", "follow_redirects", "verify_ssl", "save_to", "output_path", "return_type",
    "stream_callback", "max_body_size", "retry_non_idempotent", "id",
}

_BODY_KEYS = ("data", "content", "json")


def _spec_dict(spec: Any) -> Dict[str, Any]:
    """A per-request spec -> dict of the fields it sets explicitly."""
    if isinstance(spec, Mapping):
        d = dict(spec)
        for k in d:
            if k not in _SPEC_FIELDS:
                raise ValidationError(
                    f"unknown request field {k!r}; valid: {', '.join(sorted(_SPEC_FIELDS))}", field_name=k
                )
        if "url" not in d:
            raise ValidationError("a request spec needs a 'url'", field_name="url")
        return d
    if isinstance(spec, (RequestConfig, RequestOptions)):
        d = {}
        for f in dataclasses.fields(spec):
            v = getattr(spec, f.name)
            if f.name == "url" or v != f.default:
                d[f.name] = v
        return d
    raise ValidationError(
        f"each request must be a URL str, a dict or a RequestConfig, got {type(spec).__name__}", field_name="url"
    )


def _merge_headers(base: Optional[Dict[str, str]], over: Optional[Dict[str, str]]) -> Optional[Dict[str, str]]:
    if not base:
        return over
    if not over:
        return base
    lower = {k.lower() for k in over}
    merged = {k: v for k, v in base.items() if k.lower() not in lower}
    merged.update(over)
    return merged


def build_plan(urls: Any, s: "RequestSettings", *, timeout: Optional[float], follow_redirects: Optional[bool],
               verify_ssl: Optional[bool]) -> Plan:
    """Convert the call of urls with settings s and build its plan (see
    module doc).

    follow_redirects / verify_ssl / timeout here are the values to send
    for every request (s's resolved against the client's): None means
    "the native client's own setting".
    """
    method, params, data, json_value, headers, proxy, return_type, stream_callback, keys, save_to = (
        s.method, s.params, s.data, s.json, s.headers, s.proxy, s.return_type, s.stream_callback, s.keys, s.save_to)
    if (type(urls) is str and method == "GET" and params is None and data is None and json_value is None
            and not headers and timeout is None and proxy is None and follow_redirects is None
            and verify_ssl is None and keys is None and save_to is None and urls.startswith(_PREFIXES)):
        # The cheapest case: one URL with the client's settings.
        rt = _RT_CODES.get(return_type)
        if rt is not None and rt != RT_STREAM:
            return Plan(payload=b'[{"url":' + _json.dumps(urls) + b"}]", n=1, urls=[urls], single=True, keys=None,
                        rtype=rt, stream_cb=stream_callback)

    single = isinstance(urls, (str, Mapping, RequestConfig, RequestOptions))
    if single:
        items: List[Any] = [urls]
    elif isinstance(urls, (bytes, bytearray)):
        raise ValidationError("urls must be a str or a list, not bytes", field_name="url")
    elif isinstance(urls, (AbstractSet, MappingView)):
        raise ValidationError(f"urls must be ordered (a list or a tuple): results come in the order of urls, "
                              f"and a {type(urls).__name__} has none", field_name="urls")
    else:
        try:
            items = list(urls)
        except TypeError:
            raise ValidationError(
                f"urls must be a URL str or a list of URLs/request specs, got {type(urls).__name__}",
                field_name="url",
            ) from None
    n = len(items)
    key_list: Optional[List[Any]] = None
    if keys is not None:
        key_list = list(keys)
        if len(key_list) != n:
            raise ConfigurationError(
                f"Number of keys ({len(key_list)}) must match number of URLs ({n})", config_key="keys"
            )

    rtype = return_type_code(return_type)

    common: Dict[str, Any] = {}
    if method != "GET":
        common["method"] = _method(method)
    if params is not None:
        common["params"] = to_pairs(params, "params")
    body_fields(common, data, json_value)
    if headers is not None:
        hdrs = str_map("headers", headers)
        if hdrs:
            common["headers"] = hdrs
    if timeout is not None:
        common["timeout"] = _timeout(timeout)
    if proxy:
        common["proxy"] = proxy
    if follow_redirects is not None:
        common["follow_redirects"] = bool(follow_redirects)
    if verify_ssl is not None:
        common["verify_ssl"] = bool(verify_ssl)
    if rtype == RT_STREAM:
        common["stream"] = True

    save_paths: Optional[Dict[int, Path]] = None
    if save_to is not None:
        if callable(save_to):
            paths = [save_to(i, it if isinstance(it, str) else _spec_dict(it)["url"]) for i, it in enumerate(items)]
        elif isinstance(save_to, (str, os.PathLike)):
            if not single:
                raise ValidationError(
                    "save_to: a single path needs a single URL; pass a list of paths or a "
                    "function (index, url) -> path",
                    field_name="save_to",
                )
            paths = [save_to]
        else:
            paths = list(save_to)
            if len(paths) != n:
                raise ValidationError(
                    f"save_to has {len(paths)} paths for {n} requests", field_name="save_to"
                )
        save_paths = {i: Path(_path(p)) for i, p in enumerate(paths) if p is not None}
        if rtype == RT_STREAM and save_paths:
            raise ValidationError("save_to cannot be combined with return_type='stream'", field_name="save_to")

    if not save_paths and all(type(u) is str for u in items):
        # Fast path: same settings for every URL.
        check_urls(items)
        payload = _splice(items, common)
        return Plan(payload=payload, n=n, urls=items, single=single, keys=key_list, rtype=rtype,
                    stream_cb=stream_callback)

    reqs: List[Dict[str, Any]] = []
    url_list: List[str] = []
    rtypes: Optional[List[int]] = None
    stream_cbs: Dict[int, Callable[[bytes], Any]] = {}
    for i, it in enumerate(items):
        if type(it) is str:
            check_url(it)
            r = dict(common)
            r["url"] = it
            url_list.append(it)
            rt_i = rtype
        else:
            spec = _spec_dict(it)
            u = check_url(spec["url"])
            url_list.append(u)
            spec_body = any(b in spec for b in _BODY_KEYS)
            r = {k: v for k, v in common.items() if not (spec_body and k in _BODY_KEYS)}
            r["url"] = u
            explicit_rt = spec.get("return_type") is not None
            rt_i = return_type_code(spec["return_type"]) if explicit_rt else rtype
            if spec.get("stream_callback") is not None:
                stream_cbs[i] = spec["stream_callback"]
            if "method" in spec and (spec["method"] != "GET" or "method" in r):
                r["method"] = _method(spec["method"])
            if spec.get("params") is not None:
                r["params"] = to_pairs(spec["params"], "params")
            body_fields(r, spec.get("data"), spec.get("json"))
            content = spec.get("content")
            if content is not None:
                r["content"] = _b64(content.encode("utf-8") if isinstance(content, str) else bytes(content))
            if spec.get("headers") is not None:
                merged = _merge_headers(r.get("headers"), str_map("headers", spec["headers"]))
                if merged:
                    r["headers"] = merged
            if spec.get("cookies") is not None:
                cookies = str_map("cookies", spec["cookies"])
                if cookies:
                    r["cookies"] = cookies
            if spec.get("timeout") is not None:
                # 0 = no limit; the engine reads a request's 0 as "the client's".
                r["timeout"] = _timeout(spec["timeout"]) or NO_TIMEOUT
            if spec.get("proxy"):
                r["proxy"] = spec["proxy"]
            for flag in ("http2", "follow_redirects", "verify_ssl", "retry_non_idempotent"):
                if spec.get(flag) is not None:
                    r[flag] = bool(spec[flag])
            spec_stream = bool(spec.get("stream", False))
            if spec_stream and not explicit_rt and rt_i != RT_RESPONSE:
                rt_i = RT_STREAM  # (a "response" call keeps its response, with the body streamed)
            if spec_stream or rt_i == RT_STREAM:
                r["stream"] = True
            else:
                r.pop("stream", None)
            if spec.get("max_body_size") is not None:
                r["max_body_size"] = int(spec["max_body_size"])
            if "id" in spec:
                r["id"] = str(spec["id"])
            out = spec.get("save_to") or spec.get("output_path")
            if out is not None:
                if save_paths is None:
                    save_paths = {}
                save_paths[i] = Path(_path(out))
        if save_paths and i in save_paths:
            if r.get("stream"):
                raise ValidationError("save_to cannot be combined with streaming", field_name="save_to")
            r["output_path"] = str(save_paths[i])
        if rt_i != rtype:
            if rtypes is None:
                rtypes = [rtype] * n
            rtypes[i] = rt_i
        reqs.append(r)
    payload = _serialize(reqs, _json_bodies(reqs))
    return Plan(payload=payload, n=n, urls=url_list, single=single, keys=key_list, rtype=rtype, rtypes=rtypes,
                stream_cb=stream_callback, stream_cbs=stream_cbs or None, save_paths=save_paths)


def _serialize(v: Any, bodies: Optional[Iterable[Any]] = None) -> bytes:
    """v (requests, their URLs or their shared fields) as JSON, or
    ValidationError naming "json" when it does not serialize or when one of
    bodies (the json bodies in v) holds NaN or +-Infinity, which JSON has no
    numbers for. The standard module refuses those itself; orjson writes
    null, so the bodies are walked only when the output holds a null."""
    try:
        out = _json.dumps(v)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"a request body is not JSON-serializable: {exc}", field_name="json") from exc
    if bodies is not None and b"null" in out and any(_json.has_nonfinite(b) for b in bodies):
        raise ValidationError("a request body is not JSON-serializable: NaN and Infinity are not JSON numbers",
                              field_name="json")
    return out


def _json_bodies(reqs: List[Dict[str, Any]]) -> Iterator[Any]:
    """The json bodies of reqs, each object once (requests share the call's)."""
    seen = set()
    for r in reqs:
        b = r.get("json")
        if b is not None and id(b) not in seen:
            seen.add(id(b))
            yield b


def _splice(urls: List[str], common: Dict[str, Any]) -> bytes:
    """``[{"url": u, **common} for u in urls]`` as JSON, with no per-URL
    Python work. Inside a JSON string every '"' is escaped, so '","' only
    ever occurs between two elements of the serialized list."""
    if not urls:
        return b"[]"
    enc = _serialize(urls)
    suffix = b"}" if not common else b"," + _serialize(common, (common.get("json"),))[1:]
    return b'[{"url":' + enc[1:-1].replace(b'","', b'"' + suffix + b',{"url":"') + suffix + b"]"


__all__ = ["Plan", "build_plan", "RT_JSON", "RT_TEXT", "RT_CONTENT", "RT_RESPONSE", "RT_STREAM", "RT_BUFFER"]
