"""The ``cmc`` command line.

User errors (:class:`cmcore.CmcError`, bad values, unreadable files) end with a
one-line message on standard error and exit status 2; an interrupt exits with
130.  Set ``CMC_DEBUG=1`` to see the full traceback instead.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from cmcore import CmcError, __version__

from . import commands


def _command_modules() -> list:
    mods = []
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mods.append(importlib.import_module(f"{commands.__name__}.{info.name}"))
    return mods


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``cmc`` with every sub-command attached."""
    parser = argparse.ArgumentParser(
        prog="cmc",
        description=(
            "Galaxy-cluster masses from mock images: render, build datasets, "
            "train, evaluate, interpret and predict (Yan et al. 2020)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"cmc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cmc`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("cmc: interrupted", file=sys.stderr)
        return 130
    except (CmcError, ValueError, OSError) as exc:
        if os.environ.get("CMC_DEBUG"):
            raise
        msg = str(exc) or exc.__class__.__name__
        print(f"cmc {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
