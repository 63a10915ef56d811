"""Benchmark of the compiled shrinking-sphere centres against NumPy.

Usage: ``python bench/centres.py [--sizes 1e3 1e4 1e5] [--groups 20] [--out DIR]``.
The implementation lives in :mod:`cmcore.benchmarks.centres`.
"""
import sys

import cmcore.benchmarks.centres as benchmark
from cmcore.benchmarks import run_module

if __name__ == "__main__":
    sys.exit(run_module(benchmark, prog="python bench/centres.py"))
