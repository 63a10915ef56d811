"""``cmc render``: one mock observation of one halo, written as a FITS cutout with WCS."""
from __future__ import annotations

import argparse

NAME = "render"
HELP = "render one halo in one channel (Star, Fxs, Fxb, Ypar) with noise and beam to a FITS cutout"

_CHANNELS = ("Star", "Fxs", "Fxb", "Ypar")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("snapshot", help="snapshot file (EAGLE/BAHAMAS, GADGET-4 or SWIFT HDF5)")
    p.add_argument("--halos", required=True, help="halo catalogue (cmc-halos HDF5, e.g. from `cmc halos`)")
    p.add_argument("--halo-id", required=True, type=int, help="id of the halo to render")
    p.add_argument("--channel", required=True, choices=_CHANNELS, help="observable")
    p.add_argument("--los", default="z", choices=("x", "y", "z", "diag"), help="line of sight (default z)")
    p.add_argument("--z", dest="redshift", type=float, default=0.05, help="placement redshift (default 0.05)")
    p.add_argument("--azimuth", type=float, default=0.0, help="rotation about the line of sight [deg] (default 0)")
    p.add_argument("--scheme", default="ngp", choices=("ngp", "cic", "sph"), help="deposition (default ngp)")
    p.add_argument("--instrument", default="paper", choices=("paper", "paper-literal", "planck", "ideal"),
                   help="noise and beam preset (default paper, Yan et al. 2020 Table 1)")
    p.add_argument("--noise", type=float, default=None, metavar="RMS",
                   help="noise rms per pixel, overriding the preset (channel units, Star: Msun/kpc^2; "
                        "Msun per pixel with paper-literal)")
    p.add_argument("--beam", type=float, default=None, metavar="FWHM_ARCMIN",
                   help="Gaussian beam FWHM [arcmin], overriding the preset (0: none)")
    p.add_argument("--npix", type=int, default=120, help="pixels per side (default 120)")
    p.add_argument("--fov", type=float, default=20.0, help="field of view per side [arcmin] (default 20)")
    p.add_argument("--depth", type=float, default=50.0,
                   help="half-depth of the slab [comoving Mpc] (default 50, capped at half the box)")
    p.add_argument("--cosmology", default="wmap9", choices=("wmap9", "snapshot"),
                   help="cosmology for d_A and d_L (default wmap9, as the paper)")
    p.add_argument("--lum-soft", default=None, metavar="DATASET",
                   help="gas dataset with precomputed 0.5-2 keV luminosities, used instead of the model")
    p.add_argument("--lum-bol", default=None, metavar="DATASET",
                   help="gas dataset with precomputed bolometric luminosities, used instead of the model")
    p.add_argument("--seed", type=int, default=None, help="noise seed (default: fresh entropy)")
    p.add_argument("--drop-nonfinite", action="store_true", help="drop particles with NaN/inf instead of refusing")
    p.add_argument("--out", required=True, help="FITS file to write")


def run(args: argparse.Namespace) -> int:
    import sys
    import warnings

    import numpy as np
    from astropy import units as u

    from cmcore.errors import InputError
    from cmcore.halos import read_halos
    from cmcore.instrument import get_instrument
    from cmcore.observables import CHANNEL_UNITS, pixel_size_mpc, snapshot_request
    from cmcore.readers import read_snapshot
    from cmcore.render import render_cutout, write_fits

    ch = args.channel
    inst = get_instrument(
        args.instrument,
        noise=None if args.noise is None else {ch: args.noise},
        beam=None if args.beam is None else {ch: args.beam},
    )
    cat = read_halos(args.halos)
    row = cat.index(args.halo_id)
    lum = {k: v for k, v in (("luminosity_soft", args.lum_soft), ("luminosity_bol", args.lum_bol)) if v}
    ptypes, optional = snapshot_request([ch], scheme=args.scheme)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda msg, *a, **k: print(f"cmc render: warning: {msg}", file=sys.stderr)
        try:
            snap = read_snapshot(
                args.snapshot, particle_types=ptypes, fields=[], optional_fields=optional,
                luminosity_datasets=lum, drop_nonfinite=args.drop_nonfinite,
            )
        except InputError as exc:
            raise InputError(f"channel {ch}: {exc}") from None
        cat.check_snapshot(snap.boxsize)
        cosmo = snap.cosmology if args.cosmology == "snapshot" else None
        cut = render_cutout(
            snap, cat.centre[row], ch, redshift=args.redshift, los=args.los,
            azimuth=np.radians(args.azimuth), instrument=inst, npix=args.npix, fov_arcmin=args.fov,
            scheme=args.scheme, depth=args.depth, seed=args.seed, cosmology=cosmo,
            halo_id=int(cat.halo_id[row]), m200=float(cat.m200[row]), r200=float(cat.r200[row]),
        )
    write_fits(args.out, cut)
    img = cut.image
    unit = CHANNEL_UNITS[ch] or "dimensionless"
    summary = f"peak {img.max():.4g}, sum {img.sum():.4g} [{unit}]"
    if ch == "Ypar":
        pix_arcmin2 = (cut.pixel_arcsec / 60.0) ** 2
        pix_mpc2 = pixel_size_mpc(cut.redshift, cut.pixel_arcsec, cut.cosmology) ** 2
        summary += f"; Y = {img.sum() * pix_arcmin2:.4g} arcmin^2 = {img.sum() * pix_mpc2:.4g} Mpc^2"
    elif ch == "Star":
        pix_kpc2 = (1e3 * pixel_size_mpc(cut.redshift, cut.pixel_arcsec, cut.cosmology)) ** 2
        summary += f"; stellar mass in the field {img.sum() * pix_kpc2:.4g} Msun"
    d_l = cut.cosmology.luminosity_distance(cut.redshift).to(u.Mpc)
    print(
        f"{args.out}: halo {cut.halo_id} (M200 = {cut.m200:.3e} Msun, R200 = {cut.r200:.3f} Mpc), {ch}, "
        f"los {args.los}, z = {cut.redshift:g} (d_L = {d_l:.1f}), instrument {inst.name}: {summary}"
    )
    return 0
