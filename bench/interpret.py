"""Benchmark of the Gaussian-mask scan; same as ``cmc bench interpret``.

Usage: ``python bench/interpret.py [--npix 120] [--sigma 5] [--stride 1] [--networks single,multi] [--out DIR]``.
The implementation lives in :mod:`cmcnn.benchmarks.interpret`.
"""
import sys

from cmcnn.benchmarks.interpret import main

if __name__ == "__main__":
    sys.exit(main())
