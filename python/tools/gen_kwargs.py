"""Writes python/fastreq/_kwargs.py: the keyword arguments of the calls'
overloads as TypedDicts, from the parameter classes of fastreq._params.

The calls (fastreq(), fastreq_async(), FastRequests.request() and
request_sync()) are overloaded on what they return. An overload names the
parameters that decide it (urls, and return_type, parse_func or keys) and
takes the others as ``**kwargs: Unpack[<TypedDict>]``; those TypedDicts
are generated here, so that the parameter lists stay declared once, in
the dataclasses. Each field has the annotation its dataclass declares (as
written, checks dropped), in the dataclass's order.

    python python/tools/gen_kwargs.py           # rewrite the module
    python python/tools/gen_kwargs.py --check   # exit 1 if it is stale

tests/python/test_typing.py runs the check.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import dataclasses
import difflib
import sys
import textwrap
import typing
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

PYTHON_DIR = Path(__file__).resolve().parents[1]
TARGET = PYTHON_DIR / "fastreq" / "_kwargs.py"
THIS = "python/tools/gen_kwargs.py"

#: The parameters that decide what a call returns.
SHAPING = ("return_type", "parse_func", "keys", "save_to")

#: The overloads' kinds: (suffix, what an overload of the kind names
#: itself, the parameters of SHAPING it takes as keywords; "None" narrows
#: one to None, its default, None leaves it as declared).
KINDS: List[Tuple[str, str, Dict[str, Optional[str]]]] = [
    ("Typed", "return_type (parse_func, keys and save_to must be None)",
     {"parse_func": "None", "keys": "None", "save_to": "None"}),
    ("Parsed", "parse_func (keys must be None)",
     {"return_type": None, "keys": "None", "save_to": None}),
    ("Keyed", "keys",
     {"return_type": None, "parse_func": None, "save_to": None}),
    ("Kwargs", "none of them",
     {"return_type": None, "parse_func": None, "keys": None, "save_to": None}),
]

#: The calls' parameter classes: (prefix, class name in fastreq._params).
CALLS = [("OneShot", "OneShotParams"), ("Request", "RequestParams")]


def _annotations(source: str) -> Dict[str, Dict[str, ast.expr]]:
    """{class name: {field: annotation}} of the classes of a module, the
    annotations as written (``Annotated[T, ...]`` as T)."""
    out: Dict[str, Dict[str, ast.expr]] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef):
            fields: Dict[str, ast.expr] = {}
            todo: List[ast.stmt] = list(node.body)
            while todo:
                st = todo.pop(0)
                if isinstance(st, ast.If):
                    todo[:0] = st.body + st.orelse
                elif isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name):
                    ann = st.annotation
                    if (isinstance(ann, ast.Subscript) and isinstance(ann.value, ast.Name)
                            and ann.value.id == "Annotated" and isinstance(ann.slice, ast.Tuple)):
                        ann = ann.slice.elts[0]
                    fields[st.target.id] = ann
            out[node.name] = fields
    return out


def _imports(source: str) -> Dict[str, str]:
    """{name: module} of the names a module imports from modules of its
    package (``from .models import X``)."""
    return {a.asname or a.name: "." * node.level + (node.module or "")
            for node in ast.parse(source).body if isinstance(node, ast.ImportFrom) and node.level
            for a in node.names}


def _fields(cls: type, written: Dict[str, Dict[str, ast.expr]]) -> Dict[str, str]:
    """{field: annotation} of cls's dataclass fields but its positional
    one, in order, each annotation from the class of cls's MRO that
    declares the field last."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.name == getattr(cls, "POSITIONAL"):
            continue
        owner = next((c for c in cls.__mro__
                      if c.__module__ == cls.__module__ and f.name in written.get(c.__name__, {})), None)
        if owner is None:
            raise SystemExit(f"{THIS}: no annotation of {cls.__name__}.{f.name} in fastreq/_params.py")
        out[f.name] = ast.unparse(written[owner.__name__][f.name])
    return out


def _typed_dict(name: str, base: str, doc: str, fields: Dict[str, str]) -> List[str]:
    return ["", "", f"class {name}({base}, total=False):", f'    """{doc}"""', ""] + [
        f"    {field}: {ann}" for field, ann in fields.items()]


def _imports_of(annotations: Sequence[str], imported: Dict[str, str]) -> List[str]:
    """The import lines of the names annotations use, each from where
    fastreq._params has it."""
    from fastreq import _params

    names = {n.id for ann in annotations for n in ast.walk(ast.parse(ann, mode="eval")) if isinstance(n, ast.Name)}
    sources: Dict[str, List[str]] = {"typing": ["TypedDict"]}
    for name in sorted(names):
        if hasattr(builtins, name):
            continue
        module = "typing" if hasattr(typing, name) else imported.get(name, "._params")
        if module == "._params" and not hasattr(_params, name):
            raise SystemExit(f"{THIS}: fastreq._params has no {name}")
        sources.setdefault(module, []).append(name)
    lines = [f"from typing import {', '.join(sorted(sources.pop('typing')))}", ""]
    return lines + [f"from {module} import {', '.join(names)}" for module, names in sorted(sources.items())]


def render() -> str:
    sys.path.insert(0, str(PYTHON_DIR))
    from fastreq import _params

    source = (PYTHON_DIR / "fastreq" / "_params.py").read_text()
    written = _annotations(source)
    calls = {prefix: (cls_name, _fields(getattr(_params, cls_name), written)) for prefix, cls_name in CALLS}
    first, *others = [fields for _, fields in calls.values()]
    for cls_name, fields in calls.values():
        for name in SHAPING:
            if fields[name] != first[name]:
                raise SystemExit(f"{THIS}: {cls_name}.{name} is not declared as in {CALLS[0][1]}")
    four = f"{', '.join(SHAPING[:-1])} and {SHAPING[-1]}"
    body: List[str] = []
    for kind, names, held in KINDS:
        body += _typed_dict(f"_{kind}", "TypedDict", f"The rest of the four, for an overload that names {names}.",
                            {name: first[name] if narrow is None else narrow for name, narrow in held.items()})
    # The other parameters every call declares alike, then each call's own.
    alike = {name: ann for name, ann in first.items()
             if name not in SHAPING and all(fields.get(name) == ann for fields in others)}
    body += _typed_dict("_Call", "TypedDict", "The parameters every call declares alike, but urls and the four.",
                        alike)
    for prefix, (cls_name, fields) in calls.items():
        common = f"_{prefix}Common"
        body += _typed_dict(common, "_Call", f"The other parameters of {cls_name} but urls.",
                            {name: ann for name, ann in fields.items() if name not in SHAPING and name not in alike})
        body += ["", ""] + [f"class {prefix}{kind}({common}, _{kind}, total=False): pass" for kind, _, _ in KINDS]
    about = (f"Generated by {THIS} from the parameter classes of fastreq._params: do not edit; run it again "
             "after changing them (tests/python/test_typing.py fails while this file is stale).\n\n"
             "The keyword arguments of the overloads of fastreq(), fastreq_async(), FastRequests.request() and "
             "request_sync(), for type checkers. An overload names urls and the parameters that decide its "
             "result; it takes the others as ``**kwargs: Unpack[<Call><Kind>]``: the call's parameters but urls "
             f"and the four that shape a result, {four} (_Call and _<Call>Common), and those of the four it does "
             "not name (_<Kind>).")
    head = ['"""' + "\n\n".join(textwrap.fill(par, 76) for par in about.split("\n\n")), '"""', ""]
    annotations = [ann for _, fields in calls.values() for ann in fields.values()]
    return "\n".join(head + _imports_of(annotations, _imports(source)) + body) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 (showing the difference) if the module is stale")
    args = ap.parse_args(argv)
    text = render()
    old = TARGET.read_text() if TARGET.exists() else ""
    if args.check:
        if old != text:
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), text.splitlines(True),
                                                       str(TARGET), "generated"))
            print(f"{TARGET} is stale: run python {THIS}", file=sys.stderr)
            return 1
        return 0
    if old != text:
        TARGET.write_text(text)
        print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
