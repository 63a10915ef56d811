"""``cmc bench TARGET``: run a benchmark, print its table, write its JSON.

Targets are registered in :data:`TARGETS` as ``name -> (help, module path)``; the
module provides ``add_arguments(parser)`` and ``run_from_args(args) -> int``, so a
new target (e.g. ``dataset``) is one more entry.
"""
from __future__ import annotations

import argparse
import importlib

NAME = "bench"
HELP = "run a benchmark (kernels) and print ratios against its baseline"

#: Benchmark targets: name -> (one-line help, module implementing it).
TARGETS: dict[str, tuple[str, str]] = {
    "kernels": ("particle-to-image kernels against NumPy and swiftsimio; the cell index",
                "cmcore.benchmarks.kernels"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    for name, (help_, module) in TARGETS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_bench_module=module)
        importlib.import_module(module).add_arguments(p)


def run(args: argparse.Namespace) -> int:
    return int(importlib.import_module(args._bench_module).run_from_args(args))
