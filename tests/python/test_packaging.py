"""Packaging, cheaply (nothing here compiles the engine):

* pip builds a platform wheel holding libfastreq and py.typed, through the
  in-tree build backend (here with FASTREQ_PREBUILT_LIBRARY, so no Go build);
* the backend says first and plainly when Go is missing or too old or cgo
  has no C compiler, finds the Go module of a checkout or of an unpacked
  sdist, and puts the engine's sources into the sdist;
* what `make wheel` left in dist/ (skipped without it): a manylinux wheel
  whose library needs no newer glibc than its tag says, and an sdist that
  carries the engine;
* run by tests/wheel/check.sh against the installed wheel: the package
  loads its own library, with no go and no C compiler on PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import PYTHON_DIR


def test_wheel_is_platform_specific_and_ships_the_library(tmp_path: Path, server):
    lib = os.environ.get("FASTREQ_LIBRARY")
    if not lib:
        pytest.skip("FASTREQ_LIBRARY is not set")
    src = tmp_path / "python"
    shutil.copytree(PYTHON_DIR, src, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__", "libfastreq.*", "dist"))
    # The build backend stages the repository's LICENSE beside pyproject.toml
    # (an sdist carries it there); a copy of python/ alone has no repository.
    shutil.copyfile(PYTHON_DIR.parent / "LICENSE", src / "LICENSE")
    env = dict(os.environ, FASTREQ_PREBUILT_LIBRARY=lib, PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(src)],
                         capture_output=True, text=True, env=env, timeout=240)
    if out.returncode != 0 and ("Could not find a version" in out.stderr or "NewConnectionError" in out.stderr):
        pytest.skip("no package index to install the build requirements from")
    assert out.returncode == 0, out.stdout + out.stderr
    wheels = list((tmp_path / "dist").glob("fastreq-*.whl"))
    assert len(wheels) == 1
    name = wheels[0].name
    assert name.endswith(".whl") and "-py3-none-" in name and not name.endswith("-any.whl")
    with zipfile.ZipFile(wheels[0]) as z:
        names = set(z.namelist())
        assert "fastreq/libfastreq.so" in names and "fastreq/py.typed" in names
        assert "fastreq/__init__.py" in names and "fastreq/_ffi.py" in names
        # The MIT license travels with the wheel (the repository's LICENSE).
        license_file = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
        assert z.read(license_file) == (Path(__file__).resolve().parents[2] / "LICENSE").read_bytes()
        wheel_meta = next(n for n in names if n.endswith(".dist-info/WHEEL"))
        assert "Root-Is-Purelib: false" in z.read(wheel_meta).decode()
        metadata = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        assert "Requires-Dist" not in metadata.replace("extra ==", "")  or all(
            "extra ==" in ln for ln in metadata.splitlines() if ln.startswith("Requires-Dist"))
        assert z.getinfo("fastreq/libfastreq.so").file_size == Path(lib).stat().st_size

    # Installed without FASTREQ_LIBRARY, the package loads its own copy.
    target = tmp_path / "site"
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target),
                          str(wheels[0])], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    env2 = {k: v for k, v in os.environ.items() if k not in ("FASTREQ_LIBRARY", "PYTHONPATH")}
    env2["PYTHONPATH"] = str(target)
    code = ("import sys, fastreq; r = fastreq.fastreq(sys.argv[1]); "
            "print(r['id'], fastreq.engine.library_path())")
    out = subprocess.run([sys.executable, "-c", code, server.url("/x/json")], capture_output=True, text=True,
                         env=env2, timeout=60, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    ident, path = out.stdout.split()
    assert ident == "12345" and Path(path).parent == target / "fastreq"


# ---- the build backend, without building anything ---------------------------

REPO = PYTHON_DIR.parent
BACKEND_DIR = PYTHON_DIR / "_backend"
DIST = REPO / "dist"


def _go_mod_version() -> str:
    import re
    return re.search(r"(?m)^go\s+(\S+)\s*$", (REPO / "go.mod").read_text()).group(1)


@pytest.fixture
def backend(monkeypatch):
    """The build backend module (imported from python/_backend)."""
    if not (BACKEND_DIR / "fastreq_build_backend.py").is_file():
        pytest.skip("no python/_backend here (tests run from a copy against an installed wheel)")
    pytest.importorskip("setuptools.build_meta")
    monkeypatch.syspath_prepend(str(BACKEND_DIR))
    import fastreq_build_backend
    for var in ("FASTREQ_GO", "FASTREQ_PREBUILT_LIBRARY", "FASTREQ_GO_MODULE_ROOT", "CC", "CGO_ENABLED",
                "GOTOOLCHAIN"):
        monkeypatch.delenv(var, raising=False)
    return fastreq_build_backend


def _fake_go(bindir: Path, version: str, toolchain: str = "auto") -> None:
    """A `go` that answers `go env GOVERSION GOTOOLCHAIN CC` only."""
    bindir.mkdir(exist_ok=True)
    go = bindir / "go"
    go.write_text(f"#!/bin/sh\nprintf '%s\\n' {version} {toolchain} gcc\n")
    go.chmod(0o755)


def test_go_missing_is_the_first_line_of_a_failed_build(backend, tmp_path):
    """pip shows a failed hook's output: the reason comes first, no traceback."""
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("FASTREQ_GO", "FASTREQ_PREBUILT_LIBRARY", "FASTREQ_GO_MODULE_ROOT", "PYTHONPATH")}
    env["PATH"] = str(empty)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import fastreq_build_backend as b; "
            "b.build_wheel(sys.argv[2])")
    out = subprocess.run([sys.executable, "-c", code, str(BACKEND_DIR), str(tmp_path / "out")],
                         capture_output=True, text=True, env=env, timeout=60, cwd=str(PYTHON_DIR))
    assert out.returncode == 1, out.stderr
    lines = out.stderr.splitlines()
    assert lines[0] == (f"fastreq: building from source needs Go >= {_go_mod_version()} (found none); "
                        "install a wheel instead or install Go"), out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "out").exists()


def test_go_too_old_or_no_c_compiler_is_said_plainly(backend, tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    monkeypatch.setenv("PATH", str(bindir))
    need = _go_mod_version()

    _fake_go(bindir, "go1.20.5")  # before toolchain switching
    with pytest.raises(backend.BuildError) as e:
        backend.check_toolchain(REPO)
    assert str(e.value) == (f"building from source needs Go >= {need} (found go1.20.5); "
                            "install a wheel instead or install Go")

    _fake_go(bindir, "go1.22.0", "local")  # could switch, but told not to
    with pytest.raises(backend.BuildError, match=r"needs Go >= .* \(found go1\.22\.0\)"):
        backend.check_toolchain(REPO)

    _fake_go(bindir, "go1.99.0")  # new enough, but no gcc on PATH
    with pytest.raises(backend.BuildError) as e:
        backend.check_toolchain(REPO)
    assert str(e.value) == ("building from source needs a C compiler for cgo (found none: CC=gcc); "
                            "install a wheel instead or install gcc")

    (bindir / "gcc").write_text("#!/bin/sh\n")
    (bindir / "gcc").chmod(0o755)
    assert backend.check_toolchain(REPO) == (str(bindir / "go"), "go1.99.0")


def test_version_parsing(backend):
    p = backend._parse_version
    assert p("go1.26.8") == (1, 26, 8) and p("1.26") == (1, 26, 0) and p("go1.27rc1") == (1, 27, 0)
    assert p("devel go1.27-abcdef Tue") == (1, 27, 0) and p("nonsense") is None


def test_sdist_carries_the_go_sources_build_needs(backend):
    files = dict(backend.engine_files(REPO))
    for name in ("go.mod", "go.sum", "LICENSE", "include/fastreq.h", "capi/exports.go", "capi/queue.go",
                 "core/client.go"):
        assert name in files, name
    assert not [n for n in files if n.endswith("_test.go") or "testdata" in n]
    # Every source of the packages `go build ./capi` compiles, and no file
    # built only for the tests (-tags fastreqtest).
    for pkg in ("capi", "core"):
        for src in (REPO / pkg).iterdir():
            if src.suffix in (".go", ".c", ".h") and not src.name.endswith("_test.go"):
                test_only = src.suffix == ".go" and "//go:build fastreqtest\n" in src.read_text()
                assert (f"{pkg}/{src.name}" in files) != test_only, src


def test_module_root_prefers_the_sdist_engine(backend, tmp_path, monkeypatch):
    """An unpacked sdist builds from its _engine/, a checkout from python/..;
    anything else is refused with the ways out."""
    assert backend._module_root() == REPO
    monkeypatch.setenv("FASTREQ_GO_MODULE_ROOT", str(tmp_path))
    with pytest.raises(backend.BuildError, match="not the fastreq Go module"):
        backend._module_root()
    (tmp_path / "capi").mkdir()
    (tmp_path / "go.mod").write_text("module example.com/other\n\ngo 1.22\n")
    with pytest.raises(backend.BuildError):
        backend._module_root()
    (tmp_path / "go.mod").write_text("module github.com/fastreq/fastreq\n\ngo 1.26.0\n")
    assert backend._module_root() == tmp_path.resolve()


# ---- what `make wheel` left in dist/ (skipped when it has not run) ------------

def _dist(pattern: str) -> Path:
    found = sorted(DIST.glob(pattern))
    if not found:
        pytest.skip(f"no {pattern} in dist/ (make wheel)")
    assert len(found) == 1, found
    return found[0]


def _version() -> str:
    import re
    text = (PYTHON_DIR / "fastreq" / "_version.py").read_text()
    return re.search(r'^__version__ = "(.*)"', text, re.M).group(1)


def test_dist_wheel_is_manylinux_and_ships_the_library():
    import re
    wheel = _dist("fastreq-*.whl")
    m = re.fullmatch(r"fastreq-(?P<v>[^-]+)-py3-none-(?P<plat>[^-]+)\.whl", wheel.name)
    assert m, wheel.name
    if m["v"] != _version():
        pytest.skip(f"dist/ holds fastreq {m['v']}, the sources are {_version()} (make wheel)")
    plats = m["plat"].split(".")
    manylinux = [p for p in plats if re.fullmatch(r"manylinux_\d+_\d+_x86_64|manylinux_\d+_\d+_aarch64", p)]
    assert manylinux and all(p.startswith("manylinux") for p in plats), plats
    glibc = tuple(int(x) for x in manylinux[0].split("_")[1:3])
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert {"fastreq/libfastreq.so", "fastreq/py.typed", "fastreq/__init__.py", "fastreq/_ffi.py"} <= names
        assert not [n for n in names if n.startswith(("fastreq.libs/", "_backend/")) or n.endswith(".h")]
        info = z.read(next(n for n in names if n.endswith(".dist-info/WHEEL"))).decode()
        assert "Root-Is-Purelib: false" in info
        tags = [ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("Tag:")]
        assert sorted(tags) == sorted(f"py3-none-{p}" for p in plats), (tags, plats)
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        assert "Name: fastreq" in meta and f"Version: {_version()}" in meta
        lib = z.read("fastreq/libfastreq.so")
        assert (z.getinfo("fastreq/libfastreq.so").external_attr >> 16) & 0o111, "the library is not executable"
    # The library asks for no glibc symbol newer than the tag allows.
    versions = {tuple(int(x) for x in v.split(".")) for v in re.findall(rb"GLIBC_(\d+\.\d+(?:\.\d+)?)", lib)
                for v in [v.decode()]}
    assert versions and max(versions)[:2] <= glibc, (sorted(versions)[-3:], manylinux)


def test_dist_sdist_carries_the_engine():
    import tarfile
    sdist = _dist("fastreq-*.tar.gz")
    top = sdist.name[: -len(".tar.gz")]
    if top != f"fastreq-{_version()}":
        pytest.skip(f"dist/ holds {top}, the sources are {_version()} (make wheel)")
    with tarfile.open(sdist) as t:
        names = set(t.getnames())
    for name in ("PKG-INFO", "pyproject.toml", "setup.py", "_backend/fastreq_build_backend.py",
                 "fastreq/__init__.py", "_engine/go.mod", "_engine/go.sum", "_engine/capi/exports.go",
                 "_engine/core/client.go", "_engine/include/fastreq.h"):
        assert f"{top}/{name}" in names, name
    assert not [n for n in names if n.endswith("_test.go") or "/testdata/" in n or n.endswith(".so")]


# ---- the installed wheel (tests/wheel/check.sh sets FASTREQ_TEST_INSTALLED_WHEEL) --

@pytest.mark.skipif(not os.environ.get("FASTREQ_TEST_INSTALLED_WHEEL"), reason="not run against an installed wheel")
def test_installed_wheel_runs_its_own_library_without_a_toolchain(server):
    from importlib import metadata

    import fastreq
    assert {t: shutil.which(t) for t in ("go", "cc", "gcc", "clang")} == dict.fromkeys(("go", "cc", "gcc", "clang"))
    assert "FASTREQ_LIBRARY" not in os.environ
    prefix = os.path.realpath(sys.prefix)
    pkg = os.path.realpath(fastreq.__path__[0])
    assert pkg.startswith(prefix + os.sep), pkg
    assert fastreq.fastreq(server.url("/x/json"))["id"] == 12345
    assert os.path.realpath(fastreq.engine.library_path()) == os.path.join(pkg, "libfastreq.so")
    wheel_info = metadata.distribution("fastreq").read_text("WHEEL")
    assert "Tag: py3-none-manylinux" in wheel_info, wheel_info
