"""``cmc synth``: generate the built-in synthetic universe (snapshot, halo catalogue, synth.json)."""
from __future__ import annotations

import argparse

NAME = "synth"
HELP = ("generate a synthetic universe: EAGLE-style snapshot, cmc-halos catalogue with M200 "
        "from the particles, and synth.json (presets tiny, small, paper)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="tiny", choices=("tiny", "small", "paper"),
                   help="tiny: CI (30 clusters); small: the demo (150 clusters in 100 cMpc/h); "
                        "paper: 2000 clusters in 400 cMpc/h (recorded times and memory: "
                        "bench/results/synth-*.json). Default tiny")
    p.add_argument("--seed", type=int, default=0, help="master seed, >= 0 (default 0)")
    p.add_argument("--out", required=True, help="output folder (snapshot.hdf5, halos.h5, synth.json)")
    p.add_argument("--clusters-per-bin", type=int, default=None,
                   help="override the preset's target clusters per 0.2-dex bin (10 bins over 13-15)")
    p.add_argument("--box-size", type=float, default=None, metavar="MPC_H",
                   help="override the preset's box side [cMpc/h]")
    p.add_argument("--workers", type=int, default=1,
                   help="processes realising the haloes; the files are identical for any number "
                        "(default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from cmcore.synth import generate

    overrides = {}
    if args.clusters_per_bin is not None:
        overrides["clusters_per_bin"] = args.clusters_per_bin
    if args.box_size is not None:
        overrides["box_size_h"] = args.box_size
    if args.no_progress:
        overrides["progress"] = False
    result = generate(args.preset, seed=args.seed, out=args.out, workers=args.workers, **overrides)
    counts = ", ".join(f"{n} {t}" for t, n in result.n_particles.items())
    print(f"{result.out}: {len(result.targets['halo_id'])} target clusters, {counts} particles "
          f"in {result.seconds:.1f} s")
    return 0
