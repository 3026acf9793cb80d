"""What type checkers infer for the results of fastreq(), fastreq_async(),
FastRequests.request() and request_sync(), overloaded on urls,
return_type, parse_func and keys (fastreq/api.py, fastreq/client.py).

One table, CASES, holds each call form and the type its result has: a
snippet asserts those types (``assert_type``) and is checked with mypy
and with pyright (each skipped when it is not installed), and the same
calls run against the test server, whose results must be of those types.
The overloads' other parameters are TypedDicts generated from
fastreq._params (fastreq/_kwargs.py): a test fails while they are stale.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
import typing
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import pytest

import fastreq
from fastreq import FastRequests, NormalizedResponse, ReturnType

PYTHON_DIR = Path(__file__).resolve().parents[2] / "python"
#: Whether the fastreq under test is the source tree's (not an installed wheel).
SOURCE_TREE = Path(fastreq.__file__).resolve().parent == PYTHON_DIR / "fastreq"

#: (arguments, the type of the result). The names: url (a URL that answers
#: JSON), bad (one that fails), urls (List[str]: url and bad), seq
#: (Sequence[str]), rt (str), path (a Path). Failures give None: every call
#: runs with return_none_on_failure.
CASES: List[Tuple[str, str]] = [
    ("url", "Any"),
    ("urls", "List[Any]"),
    ("url, return_type='json'", "Any"),
    ("urls, return_type=ReturnType.JSON", "List[Any]"),
    ("url, return_type='text'", "Optional[str]"),
    ("urls, return_type='text'", "List[Optional[str]]"),
    ("tuple(urls), return_type=ReturnType.TEXT", "List[Optional[str]]"),
    ("url, return_type='content'", "Optional[bytes]"),
    ("bad, return_type='content'", "Optional[bytes]"),
    ("urls, return_type=ReturnType.CONTENT", "List[Optional[bytes]]"),
    ("url, return_type='response'", "Optional[NormalizedResponse]"),
    ("urls, return_type=ReturnType.RESPONSE", "List[Optional[NormalizedResponse]]"),
    ("url, return_type='stream'", "None"),
    ("urls, return_type='stream'", "List[None]"),
    ("url, return_type='buffer'", "Optional[memoryview]"),
    ("urls, return_type=ReturnType.BUFFER", "List[Optional[memoryview]]"),
    ("url, parse_func=len", "Optional[int]"),
    ("urls, return_type='content', parse_func=len", "List[Optional[int]]"),
    ("[{'url': url}, url], parse_func=str", "List[Optional[str]]"),
    ("urls, keys=['a', 'b']", "Dict[str, Any]"),
    ("urls, return_type='text', keys=[1, 2]", "Dict[int, Any]"),
    # A spec's own return_type or save_to decides its result: Any.
    ("{'url': url, 'return_type': 'text'}, return_type='content'", "Any"),
    ("[{'url': url, 'return_type': 'text'}, url], return_type='content'", "List[Any]"),
    ("url, return_type='text', save_to=path", "Any"),
    # A return_type the overloads do not tell apart, and urls that may be one str.
    ("url, return_type='TEXT'", "Any"),
    ("urls, return_type=rt", "List[Any]"),
    ("seq, return_type='text'", "Any"),
]

#: The calls, as written in the snippet; {} is a case's arguments.
CALLS: Dict[str, str] = {
    "fastreq": "fastreq({}, return_none_on_failure=True, max_retries=0, verbose=False)",
    "fastreq_async": "await fastreq_async({}, return_none_on_failure=True, max_retries=0, verbose=False)",
    "request_sync": "c.request_sync({})",
    "request": "await c.request({})",
}

#: Calls a type checker must refuse (the ignore comments must be used).
REFUSED = ["url, bogus=1", "url, method=1", "url, return_type='text', parse_func=1"]


def snippet() -> str:
    lines = []
    for call in CALLS.values():
        lines += [f"assert_type({call.format(args)}, {tp})" for args, tp in CASES]
        lines += [f"{call.format(args)}  # type: ignore[call-overload]" for args in REFUSED]
    return textwrap.dedent("""\
        from pathlib import Path
        from typing import Any, Dict, List, Optional, Sequence

        from typing_extensions import assert_type

        from fastreq import FastRequests, NormalizedResponse, ReturnType, fastreq, fastreq_async


        async def check(url: str, bad: str, urls: List[str], seq: Sequence[str], rt: str, path: Path,
                        c: FastRequests) -> None:
        """) + "".join(f"    {line}\n" for line in lines)


@pytest.fixture
def checked(tmp_path: Path) -> Path:
    """The snippet, in a folder of its own."""
    p = tmp_path / "snippet.py"
    p.write_text(snippet())
    return p


def _show(out: str, src: Path) -> str:
    numbered = "\n".join(f"{i:4} {line}" for i, line in enumerate(src.read_text().splitlines(), 1))
    return f"{out}\n--- {src.name}:\n{numbered}"


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_mypy_infers_the_result_types(checked: Path) -> None:
    env = dict(os.environ)
    if SOURCE_TREE:
        env["MYPYPATH"] = str(PYTHON_DIR)
    out = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(checked.parent / ".mypy"),
                          checked.name], cwd=checked.parent, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, _show(out.stdout + out.stderr, checked)


def _pyright() -> Optional[List[str]]:
    for module in ("basedpyright", "pyright"):
        if importlib.util.find_spec(module) is not None:
            return [sys.executable, "-m", module]
    for exe in ("basedpyright", "pyright"):
        path = shutil.which(exe)
        if path:
            return [path]
    return None


@pytest.mark.skipif(_pyright() is None, reason="neither basedpyright nor pyright is installed")
def test_pyright_infers_the_result_types(checked: Path) -> None:
    config = {"typeCheckingMode": "standard", "reportUnnecessaryTypeIgnoreComment": "error",
              "extraPaths": [str(PYTHON_DIR)] if SOURCE_TREE else []}
    (checked.parent / "pyrightconfig.json").write_text(json.dumps(config))
    cmd = _pyright()
    assert cmd is not None
    out = subprocess.run(cmd + ["--pythonpath", sys.executable, "--outputjson", checked.name], cwd=checked.parent,
                         capture_output=True, text=True, timeout=600)
    try:
        report = json.loads(out.stdout)
    except ValueError:
        pytest.fail(out.stdout + out.stderr)
    problems = [f"{d['range']['start']['line'] + 1}: {d['message']}" for d in report["generalDiagnostics"]
                if d["severity"] == "error"]
    assert report["summary"]["filesAnalyzed"] == 1 and not problems, _show("\n".join(problems), checked)


# ---- the results at run time ----------------------------------------------


def conforms(value: Any, tp: Any) -> bool:
    """Whether value is of type tp (Any, None, a class, Optional, Union,
    List or Dict of those)."""
    if tp is Any:
        return True
    if tp is None or tp is type(None):
        return value is None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Union:
        return any(conforms(value, a) for a in args)
    if origin is list:
        return isinstance(value, list) and all(conforms(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(conforms(k, args[0]) and conforms(v, args[1])
                                               for k, v in value.items())
    return isinstance(value, tp)


@pytest.mark.parametrize("name", list(CALLS))
def test_the_results_are_of_those_types(server, tmp_path: Path, name: str) -> None:
    names = {"Any": Any, "Dict": Dict, "List": List, "Optional": Optional, "NormalizedResponse": NormalizedResponse}
    url = server.url("/x/json")
    urls = [url, "http://127.0.0.1:1/"]
    ns: Dict[str, Any] = dict(url=url, bad=urls[1], urls=urls, seq=list(urls), rt="TEXT", path=tmp_path / "body",
                              ReturnType=ReturnType, fastreq=fastreq.fastreq, fastreq_async=fastreq.fastreq_async)
    with FastRequests(return_none_on_failure=True, max_retries=0, verbose=False) as c:
        ns["c"] = c
        for args, tp in CASES:
            exec(f"async def call():\n    return {CALLS[name].format(args)}\n", ns)
            value = asyncio.run(ns["call"]())
            assert conforms(value, eval(tp, names)), (args, tp, value)


def test_the_typed_dicts_are_generated_from_the_parameters() -> None:
    gen = PYTHON_DIR / "tools" / "gen_kwargs.py"
    if not (SOURCE_TREE and gen.exists()):
        pytest.skip("not the source tree")
    spec = importlib.util.spec_from_file_location("gen_kwargs", gen)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (PYTHON_DIR / "fastreq" / "_kwargs.py").read_text() == module.render(), (
        "fastreq/_kwargs.py is stale: run python python/tools/gen_kwargs.py")
