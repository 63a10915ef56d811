"""``cmc demo``: the main job on the built-in default data, end to end (:mod:`cmcnn.workflows.demo`)."""
from __future__ import annotations

import argparse

NAME = "demo"
HELP = ("run the main job on the built-in synthetic universe: synth -> dataset -> predict with the shipped "
        "networks -> Table 2 beside the classical baseline -> mask scan -> report")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="cmc-demo", help="output folder (default cmc-demo); rerun to resume")
    p.add_argument("--quick", action="store_true",
                   help="the tiny universe (30 clusters) and a coarser mask scan: about a minute")
    p.add_argument("--preset", default=None, choices=("tiny", "small", "paper"),
                   help="synthetic-universe preset (default small; tiny with --quick)")
    p.add_argument("--seed", type=int, default=1,
                   help="root seed (default 1; 0 is refused: it draws the shipped networks' training clusters)")
    p.add_argument("--workers", type=int, default=2, help="haloes rendered concurrently (default 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from cmcnn.workflows.demo import run_demo, summary_lines

    summary = run_demo(args.out, quick=args.quick, preset=args.preset, seed=args.seed, workers=args.workers,
                       progress=not args.no_progress)
    print("\n".join(summary_lines(summary)))
    return 0
