"""In-tree PEP 517 build backend of the fastreq Python package.

It wraps ``setuptools.build_meta``: before setuptools builds a wheel, it
produces ``libfastreq.so`` (``.dylib``/``.dll``), the Go engine, and hands it
to ``setup.py``, which ships it as package data in a platform
(non-pure) wheel tagged ``py3-none-<platform>`` (the library is loaded with
ctypes, so it does not depend on the Python ABI). ``make wheel`` builds
against an old glibc and retags with auditwheel (``manylinux_2_17``).

Where the library comes from, in order:

* ``FASTREQ_PREBUILT_LIBRARY=/path/to/libfastreq.so``: copied as is;
* otherwise it is compiled from the fastreq Go module with
  ``go build -trimpath -ldflags="-s -w" -buildmode=c-shared -o <dest> ./capi``
  (needs Go >= the ``go`` line of go.mod and a C compiler for cgo;
  ``FASTREQ_GO`` names the go binary, ``CC`` the C compiler). The module is
  ``FASTREQ_GO_MODULE_ROOT`` if set, else ``_engine/`` of an unpacked sdist
  (``build_sdist`` adds the engine's sources there), else ``python/..`` of a
  checkout.

Editable installs (``pip install -e ./python``) build the library into the
source tree (``python/fastreq/``) since the package is used from there.

Messages go to stderr with a ``fastreq:`` prefix (pip shows them with -v,
and always when the build fails); a missing or too old Go, or a missing C
compiler, is said in the first line, before anything is built.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Iterator, Optional, Tuple

from setuptools import build_meta as _orig
from setuptools.build_meta import (  # noqa: F401 - re-exported hooks
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
MODULE_PATH = "github.com/fastreq/fastreq"

#: Where the sdist carries the Go module (inside the sdist's top directory).
ENGINE_DIR = "_engine"
#: What of the Go module the sdist carries: enough for `go build ./capi`.
ENGINE_FILES = ("go.mod", "go.sum", "LICENSE")
ENGINE_DIRS = ("capi", "core", "include")
ENGINE_SUFFIXES = (".go", ".c", ".h", ".s", ".S", ".in")
#: Go files built only for the tests (capi's cgo test hooks).
TEST_ONLY = re.compile(r"(?m)^//go:build fastreqtest\s*$")

#: Go releases from this one on fetch the toolchain go.mod asks for by
#: themselves (unless GOTOOLCHAIN=local).
GO_TOOLCHAIN_SWITCH = (1, 21)


class BuildError(RuntimeError):
    """A build that cannot go on; its message is meant for the user as is."""


def _log(msg: str) -> None:
    print(f"fastreq: {msg}", file=sys.stderr, flush=True)


def _is_module(path: Path) -> bool:
    gomod = path / "go.mod"
    if not gomod.is_file() or not (path / "capi").is_dir():
        return False
    return re.search(r"(?m)^module\s+" + re.escape(MODULE_PATH) + r"\s*$", gomod.read_text()) is not None


def _module_root() -> Path:
    root = os.environ.get("FASTREQ_GO_MODULE_ROOT")
    if root:
        path = Path(root).resolve()
        if not _is_module(path):
            raise BuildError(f"FASTREQ_GO_MODULE_ROOT={root} is not the fastreq Go module (go.mod, capi/)")
        return path
    for path in (PROJECT_DIR / ENGINE_DIR, PROJECT_DIR.parent):
        if _is_module(path):
            return path
    raise BuildError(
        f"cannot build libfastreq: neither {PROJECT_DIR / ENGINE_DIR} nor {PROJECT_DIR.parent} is the "
        "fastreq Go module (go.mod and capi/). Build from a checkout of the repository (pip install ./python) "
        "or from its sdist, set FASTREQ_GO_MODULE_ROOT to the repository root, or set "
        "FASTREQ_PREBUILT_LIBRARY to a built libfastreq."
    )


def _parse_version(text: str) -> Optional[Tuple[int, ...]]:
    """(1, 26, 0) from "go1.26.0", "1.26", "go1.26rc1" or "devel go1.27-abcdef"."""
    m = re.search(r"(?:^|go)(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
    if not m:
        return None
    return tuple(int(g or 0) for g in m.groups())


def required_go_version(root: Path) -> str:
    """The `go` line of the module's go.mod: the oldest Go that builds it."""
    m = re.search(r"(?m)^go\s+(\S+)\s*$", (root / "go.mod").read_text())
    return m.group(1) if m else "1.21"


def check_toolchain(root: Path) -> Tuple[str, str]:
    """Find go and the C compiler cgo will use; BuildError, with the one
    line to show, when either is missing or go is too old. Returns the go
    binary and its version."""
    need = required_go_version(root)
    go = os.environ.get("FASTREQ_GO") or shutil.which("go")
    if go and not os.path.isabs(go):
        go = shutil.which(go)
    if not go:
        raise BuildError(
            f"building from source needs Go >= {need} (found none); install a wheel instead or install Go")
    with tempfile.TemporaryDirectory(prefix="fastreq-goenv-") as outside:
        # Outside the module: the version of this go, not of the toolchain
        # it would switch to for go.mod.
        try:
            out = subprocess.run([go, "env", "GOVERSION", "GOTOOLCHAIN", "CC"], cwd=outside, capture_output=True,
                                 text=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as e:
            raise BuildError(f"building from source needs Go >= {need} ({go} does not run: {e}); "
                             "install a wheel instead or install Go") from e
    lines = out.stdout.splitlines() + ["", "", ""]
    found, toolchain, cc = lines[0].strip(), lines[1].strip(), lines[2].strip()
    have, want = _parse_version(found), _parse_version(need)
    if out.returncode != 0 or have is None:
        raise BuildError(f"building from source needs Go >= {need} ({go} does not say its version: "
                         f"{(out.stderr or out.stdout).strip()[:200]}); install a wheel instead or install Go")
    if want and have < want and not found.startswith("devel"):
        if have < GO_TOOLCHAIN_SWITCH or toolchain.startswith("local"):
            raise BuildError(f"building from source needs Go >= {need} (found {found}); "
                             "install a wheel instead or install Go")
        _log(f"{found} is older than go.mod's {need}: go fetches go{need} first (GOTOOLCHAIN={toolchain})")
    if os.environ.get("CGO_ENABLED", "1") != "0":
        cc = os.environ.get("CC") or cc or "gcc"
        try:
            cc_bin = shlex.split(cc)[0]
        except (ValueError, IndexError):
            cc_bin = cc
        if not shutil.which(cc_bin):
            raise BuildError(f"building from source needs a C compiler for cgo (found none: CC={cc}); "
                             "install a wheel instead or install gcc")
    return go, found


def build_library(dest: Path) -> Path:
    """Put the engine library at dest (copy a prebuilt one or compile it)."""
    prebuilt = os.environ.get("FASTREQ_PREBUILT_LIBRARY")
    if prebuilt:
        src = Path(prebuilt)
        if not src.is_file():
            raise BuildError(f"FASTREQ_PREBUILT_LIBRARY={prebuilt} does not name a file")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.resolve() != dest.resolve():
            shutil.copyfile(src, dest)
        _log(f"using the prebuilt library {src}")
        return dest
    root = _module_root()
    go, version = check_toolchain(root)
    dest.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("CGO_ENABLED", "1")
    cmd = [go, "build", "-trimpath", "-ldflags=-s -w", "-buildmode=c-shared", "-o", str(dest), "./capi"]
    cc = f", CC={env['CC']}" if env.get("CC") else ""
    _log(f"compiling the Go engine ({LIBRARY_NAME}) with {version}{cc}; about 30 s, longer on a first build")
    _log(f"in {root}: {' '.join(cmd)}")
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=str(root), env=env)
    while True:
        try:
            code = proc.wait(timeout=15)
            break
        except subprocess.TimeoutExpired:
            _log(f"still compiling ({time.monotonic() - start:.0f} s)")
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    if code != 0:
        raise BuildError(f"go build failed with exit code {code} (its output is above)")
    header = dest.with_suffix(".h")  # cgo writes its internal header beside the library
    if header.exists():
        header.unlink()
    _log(f"compiled {LIBRARY_NAME} ({dest.stat().st_size / 2**20:.1f} MiB) in {time.monotonic() - start:.0f} s")
    return dest


def _stage_license() -> None:
    """Copy the repository's LICENSE next to pyproject.toml, where
    setuptools' default license-files pattern finds it for the metadata,
    the wheel and the sdist alike (the file is ignored by git). Runs when
    the backend loads, so every hook sees the same files."""
    target = PROJECT_DIR / "LICENSE"
    if target.exists():
        return
    for root in (PROJECT_DIR / ENGINE_DIR, PROJECT_DIR.parent):
        if (root / "LICENSE").is_file() and _is_module(root):
            shutil.copyfile(root / "LICENSE", target)
            return


_stage_license()


def _fail(e: BuildError) -> "SystemExit":
    # The reason is the first line the user sees, without a traceback.
    _log(str(e))
    return SystemExit(1)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    try:
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
    except BuildError as e:
        raise _fail(e) from None


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    # The editable package runs from the source tree: the library goes there.
    try:
        build_library(PACKAGE_DIR / LIBRARY_NAME)
    except BuildError as e:
        raise _fail(e) from None
    return _orig.build_editable(wheel_directory, config_settings, metadata_directory)


def engine_files(root: Path) -> Iterator[Tuple[str, Path]]:
    """(path inside the module, file) for what `go build ./capi` needs:
    go.mod, go.sum, the license and the sources of capi/, core/ and
    include/, without tests, test-only files and test data."""
    for name in ENGINE_FILES:
        if (root / name).is_file():
            yield name, root / name
    for top in ENGINE_DIRS:
        for path in sorted((root / top).rglob("*")):
            rel = path.relative_to(root)
            if (not path.is_file() or path.suffix not in ENGINE_SUFFIXES or path.name.endswith("_test.go")
                    or any(p == "testdata" or p.startswith((".", "_")) for p in rel.parts)
                    or (path.suffix == ".go" and TEST_ONLY.search(path.read_text(errors="replace")[:4096]))):
                continue
            yield rel.as_posix(), path


def build_sdist(sdist_directory, config_settings=None):
    """setuptools' sdist plus the Go module under _engine/, so that pip can
    build the library from the sdist alone (with Go installed)."""
    try:
        root = _module_root()
    except BuildError as e:
        raise _fail(e) from None
    name = _orig.build_sdist(sdist_directory, config_settings)
    path = Path(sdist_directory) / name
    top = name[: -len(".tar.gz")]
    tmp = path.with_name(path.name + ".tmp")
    added = 0
    with tarfile.open(path, "r:gz") as src, tarfile.open(tmp, "w:gz", format=tarfile.PAX_FORMAT) as out:
        for member in src.getmembers():
            if member.name == f"{top}/{ENGINE_DIR}" or member.name.startswith(f"{top}/{ENGINE_DIR}/"):
                continue  # rebuilt below (an sdist built from an unpacked sdist)
            out.addfile(member, src.extractfile(member) if member.isfile() else None)
        for rel, file in engine_files(root):
            data = file.read_bytes()
            info = tarfile.TarInfo(f"{top}/{ENGINE_DIR}/{rel}")
            info.size, info.mode, info.mtime = len(data), 0o644, int(file.stat().st_mtime)
            out.addfile(info, io.BytesIO(data))
            added += 1
    os.replace(tmp, path)
    _log(f"added the Go engine's sources ({added} files from {root}) to {name} under {ENGINE_DIR}/")
    return name
