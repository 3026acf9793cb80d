"""JSON with orjson when installed, the standard json module otherwise.

``loads`` accepts bytes; ``dumps`` returns bytes. Both raise ValueError
subclasses on bad input (orjson.JSONDecodeError and json.JSONDecodeError
are ValueErrors).
"""

from __future__ import annotations

import json as _std
from typing import Any, Callable

try:  # pragma: no cover - depends on the environment
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None

HAVE_ORJSON = _orjson is not None


def _std_loads(b: Any) -> Any:
    return _std.loads(b)


def _std_dumps(v: Any) -> bytes:
    return _std.dumps(v, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


if _orjson is not None:
    loads: Callable[[Any], Any] = _orjson.loads
    _OPTS = _orjson.OPT_SERIALIZE_NUMPY if hasattr(_orjson, "OPT_SERIALIZE_NUMPY") else 0

    def dumps(v: Any) -> bytes:
        try:
            return _orjson.dumps(v, option=_OPTS)
        except TypeError:
            # orjson is stricter than json (e.g. int keys, large ints, custom
            # subclasses): fall back to the standard module for those.
            return _std_dumps(v)

else:  # pragma: no cover
    loads = _std_loads
    dumps = _std_dumps


def use_stdlib(enabled: bool = True) -> None:
    """Switch to the standard json module (for tests and debugging)."""
    global loads, dumps
    if enabled or _orjson is None:
        loads, dumps = _std_loads, _std_dumps
    else:
        loads = _orjson.loads

        def dumps(v: Any) -> bytes:  # type: ignore[misc]
            try:
                return _orjson.dumps(v, option=_OPTS)
            except TypeError:
                return _std_dumps(v)
