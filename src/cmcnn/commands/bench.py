"""``cmc bench TARGET [OPTIONS]``: run a benchmark, print its table, write its JSON.

The targets are the modules of :mod:`cmcore.benchmarks` and :mod:`cmcnn.benchmarks`, each
providing ``add_arguments(parser)`` and ``run_from_args(args)`` (run through
:func:`cmcore.benchmarks.run_module`, as ``python -m`` and ``bench/*.py`` run them): a new
benchmark is one more module.  A target's help is its docstring's first line, read without
importing it, so ``cmc --help`` stays fast; its options are parsed when it runs
(``cmc bench kernels --help`` lists them).
"""
from __future__ import annotations

import argparse
import ast
import importlib
import pkgutil
from pathlib import Path

NAME = "bench"
HELP = "run a benchmark (ratios against a baseline, or a recorded scale run) and write its JSON and table atomically"

#: Packages whose modules are benchmark targets.
PACKAGES = ("cmcore.benchmarks", "cmcnn.benchmarks")


def targets() -> dict[str, tuple[str, str]]:
    """Benchmark name -> (one-line help, module), found in :data:`PACKAGES`."""
    found = {}
    for package in PACKAGES:
        pkg = importlib.import_module(package)
        for info in pkgutil.iter_modules(pkg.__path__):
            if info.name.startswith("_"):
                continue
            path = Path(pkg.__path__[0]) / f"{info.name}.py"
            doc = ast.get_docstring(ast.parse(path.read_text())) or info.name
            found[info.name] = (doc.strip().splitlines()[0], f"{package}.{info.name}")
    return dict(sorted(found.items()))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    for name, (help_, module) in targets().items():
        # prefix "+": every "-..." option after the target name is passed through
        p = sub.add_parser(name, help=help_, description=help_, add_help=False, prefix_chars="+")
        p.add_argument("options", nargs=argparse.REMAINDER, help=f"options of the target (cmc bench {name} --help)")
        p.set_defaults(_bench_module=module, _bench_name=name)


def run(args: argparse.Namespace) -> int:
    from cmcore.benchmarks import run_module

    return run_module(importlib.import_module(args._bench_module), args.options, prog=f"cmc bench {args._bench_name}")
