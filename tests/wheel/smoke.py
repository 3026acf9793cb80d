"""Smoke test of an installed fastreq (a wheel or an sdist build): run by
tests/wheel/check.sh with the venv's python, from outside the source tree.

  smoke.py SERVER_BINARY [--no-toolchain]

It starts the test server, fetches 100 URLs, and checks that the package
and the library it loaded are the installed ones (inside sys.prefix), with
neither FASTREQ_LIBRARY nor PYTHONPATH set. With --no-toolchain, also that
neither go nor a C compiler is on PATH.
"""

import json
import os
import shutil
import subprocess
import sys
from importlib import metadata

server_bin, flags = sys.argv[1], sys.argv[2:]

for var in ("FASTREQ_LIBRARY", "PYTHONPATH"):
    assert var not in os.environ, f"{var} is set: {os.environ[var]}"
if "--no-toolchain" in flags:
    found = {tool: shutil.which(tool) for tool in ("go", "cc", "gcc", "clang", "zig")}
    assert not any(found.values()), f"a toolchain is on PATH={os.environ.get('PATH')}: {found}"

import fastreq  # noqa: E402
from fastreq import fastreq as fetch  # noqa: E402

prefix = os.path.realpath(sys.prefix)
assert sys.prefix != sys.base_prefix, "not in a virtual environment"
pkg = os.path.realpath(fastreq.__path__[0])
assert pkg.startswith(prefix + os.sep), f"fastreq imported from {pkg}, not from {prefix}"

proc = subprocess.Popen([server_bin, "-exit-on-stdin-close"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
try:
    base = json.loads(proc.stdout.readline())["http_url"]
    res = fetch([base + "/x/json"] * 100, concurrency=10)
    assert len(res) == 100 and all(isinstance(r, dict) and r.get("id") == 12345 for r in res), res[:3]
finally:
    proc.stdin.close()
    proc.wait(10)

lib = os.path.realpath(fastreq.engine.library_path())
assert lib.startswith(pkg + os.sep), f"the library {lib} is not the installed package's ({pkg})"
tags = [ln.split(":", 1)[1].strip() for ln in metadata.distribution("fastreq").read_text("WHEEL").splitlines()
        if ln.startswith("Tag:")]
print(f"installed package OK: fastreq {fastreq.__version__}, engine {fastreq.engine.version()}, "
      f"library {lib}, wheel tags {', '.join(tags)}"
      + (", no go/cc on PATH" if "--no-toolchain" in flags else ""))
