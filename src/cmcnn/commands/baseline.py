"""``cmc baseline``: the classical aperture / power-law mass estimator of each channel."""
from __future__ import annotations

import argparse

NAME = "baseline"
HELP = "fit the classical baseline (aperture signal -> power law) per channel and score it"


def channel_list(text: str) -> list[str]:
    """``Star,Fxs`` → ['Star', 'Fxs']; ``all`` stays ['all'] (see :func:`resolve_channels`)."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give channel names separated by commas, or all")
    return names


def resolve_channels(names: list[str], data: str) -> list[str]:
    """``['all']`` → every channel of the dataset ``data``; other lists unchanged."""
    if names != ["all"]:
        return names
    from cmcore.datafile import open_dataset

    with open_dataset(data) as f:
        return [str(c) for c in f.attrs["channels"]]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="cmc dataset (HDF5) with train, validation and test images")
    p.add_argument("--channels", type=channel_list, default=["all"], metavar="LIST",
                   help="comma-separated channels, or all (default all)")
    p.add_argument("--out", required=True, help="report folder: baseline-<channel>.csv and baseline.json")
    p.add_argument("--split", default="test", choices=("train", "validation", "test"),
                   help="split scored in baseline.json (default test)")


def run(args: argparse.Namespace) -> int:
    from cmcnn.evaluate.baseline import fit_baseline, write_baseline

    result = fit_baseline(args.data, resolve_channels(args.channels, args.data), progress=True)
    report = write_baseline(result, args.out, split=args.split)
    print(f"{'channel':8s} {'aperture':>9s} {'n':>5s} {'bias (%)':>15s} {'RMS (%)':>8s} {'σ (dex)':>8s} {'robust σ':>9s}")
    for c, entry in report["channels"].items():
        t = entry["table2"]
        if not t["n"]:
            print(f"{c:8s} {entry['aperture']['label']:>9s} {0:5d}   no {args.split} image in 13.25 < log M < 14.5")
            continue
        print(f"{c:8s} {entry['aperture']['label']:>9s} {t['n']:5d} {t['frac_bias_pct']:+7.2f} ± {t['frac_bias_pct_se']:5.2f} "
              f"{t['rms_pct']:8.2f} {t['scatter_dex']:8.4f} {t['robust_scatter_dex']:9.4f}")
    print(f"-> {args.out}/baseline.json")
    return 0
