"""Benchmark of the dataset builder; same as ``cmc bench dataset``.

Usage: ``python bench/dataset.py [--universe DIR] [--per-bin 5] [--workers 2] [--out DIR]``.
The implementation lives in :mod:`cmcore.benchmarks.dataset`.
"""
import sys

from cmcore.benchmarks.dataset import main

if __name__ == "__main__":
    sys.exit(main())
