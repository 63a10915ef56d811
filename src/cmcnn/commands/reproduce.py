"""``cmc reproduce``: the paper's experiment grid, ablations included, in one resumable command."""
from __future__ import annotations

import argparse

NAME = "reproduce"
HELP = ("rerun Yan et al. 2020's experiments (five networks, Table 2 and Figs 4-7 with the classical "
        "baseline, no-interloper ablation, Planck-like y, stellar-noise readings) into one report; "
        "rerun the same command to resume")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scale", default="quick", choices=("quick", "full", "test"), metavar="{quick,full}",
                   help="quick: reduced universe and epochs, about 30 min on 2 CPU cores; full: the paper's "
                        "size (2000 clusters, 1000 epochs; uses the GPU when present). Default quick")
    p.add_argument("--out", required=True, help="output folder (rerun with the same folder to resume)")
    p.add_argument("--snapshot", default=None, help="snapshot to use instead of the built-in universe")
    p.add_argument("--halos", default=None, help="halo catalogue of --snapshot")
    p.add_argument("--seed", type=int, default=0, help="seed of universe, datasets and trainings (default 0)")
    p.add_argument("--workers", type=int, default=None, help="dataset rendering threads (default: CPU count, <= 8)")
    p.add_argument("--threads", type=int, default=None, help="TensorFlow CPU threads (default: all)")
    p.add_argument("--plan", action="store_true", help="print the steps, their state and the time estimate; run nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (step lines only)")


def run(args: argparse.Namespace) -> int:
    from cmcnn.workflows.reproduce import reproduce

    reproduce(args.out, args.scale, snapshot=args.snapshot, halos=args.halos, seed=args.seed,
              workers=args.workers, threads=args.threads, progress=not args.no_progress, plan_only=args.plan)
    return 0
