"""Build the compiled core of cmc (Cython, OpenMP where the compiler has it).

Every ``src/cmcore/*.pyx`` becomes the extension ``cmcore.<name>``.  OpenMP is
probed with a tiny test compile: when the compiler (or its runtime) lacks it the
extension is built serially and still works.  No ``-march=native``: wheels stay
portable.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

OPENMP_TEST = r"""
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    return n > 0 ? 0 : 1;
}
"""


def _openmp_flags() -> tuple[list[str], list[str]]:
    """Return (compile, link) flags for OpenMP, or empty lists when unavailable."""
    if os.environ.get("CMC_DISABLE_OPENMP"):
        return [], []
    if sys.platform == "win32":
        return ["/openmp"], []
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cc = cc.split()[0]
    if shutil.which(cc) is None:
        return [], []
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp_test.c")
        with open(src, "w") as fh:
            fh.write(OPENMP_TEST)
        try:
            result = subprocess.run(
                [cc, "-fopenmp", src, "-o", os.path.join(tmp, "omp_test")],
                capture_output=True,
                timeout=60,
            )
        except (OSError, subprocess.SubprocessError):
            return [], []
        if result.returncode != 0:
            return [], []
    return ["-fopenmp"], ["-fopenmp"]


def extensions() -> list[Extension]:
    omp_compile, omp_link = _openmp_flags()
    if not omp_compile:
        print("cmc: OpenMP not available, building the kernels serially", file=sys.stderr)
    compile_args = ["-O3", "-fno-math-errno", "-fno-trapping-math"] + omp_compile
    if sys.platform == "win32":
        compile_args = ["/O2"] + omp_compile
    # C headers live next to the .pyx files (``cdef extern from "_kernels_simd.h"``) and
    # ship as package data, so an sdist builds too; <module>*.h are a module's
    # dependencies (a changed header recompiles it).
    src = os.path.join("src", "cmcore")
    exts = []
    for pyx in sorted(glob.glob(os.path.join(src, "*.pyx"))):
        stem = os.path.splitext(os.path.basename(pyx))[0]
        exts.append(
            Extension(
                "cmcore." + stem,
                [pyx],
                include_dirs=[src, np.get_include()],
                depends=sorted(glob.glob(os.path.join(src, stem + "*.h"))),
                extra_compile_args=compile_args,
                extra_link_args=omp_link,
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            )
        )
    return cythonize(
        exts,
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    )


setup(ext_modules=extensions())
