"""pip builds a platform wheel holding libfastreq and py.typed, through the
in-tree build backend (here with FASTREQ_PREBUILT_LIBRARY, so no Go build)."""

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
