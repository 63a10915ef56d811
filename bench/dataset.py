"""Benchmark of the dataset builder; same as ``cmc bench dataset``.

Usage: ``python bench/dataset.py [--universe DIR] [--per-bin 5] [--workers 2] [--out DIR]``.
The implementation lives in :mod:`cmcore.benchmarks.dataset`.
"""
import sys

import cmcore.benchmarks.dataset as benchmark
from cmcore.benchmarks import run_module

if __name__ == "__main__":
    sys.exit(run_module(benchmark, prog="python bench/dataset.py"))
