"""``cmc bench TARGET [OPTIONS]``: run a benchmark, print its table, write its JSON.

Targets are registered in :data:`TARGETS` as ``name -> (help, module path)``; the
module provides ``add_arguments(parser)`` and ``run_from_args(args) -> int``, so a
new target (e.g. ``dataset``) is one more entry.  A target's module, and what it
imports, is loaded only when that target runs (``cmc --help`` stays fast); its
options are parsed then, so ``cmc bench kernels --help`` lists them.
"""
from __future__ import annotations

import argparse
import importlib

NAME = "bench"
HELP = ("run a benchmark (kernels, centres, dataset, train, interpret, inference, distributed: ratios against a "
        "baseline; "
        "synth, halos: "
        "recorded scale runs) and write its JSON and table atomically")

#: Benchmark targets: name -> (one-line help, module implementing it).
TARGETS: dict[str, tuple[str, str]] = {
    "kernels": ("particle-to-image kernels against NumPy and swiftsimio; the cell index",
                "cmcore.benchmarks.kernels"),
    "centres": ("compiled shrinking-sphere halo centres against the same algorithm in NumPy",
                "cmcore.benchmarks.centres"),
    "dataset": ("training-set builder: images per second, serial against worker processes",
                "cmcore.benchmarks.dataset"),
    "train": ("CNN training images/s (single- and multi-channel, 1 and 2 threads) against Keras fit",
              "cmcnn.benchmarks.train"),
    "synth": ("synthetic-universe generator: wall time, peak memory and particles of a preset",
              "cmcore.benchmarks.synth"),
    "interpret": ("Gaussian-mask scan: exact windowed reuse against brute force through onnxruntime",
                  "cmcnn.benchmarks.interpret"),
    "inference": ("onnxruntime against Keras predict; cmc predict end to end over FITS cutouts",
                  "cmcnn.benchmarks.inference"),
    "halos": ("record a cmc halos run (its /usr/bin/time -v log) and its catalogue against the true one",
              "cmcore.benchmarks.halos"),
    "distributed": ("dataset on dask.distributed from an indexed snapshot: images/s and memory per worker",
                    "cmcore.benchmarks.distributed"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    for name, (help_, module) in TARGETS.items():
        # prefix "+": every "-..." option after the target name is passed through
        p = sub.add_parser(name, help=help_, description=help_, add_help=False,
                           prefix_chars="+")
        p.add_argument("options", nargs=argparse.REMAINDER,
                       help=f"options of the target (cmc bench {name} --help)")
        p.set_defaults(_bench_module=module, _bench_name=name)


def run(args: argparse.Namespace) -> int:
    module = importlib.import_module(args._bench_module)
    parser = argparse.ArgumentParser(prog=f"cmc bench {args._bench_name}",
                                     description=TARGETS[args._bench_name][0])
    module.add_arguments(parser)
    return int(module.run_from_args(parser.parse_args(args.options)))
