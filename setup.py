"""setup.py: the ssmlab Python package for pip, built by the project's own CMake.

    /usr/bin/python3 -m pip install --no-build-isolation --no-deps --no-index --prefix P .

--no-build-isolation uses Debian's setuptools and wheel instead of downloading them (PyPI is not
needed); --prefix P installs into P's site-packages (Debian's pip refuses to write into the
system's Python, PEP 668). The extension is compiled like the rest of ssmlab, for this machine's
CPU (-march=native): the result is for this machine, not a wheel to ship elsewhere. CMake builds
in build/pip/ (only the library and the module: no apps, tests, benchmarks or CUDA), so a second
install is incremental. With SSMLAB_CMAKE_BUILD_DIR=DIR it instead builds the target ssmlab_py
in DIR, an existing configured build tree (the test suite's own, so the test of this path does
not compile everything a second time).
"""
import glob
import os
import re
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(ROOT, "CMakeLists.txt"), encoding="utf-8") as f:
    VERSION = re.search(r"project\(ssmlab VERSION ([0-9.]+)", f.read()).group(1)


class CMakeExtension(Extension):
    """The compiled part, ssmlab._core, whose sources CMake knows (python/CMakeLists.txt)."""

    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build = os.environ.get("SSMLAB_CMAKE_BUILD_DIR")
        if build:
            if not os.path.isfile(os.path.join(build, "CMakeCache.txt")):
                raise RuntimeError("SSMLAB_CMAKE_BUILD_DIR=%s is not a configured CMake build tree" % build)
        else:
            build = os.path.join(ROOT, "build", "pip")
            self.configure(build)
        subprocess.check_call(["cmake", "--build", build, "--target", "ssmlab_py",
                               "-j", str(os.cpu_count() or 1)])
        built = glob.glob(os.path.join(build, "python", "ssmlab", "_core*.so"))
        if len(built) != 1:
            raise RuntimeError("CMake built %d ssmlab/_core*.so in %s, expected one" % (len(built), build))
        dest = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(built[0], dest)

    @staticmethod
    def configure(build):
        subprocess.check_call([
            "cmake", "-S", ROOT, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
            "-DSSM_BUILD_APPS=OFF", "-DSSM_BUILD_TESTS=OFF", "-DSSM_BUILD_BENCH=OFF",
            "-DSSM_BUILD_CUDA=OFF", "-DSSM_BUILD_PYTHON=ON", "-DPython_EXECUTABLE=" + sys.executable])


setup(
    name="ssmlab",
    version=VERSION,
    description="From a continuous state space model to Mamba, stage by stage",
    packages=["ssmlab"],
    package_dir={"ssmlab": "python/package"},
    ext_modules=[CMakeExtension("ssmlab._core")],
    cmdclass={"build_ext": CMakeBuild},
    python_requires=">=3.8",
    zip_safe=False,
)
