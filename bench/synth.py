"""Recorded run of ``cmc synth``: wall time, peak memory, particles; same as ``cmc bench synth``.

Usage: ``python bench/synth.py [--preset small|paper] [--seed 0] [--out DIR]``.
The implementation lives in :mod:`cmcore.benchmarks.synth`.
"""
import sys

from cmcore.benchmarks.synth import main

if __name__ == "__main__":
    sys.exit(main())
