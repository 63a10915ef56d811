"""``cmc dataset``: render a paper-protocol training set into one HDF5 file."""
from __future__ import annotations

import argparse

NAME = "dataset"
HELP = "render a paper-protocol image dataset (resumable, appendable) from a snapshot and its haloes"


def _floats(text: str, n: int, what: str) -> tuple[float, ...]:
    parts = text.split(":")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != n:
        raise argparse.ArgumentTypeError(f"{what} must be {':'.join(['NUMBER'] * n)}, got {text!r}")
    return values


def _star_noise(text: str) -> str | float:
    if text in ("preset", "sample"):
        return text
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value >= 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"--star-noise must be preset, sample or a number >= 0, got {text!r}")
    return value


def _names(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("snapshot", help="snapshot file (EAGLE/BAHAMAS, GADGET-4 or SWIFT HDF5)")
    p.add_argument("--halos", required=True, help="halo catalogue (cmc-halos, SUBFIND/FoF HDF5)")
    p.add_argument("--out", required=True, help="dataset file to create, complete or extend")
    p.add_argument("--per-bin", type=int, default=200, help="haloes per mass bin (default 200)")
    p.add_argument("--bins", type=lambda s: _floats(s, 3, "--bins"), default=(13.0, 15.0, 0.25),
                   metavar="LO:HI:STEP", help="log10(M200/Msun) bins (default 13:15:0.25)")
    p.add_argument("--projections", type=_names, default=("x", "y", "z", "diag"), help="default x,y,z,diag")
    p.add_argument("--channels", type=_names, default=("Star", "Fxs", "Fxb", "Ypar"),
                   help="default Star,Fxs,Fxb,Ypar")
    p.add_argument("--instrument", default="paper",
                   help="instrument preset: paper, paper-literal, planck or ideal (default paper)")
    p.add_argument("--star-noise", type=_star_noise, default="preset", metavar="preset|sample|RMS",
                   help="Star noise rms per pixel: the preset's (default); 'sample', 0.1 x the mean "
                        "noise-free Star pixel of this sample (the paper's rule, one extra Star-only "
                        "pass); or RMS in Msun/kpc^2")
    p.add_argument("--no-interlopers", action="store_true",
                   help="render only the particles within --interloper-radius x r200 of each cluster "
                        "centre: no fore- or background (the paper's line-of-sight ablation)")
    p.add_argument("--interloper-radius", type=float, default=None, metavar="K",
                   help="with --no-interlopers: keep particles within K x r200 (default 2, the paper's)")
    p.add_argument("--z-range", type=lambda s: _floats(s, 2, "--z-range"), default=(0.03, 0.07),
                   metavar="ZLO:ZHI", help="placement redshifts, uniform (default 0.03:0.07)")
    p.add_argument("--scheme", default="ngp", choices=("ngp", "cic", "sph"), help="deposition scheme (default ngp)")
    p.add_argument("--npix", type=int, default=120, help="pixels per side (default 120)")
    p.add_argument("--fov", type=float, default=20.0, help="field of view [arcmin] (default 20)")
    p.add_argument("--workers", type=int, default=1, help="haloes rendered concurrently (default 1)")
    p.add_argument("--source", default="auto", choices=("auto", "memory", "index"),
                   help="index: each halo reads only its columns from an indexed copy of the snapshot "
                        "(built in OUT.parts unless the snapshot is indexed), memory bounded by one halo "
                        "per worker; memory: the whole snapshot in memory (~64 bytes per gas or star "
                        "particle), fastest when it fits; auto (default): memory up to 2 GiB, else index. "
                        "Same images either way")
    p.add_argument("--scheduler", default=None, metavar="local[:N]|ADDRESS",
                   help="render on a dask.distributed cluster (a LocalCluster of N processes, or a scheduler "
                        "address) from an indexed snapshot (cmc index); same file as without it")
    p.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import sys
    import warnings

    from cmcore.dataset import build_dataset, with_sampled_star_noise
    from cmcore.datafile import DatasetConfig

    if args.interloper_radius is not None and not args.no_interlopers:
        raise ValueError("--interloper-radius needs --no-interlopers")
    config = DatasetConfig(
        per_bin=args.per_bin, bins=args.bins, projections=args.projections, channels=args.channels,
        instrument=args.instrument, z_range=args.z_range, seed=args.seed, npix=args.npix,
        fov_arcmin=args.fov, scheme=args.scheme,
        star_noise=args.star_noise if isinstance(args.star_noise, float) else None,
        interloper_radius=(2.0 if args.interloper_radius is None else args.interloper_radius)
        if args.no_interlopers else None,
    )
    if args.star_noise == "sample" and "Star" in config.channels:
        config, rms = with_sampled_star_noise(args.snapshot, args.halos, config, workers=args.workers,
                                              progress=not args.no_progress)
        print(f"Star noise from the sample: {rms:.4g} Msun/kpc^2 per pixel (0.1 x mean noise-free pixel)")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda msg, *a, **k: print(f"cmc dataset: warning: {msg}", file=sys.stderr)
        summary = build_dataset(args.snapshot, args.halos, args.out, config,
                                workers=args.workers, progress=not args.no_progress, scheduler=args.scheduler,
                                source=args.source)
    if summary.n_new == 0:
        print(f"{summary.path}: already complete ({summary.n_images} images); nothing to do")
    else:
        print(f"{summary.path}: {summary.n_new} new images ({summary.n_images} in all, "
              f"{summary.n_halos} haloes) in {summary.seconds:.1f} s, "
              f"{summary.images_per_second:.1f} images/s")
    print("haloes per bin: " + " ".join(str(c) for c in summary.per_bin_counts))
    return 0
