"""setuptools glue for the platform wheel; the build backend
(_backend/fastreq_build_backend.py) compiles the engine and passes its path
in FASTREQ_STAGED_LIBRARY. Metadata lives in pyproject.toml."""

import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel


class BinaryDistribution(Distribution):
    """The wheel carries a native library: not pure Python."""

    def has_ext_modules(self):
        return True


class BuildPy(build_py):
    def run(self):
        super().run()
        staged = os.environ.get("FASTREQ_STAGED_LIBRARY")
        if staged:
            dest = os.path.join(self.build_lib, "fastreq", os.path.basename(staged))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copyfile(staged, dest)
            os.chmod(dest, 0o755)


class BdistWheel(bdist_wheel):
    def finalize_options(self):
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self):
        # ctypes loads the library: any Python 3, no ABI, one platform.
        _, _, plat = super().get_tag()
        return "py3", "none", plat


setup(distclass=BinaryDistribution, cmdclass={"build_py": BuildPy, "bdist_wheel": BdistWheel})
