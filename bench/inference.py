"""Benchmark of inference; same as ``cmc bench inference``.

Usage: ``python bench/inference.py [--files 1e3 1e4 1e5] [--batches 1 4 16 64 256 1024]
[--threads 1 2] [--seconds 2] [--workdir DIR] [--out DIR]``.
The implementation lives in :mod:`cmcnn.benchmarks.inference`.
"""
import sys

import cmcnn.benchmarks.inference as benchmark
from cmcore.benchmarks import run_module

if __name__ == "__main__":
    sys.exit(run_module(benchmark, prog="python bench/inference.py"))
