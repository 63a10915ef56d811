"""``cmc halos``: find haloes in a snapshot (FoF + spherical overdensity) and write a cmc-halos file."""
from __future__ import annotations

import argparse

NAME = "halos"
HELP = "find haloes (FoF on dark matter, M200c/R200c by spherical overdensity) and write a cmc-halos HDF5 table"


def _unit_system(text: str) -> dict[str, float]:
    try:
        length, mass, velocity = (float(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--unit-system must be LENGTH_CM:MASS_G:VELOCITY_CM_S, got {text!r}"
        ) from None
    return {"UnitLength_in_cm": length, "UnitMass_in_g": mass, "UnitVelocity_in_cm_per_s": velocity}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("snapshot", help="snapshot file (EAGLE/BAHAMAS, GADGET-4 or SWIFT HDF5; any file of a multi-file set)")
    p.add_argument("--out", required=True, help="halo catalogue to write (cmc-halos HDF5)")
    p.add_argument("--b", type=float, default=0.2, help="FoF linking parameter, in mean DM separations (default 0.2)")
    p.add_argument("--linking-length", type=float, default=None, metavar="MPC",
                   help="comoving FoF linking length [Mpc], overriding --b (for files whose DM does not fill the box)")
    p.add_argument("--min-members", type=int, default=32, help="smallest FoF group, DM particles (default 32)")
    p.add_argument("--delta", type=float, default=200.0, help="overdensity w.r.t. critical (default 200)")
    p.add_argument("--drop-nonfinite", action="store_true", help="drop particles with NaN/inf instead of refusing")
    p.add_argument("--unit-system", type=_unit_system, default=None, metavar="LENGTH_CM:MASS_G:VELOCITY_CM_S",
                   help="code units of a plain GADGET/GIZMO file without unit attributes")
    p.add_argument("--single-precision", action="store_true",
                   help="read positions as float32 (half their memory for a float64 file; rounding ~6e-8 of the "
                        "box side), for boxes whose particles do not fit in memory otherwise")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import sys
    import time
    import warnings

    import numpy as np

    from cmcore.halos import find_halos, write_halos
    from cmcore.readers import read_snapshot

    start = time.perf_counter()
    progress = not args.no_progress
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda msg, *a, **k: print(f"cmc halos: warning: {msg}", file=sys.stderr)
        if progress:
            print(f"reading {args.snapshot} ...", file=sys.stderr)
        snap = read_snapshot(
            args.snapshot, fields=[], optional_fields=["potential"],
            drop_nonfinite=args.drop_nonfinite, unit_system=args.unit_system,
            single_precision_positions=args.single_precision,
        )
        cat = find_halos(snap, b=args.b, linking_length=args.linking_length, min_members=args.min_members,
                         delta=args.delta, progress=progress)
    write_halos(args.out, cat)
    top = np.argmax(cat.m200)
    print(
        f"{args.out}: {len(cat)} haloes in {time.perf_counter() - start:.1f} s; largest M200 = "
        f"{cat.m200[top]:.3e} Msun ({cat.m200[top] * snap.h:.3e} Msun/h), R200 = {cat.r200[top]:.3f} Mpc "
        f"(comoving), box {snap.boxsize:.3f} Mpc, z = {snap.redshift:.3g}"
    )
    return 0
