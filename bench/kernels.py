"""Benchmark of the particle-to-image kernels; same as ``cmc bench kernels``.

Usage: ``python bench/kernels.py [--sizes 1e6 1e7] [--big] [--out DIR]``.
The implementation lives in :mod:`cmcore.benchmarks.kernels`.
"""
import sys

import cmcore.benchmarks.kernels as benchmark
from cmcore.benchmarks import run_module

if __name__ == "__main__":
    sys.exit(run_module(benchmark, prog="python bench/kernels.py"))
