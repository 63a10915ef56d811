"""``cmc synth-plots``: the relations of a synthetic universe against the literature (PNG)."""
from __future__ import annotations

import argparse

NAME = "synth-plots"
HELP = ("plot the relations measured from a synthetic universe's particles against the "
        "literature relations it was built from")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory", help="folder written by `cmc synth`")
    p.add_argument("--out", required=True, help="figure to write (PNG, PDF, SVG)")


def run(args: argparse.Namespace) -> int:
    from cmcore.synth.plots import plot_relations

    path = plot_relations(args.directory, args.out)
    print(f"{path}: relations figure written")
    return 0
