"""In-tree PEP 517 build backend of the fastreq Python package.

It wraps ``setuptools.build_meta``: before setuptools builds a wheel, it
produces ``libfastreq.so`` (``.dylib``/``.dll``), the Go engine, and hands it
to ``setup.py``, which ships it as package data in a platform
(non-pure) wheel tagged ``py3-none-<platform>`` (the library is loaded with
ctypes, so it does not depend on the Python ABI).

Where the library comes from, in order:

* ``FASTREQ_PREBUILT_LIBRARY=/path/to/libfastreq.so``: copied as is;
* otherwise it is compiled from the Go module that contains this package
  (``python/..``, or ``FASTREQ_GO_MODULE_ROOT``) with
  ``go build -trimpath -ldflags="-s -w" -buildmode=c-shared -o <dest> ./capi``
  (needs Go and a C compiler; ``FASTREQ_GO`` names the go binary).

Editable installs (``pip install -e ./python``) build the library into the
source tree (``python/fastreq/``) since the package is used from there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from setuptools import build_meta as _orig
from setuptools.build_meta import (  # noqa: F401 - re-exported hooks
    build_sdist,
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)

if sys.platform == "darwin":
    LIBRARY_NAME = "libfastreq.dylib"
elif sys.platform == "win32":
    LIBRARY_NAME = "libfastreq.dll"
else:
    LIBRARY_NAME = "libfastreq.so"

#: setup.py reads this to copy the library into the wheel.
STAGED_ENV = "FASTREQ_STAGED_LIBRARY"

PROJECT_DIR = Path(__file__).resolve().parent.parent  # python/
PACKAGE_DIR = PROJECT_DIR / "fastreq"


def _log(msg: str) -> None:
    print(f"fastreq build: {msg}", file=sys.stderr, flush=True)


def _module_root() -> Path:
    root = os.environ.get("FASTREQ_GO_MODULE_ROOT")
    path = Path(root).resolve() if root else PROJECT_DIR.parent
    if not (path / "go.mod").is_file() or not (path / "capi").is_dir():
        raise RuntimeError(
            f"cannot build libfastreq: {path} is not the fastreq Go module (no go.mod and capi/). "
            "Build from a checkout of the repository (pip install ./python), set FASTREQ_GO_MODULE_ROOT "
            "to the repository root, or set FASTREQ_PREBUILT_LIBRARY to a built libfastreq."
        )
    return path


def build_library(dest: Path) -> Path:
    """Put the engine library at dest (copy a prebuilt one or compile it)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    prebuilt = os.environ.get("FASTREQ_PREBUILT_LIBRARY")
    if prebuilt:
        src = Path(prebuilt)
        if not src.is_file():
            raise RuntimeError(f"FASTREQ_PREBUILT_LIBRARY={prebuilt} does not name a file")
        if src.resolve() != dest.resolve():
            shutil.copyfile(src, dest)
        _log(f"using the prebuilt library {src}")
        return dest
    go = os.environ.get("FASTREQ_GO") or shutil.which("go")
    if not go:
        raise RuntimeError(
            "building fastreq needs the Go toolchain (https://go.dev/dl/) on PATH to compile libfastreq, "
            "or FASTREQ_PREBUILT_LIBRARY pointing at a built library"
        )
    root = _module_root()
    env = dict(os.environ)
    env.setdefault("CGO_ENABLED", "1")
    cmd = [go, "build", "-trimpath", "-ldflags=-s -w", "-buildmode=c-shared", "-o", str(dest), "./capi"]
    _log(f"compiling the engine in {root}: {' '.join(cmd)}")
    proc = subprocess.run(cmd, cwd=str(root), env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"go build failed with exit code {proc.returncode}")
    header = dest.with_suffix(".h")  # cgo writes its internal header beside the library
    if header.exists():
        header.unlink()
    return dest


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    with tempfile.TemporaryDirectory(prefix="fastreq-build-") as tmp:
        lib = build_library(Path(tmp) / LIBRARY_NAME)
        old = os.environ.get(STAGED_ENV)
        os.environ[STAGED_ENV] = str(lib)
        try:
            return _orig.build_wheel(wheel_directory, config_settings, metadata_directory)
        finally:
            if old is None:
                os.environ.pop(STAGED_ENV, None)
            else:
                os.environ[STAGED_ENV] = old


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    # The editable package runs from the source tree: the library goes there.
    build_library(PACKAGE_DIR / LIBRARY_NAME)
    return _orig.build_editable(wheel_directory, config_settings, metadata_directory)
