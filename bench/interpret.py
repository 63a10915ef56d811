"""Benchmark of the Gaussian-mask scan; same as ``cmc bench interpret``.

Usage: ``python bench/interpret.py [--npix 120] [--sigma 5] [--stride 1] [--repeat 3] [--networks single,multi] [--out DIR]``.
The implementation lives in :mod:`cmcnn.benchmarks.interpret`.
"""
import sys

import cmcnn.benchmarks.interpret as benchmark
from cmcore.benchmarks import run_module

if __name__ == "__main__":
    sys.exit(run_module(benchmark, prog="python bench/interpret.py"))
