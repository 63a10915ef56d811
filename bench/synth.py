"""Recorded run of ``cmc synth``: wall time, peak memory, particles; same as ``cmc bench synth``.

Usage: ``python bench/synth.py [--preset small|paper] [--seed 0] [--out DIR]``.
The implementation lives in :mod:`cmcore.benchmarks.synth`.
"""
import sys

import cmcore.benchmarks.synth as benchmark
from cmcore.benchmarks import run_module

if __name__ == "__main__":
    sys.exit(run_module(benchmark, prog="python bench/synth.py"))
