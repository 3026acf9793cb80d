"""JSON with orjson when installed, the standard json module otherwise.

``loads`` accepts bytes; ``dumps`` returns bytes. Both raise ValueError
subclasses on bad input (orjson.JSONDecodeError and json.JSONDecodeError
are ValueErrors); ``dumps`` raises for NaN and +-Infinity only with the
standard module (orjson writes them as null: see :func:`has_nonfinite`).
``loads`` raises one of :data:`DECODE_ERRORS` for input nested deeper
than the parser allows: orjson JSONDecodeError past 1024 levels, the
standard module RecursionError.

orjson parses only from version 3.9.15 on: older ones have no depth limit
and overflow the C stack (killing the process) on a body of a few hundred
KB of nested brackets. With an older orjson, ``loads`` is the standard
module's and ``dumps`` stays orjson's.
"""

from __future__ import annotations

import json as _std
import re
from dataclasses import fields, is_dataclass
from math import isfinite as _isfinite
from typing import Any, Callable

try:  # pragma: no cover - depends on the environment
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None  # type: ignore[assignment]

#: What ``loads`` raises for a body that is not JSON it can return.
DECODE_ERRORS = (ValueError, RecursionError)


_std_loads = _std.loads


def _std_dumps(v: Any) -> bytes:
    return _std.dumps(v, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def has_nonfinite(v: Any) -> bool:
    """Whether v holds a float NaN or +-Infinity, which JSON cannot express:
    the standard module's ``dumps`` raises ValueError for them, orjson's
    writes null. Looks where orjson looks: dict values, lists, tuples and
    dataclass fields."""
    stack = [v]
    while stack:
        x = stack.pop()
        if isinstance(x, float):
            if not _isfinite(x):
                return True
        elif isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, (list, tuple)):
            stack.extend(x)
        elif is_dataclass(x) and not isinstance(x, type):
            stack.extend(getattr(x, f.name) for f in fields(x))
    return False


def _version(v: str) -> "tuple[int, ...]":
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


#: What the package calls (looked up at each call, so a test may swap in
#: _std_loads and _std_dumps).
loads: Callable[[Any], Any] = _std_loads
dumps: Callable[[Any], bytes] = _std_dumps

if _orjson is not None:
    if _version(getattr(_orjson, "__version__", "0")) >= (3, 9, 15):
        loads = _orjson.loads

    def _orjson_dumps(v: Any, _dumps: Callable[..., bytes] = _orjson.dumps,
                      _opts: int = getattr(_orjson, "OPT_SERIALIZE_NUMPY", 0)) -> bytes:
        try:
            return _dumps(v, option=_opts)
        except TypeError:
            # orjson is stricter than json (e.g. int keys, large ints, custom
            # subclasses): fall back to the standard module for those.
            return _std_dumps(v)

    dumps = _orjson_dumps
