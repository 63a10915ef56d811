"""Benchmark of CNN training throughput; same as ``cmc bench train``.

Usage: ``python bench/train.py [--images 500] [--threads 1,2] [--networks single,multi] [--out bench/results]``.
The implementation lives in :mod:`cmcnn.benchmarks.train`.
"""
import sys

import cmcnn.benchmarks.train as benchmark
from cmcore.benchmarks import run_module

if __name__ == "__main__":
    sys.exit(run_module(benchmark, prog="python bench/train.py"))
