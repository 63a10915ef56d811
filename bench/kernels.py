"""Benchmark of the particle-to-image kernels; same as ``cmc bench kernels``.

Usage: ``python bench/kernels.py [--sizes 1e6 1e7] [--big] [--out DIR]``.
The implementation lives in :mod:`cmcore.benchmarks.kernels`.
"""
import sys

from cmcore.benchmarks.kernels import main

if __name__ == "__main__":
    sys.exit(main())
