"""Record a ``cmc halos`` run (its ``/usr/bin/time -v`` log) and its catalogue against the truth;
same as ``cmc bench halos``.

Usage::

    flock /tmp/cmc-bigmem.lock nice -n 10 /usr/bin/time -v cmc halos SNAP --out found.h5 2> time.log
    python bench/halos.py --time-log time.log --found found.h5 --truth UNIVERSE/halos.h5 [--top 500]

The implementation lives in :mod:`cmcore.benchmarks.halos`.
"""
import sys

import cmcore.benchmarks.halos as benchmark
from cmcore.benchmarks import run_module

if __name__ == "__main__":
    sys.exit(run_module(benchmark, prog="python bench/halos.py"))
