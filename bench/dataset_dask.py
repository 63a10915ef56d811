"""Benchmark of dataset rendering on dask.distributed from an indexed snapshot; same as
``cmc bench distributed``.

Usage: ``python bench/dataset_dask.py [--universe DIR] [--per-bin 5] [--workers 2] [--out DIR]``;
against a finished serial build: ``... --reference DATASET --indexed PATH [--index-log LOG]
[--types gas,stars] [--name NAME]`` (``--help``).
The implementation lives in :mod:`cmcore.benchmarks.distributed`.  (Not named
``bench/distributed.py``: a script's folder comes first on ``sys.path``, and that name
would shadow the ``distributed`` package.)
"""
import sys

import cmcore.benchmarks.distributed as benchmark
from cmcore.benchmarks import run_module

if __name__ == "__main__":
    sys.exit(run_module(benchmark, prog="python bench/dataset_dask.py"))
