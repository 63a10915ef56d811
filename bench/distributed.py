"""Benchmark of dataset rendering on dask.distributed from an indexed snapshot; same as
``cmc bench distributed``.

Usage: ``python bench/distributed.py [--universe DIR] [--per-bin 5] [--workers 2] [--out DIR]``.
The implementation lives in :mod:`cmcore.benchmarks.distributed`.
"""
import sys

from cmcore.benchmarks.distributed import main

if __name__ == "__main__":
    sys.exit(main())
