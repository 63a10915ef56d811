"""``cmc demo``: the main job on the built-in default data, end to end.

Generates the synthetic universe, renders the paper-protocol dataset from it and
draws example images; every step resumes where an earlier run stopped.  Later
stages (training, evaluation, export) join here as they are built.
"""
from __future__ import annotations

import argparse

NAME = "demo"
HELP = "run the main job on the built-in synthetic universe (synth -> dataset -> figures)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="cmc-demo", help="output folder (default cmc-demo)")
    p.add_argument("--preset", default="small", choices=("tiny", "small", "paper"),
                   help="synthetic-universe preset (default small)")
    p.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    p.add_argument("--workers", type=int, default=2, help="haloes rendered concurrently (default 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from cmcore.dataset import DatasetConfig, build_dataset, open_dataset
    from cmcore.figures import dataset_montage
    from cmcore.synth import generate

    out = Path(args.out)
    universe = out / "universe"
    progress = not args.no_progress
    if (universe / "synth.json").is_file():
        print(f"[1/3] synthetic universe: {universe} already complete")
    else:
        print(f"[1/3] synthetic universe ({args.preset} preset, seed {args.seed}) -> {universe}")
        result = generate(args.preset, seed=args.seed, out=universe, progress=progress)
        counts = ", ".join(f"{n:,} {t}" for t, n in result.n_particles.items())
        print(f"      {len(result.targets['halo_id'])} clusters, {counts} particles, {result.seconds:.0f} s")

    data = out / "dataset.h5"
    print(f"[2/3] dataset (paper protocol: 4 projections, Star/Fxs/Fxb/Ypar, paper instrument) -> {data}")
    config = DatasetConfig(seed=args.seed)
    summary = build_dataset(universe / "snapshot.hdf5", universe / "halos.h5", data,
                            config, workers=args.workers, progress=progress)
    if summary.n_new:
        print(f"      {summary.n_new} images of {summary.n_haloes} haloes, "
              f"{summary.images_per_second:.1f} images/s")
    else:
        print(f"      already complete: {summary.n_images} images")

    figure = dataset_montage(data, out / "dataset_montage.png")
    print(f"[3/3] example images -> {figure}")
    with open_dataset(data) as f:
        logm = f["labels/log10_m200"][:]
        split = f["labels/split"][:]
        print("\n  log10 M200 bin   images   median central Ypar   median central Fxb [erg/s/cm2]")
        npix = f["images/Ypar"].shape[1]
        c = slice(npix // 2 - 3, npix // 2 + 3)
        ypar = f["images/Ypar"][:, c, c].mean(axis=(1, 2))
        fxb = f["images/Fxb"][:, c, c].mean(axis=(1, 2))
    edges = config.bin_edges
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (logm >= lo) & ((logm < hi) if hi < edges[-1] else (logm <= hi))
        if sel.any():
            print(f"  {lo:5.2f}-{hi:5.2f}   {sel.sum():6d}   {np.median(ypar[sel]):19.3e}   {np.median(fxb[sel]):19.3e}")
    print(f"\n  split by halo: {np.bincount(split, minlength=3).tolist()} images in train/validation/test")
    return 0
