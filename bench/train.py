"""Benchmark of CNN training throughput; same as ``cmc bench train``.

Usage: ``python bench/train.py [--images 500] [--threads 1,2] [--networks single,multi] [--out bench/results]``.
The implementation lives in :mod:`cmcnn.benchmarks.train`.
"""
import argparse
import sys

from cmcnn.benchmarks.train import add_arguments, run_from_args

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python bench/train.py")
    add_arguments(parser)
    sys.exit(run_from_args(parser.parse_args()))
