"""fastreq 3.x's input validators, answered by the engine's own checks.

``validate_url`` and ``validate_headers`` have the engine check a request
with that URL or those headers as a submit would (nothing is sent), and
``validate_proxy`` whether a client with that proxy can be made: each says
yes exactly when a request or client of fastreq would take the value. They
load the engine on first use; importing this module does not.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Union

from .. import _json
from ..exceptions import ConfigurationError, ValidationError

__all__ = ["ValidationError", "normalize_urls", "validate_headers", "validate_proxy", "validate_url"]

#: A URL the header check attaches the headers to (never requested).
_PROBE_URL = "http://localhost/"


def _engine_check(request: Dict[str, Any]) -> None:
    """The engine's check of one request, its errors as ValidationError
    naming the field, without the "request 0: " of a batch's message."""
    from .._handles import check_requests

    try:
        check_requests(_json.dumps([request]))
    except (ValidationError, ConfigurationError) as e:
        msg = e.message
        if msg.startswith("request 0: "):
            msg = msg[len("request 0: "):]
        field = e.field_name if isinstance(e, ValidationError) else e.config_key
        err = ValidationError(msg, field_name=field)
        err.kind = "validation"
        raise err from None


def validate_url(url: str) -> bool:
    """Check that url is one fastreq can request: http:// or https://
    (either case) with a host and, if given, a port of 1-65535.

    Returns:
        True.

    Raises:
        ValidationError: (``field_name="url"``) the URL is not one the
            engine accepts.

    Example:
        >>> validate_url("https://example.com")
        True
        >>> validate_url("ftp://example.com")
        Traceback (most recent call last):
        ValidationError: url "ftp://example.com" must start with http:// or https://
    """
    if not isinstance(url, str):
        raise ValidationError(f"Invalid URL: {url!r}. Must be a str starting with http:// or https://",
                              field_name="url")
    _engine_check({"url": url})
    return True


def validate_proxy(proxy: Optional[str]) -> bool:
    """Whether proxy is an address fastreq can use: ``host:port``,
    ``host:port:user:pass`` or ``http://``, ``https://``, ``socks5://`` or
    ``socks5h://[user:pass@]host:port`` (a port of 1-65535 required, no
    path). False for None, "" and anything else; never raises.

    Example:
        >>> validate_proxy("192.168.1.1:8080")
        True
        >>> validate_proxy("192.168.1.1")
        False
    """
    if not isinstance(proxy, str) or not proxy.strip():
        return False
    try:
        _engine_check({"url": _PROBE_URL, "proxy": proxy})
    except ValidationError:
        return False
    return True


def validate_headers(headers: Dict[str, Any]) -> bool:
    """Check headers: a dict of str to str whose names are HTTP tokens and
    whose values hold no control characters or newlines.

    Returns:
        True.

    Raises:
        ValidationError: (``field_name="headers"``) headers are not a
            dict, a key or value is not a str, or the engine refuses a name
            or value.

    Example:
        >>> validate_headers({"Content-Type": "application/json"})
        True
    """
    if not isinstance(headers, dict):
        raise ValidationError("Headers must be a dictionary", field_name="headers")
    for key, value in headers.items():
        if not isinstance(key, str):
            raise ValidationError(f"Header key must be a string, got {type(key).__name__}", field_name="headers")
        if not isinstance(value, str):
            raise ValidationError(
                f"Header value for key '{key}' must be a string, got {type(value).__name__}",
                field_name="headers",
            )
    if headers:
        _engine_check({"url": _PROBE_URL, "headers": headers})
    return True


def normalize_urls(urls: Union[str, Sequence[str], None]) -> Optional[List[str]]:
    """urls as a list: None stays None, a str becomes a list of one, a list
    is returned as is (another sequence as a list).

    Example:
        >>> normalize_urls("https://example.com")
        ['https://example.com']
        >>> normalize_urls(["https://a.com", "https://b.com"])
        ['https://a.com', 'https://b.com']
    """
    if urls is None:
        return None
    if isinstance(urls, str):
        return [urls]
    if isinstance(urls, list):
        return urls
    return list(urls)
