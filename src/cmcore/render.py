"""One mock observation of one cluster: noise-free maps, instrument, FITS cutout.

The dataset builder calls :func:`render_observed` once per halo × projection:
all channels from one geometry and one slab selection per particle type
(:func:`render_maps`), then noise and beam per channel
(:func:`cmcore.instrument.apply_instrument`) on a field enlarged by the beam's
reach, so that the beam treats the edges like the interior.
:func:`render_cutout` does this for one channel and :func:`write_fits` writes
the result with a celestial WCS.

Geometry (Yan et al. 2020 §2.2): the cluster of a snapshot at scale factor a is
placed at redshift z without evolution; a pixel of ``pixel_arcsec`` spans the
physical length d_A(z)·θ, i.e. d_A(z)·θ/a comoving Mpc of the snapshot.  The
field is ``npix`` × ``npix`` pixels over ``fov_arcmin`` (10″ pixels by
default), particles within ±``depth`` comoving Mpc along the line of sight.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from astropy import units as u
from astropy.cosmology import FLRW

from ._version import __version__
from .fileio import atomic_write
from .errors import InputError
from .instrument import Instrument, apply_instrument, beam_margin_pixels, get_instrument
from .observables import (
    CHANNEL_UNITS,
    check_channels,
    default_cosmology,
    particle_signals,
    pixel_area_kpc2,
    pixel_normalisation,
    pixel_size_mpc,
)
from .projection import project
from .snapshot import Snapshot

if TYPE_CHECKING:
    from .cellindex import CellIndex

#: Sky position (RA, Dec) [deg] of the cluster centre in written cutouts: a
#: point on the celestial equator, far from the RA = 0/360 wrap.  Mock
#: cutouts have no real sky position; change it with ``write_fits(crval=...)``.
DEFAULT_SKY_POSITION = (180.0, 0.0)


def _pixel_arcsec(npix: int, fov_arcmin: float) -> float:
    if int(npix) != npix or npix < 1:
        raise InputError(f"npix must be a positive integer, got {npix}")
    if not (np.isfinite(fov_arcmin) and fov_arcmin > 0):
        raise InputError(f"field of view must be positive, got {fov_arcmin} arcmin")
    return 60.0 * fov_arcmin / npix


def slab_depth(depth: float, boxsize: float) -> float:
    """Half-depth of the slab actually used: ``min(depth, boxsize / 2)`` [comoving Mpc].

    A periodic box smaller than the paper's ±50 Mpc slab is then seen through
    once, each particle counted once.
    """
    if not (np.isfinite(depth) and depth > 0):
        raise InputError(f"slab depth must be positive, got {depth} Mpc")
    return float(min(depth, 0.5 * boxsize))


def render_maps(
    snapshot: Snapshot,
    centre: Sequence[float],
    *,
    channels: Sequence[str],
    redshift: float,
    los: str | Sequence[float] = "z",
    azimuth: float = 0.0,
    npix: int = 120,
    fov_arcmin: float = 20.0,
    scheme: str = "ngp",
    depth: float = 50.0,
    indexes: Mapping[str, CellIndex] | None = None,
    cosmology: FLRW | None = None,
    signals: Mapping[str, tuple[np.ndarray, tuple[str, ...]]] | None = None,
    nthreads: int | None = None,
) -> dict[str, np.ndarray]:
    """Noise-free images of several channels from one projection geometry.

    Parameters
    ----------
    snapshot : Snapshot
        Particles in the units of ``docs/internals.md``.
    centre : sequence of 3 float
        Cluster centre [comoving Mpc].
    channels : sequence of str
        Among ``Star``, ``Fxs``, ``Fxb``, ``Ypar``.
    redshift : float
        Placement redshift z (> 0).
    los : str or sequence of 3 float
        Line of sight: ``"x"``, ``"y"``, ``"z"``, ``"diag"`` or a 3-vector.
    azimuth : float
        Rotation of the image about the line of sight [rad]
        (:func:`cmcore.projection.los_basis`).
    npix : int
        Pixels per side.
    fov_arcmin : float
        Field of view per side [arcmin].
    scheme : str
        ``"ngp"``, ``"cic"`` or ``"sph"`` (needs ``smoothing_length`` of the
        particle type; star particles usually have none).
    depth : float
        Half-depth of the slab along the line of sight [comoving Mpc]; capped
        at half the box (:func:`slab_depth`) so no particle counts twice.
    indexes : mapping, optional
        Prebuilt :class:`cmcore.cellindex.CellIndex` per particle type
        (``"gas"``, ``"stars"``), reused across calls.
    cosmology : astropy.cosmology.FLRW, optional
        For d_A and d_L; WMAP9 by default (pass ``snapshot.cosmology`` for the
        snapshot's own).
    signals : mapping, optional
        Output of :func:`cmcore.observables.particle_signals` for this
        snapshot, computed once and reused across calls.
    nthreads : int, optional
        OpenMP threads of the projection kernel.

    Returns
    -------
    dict of str to ndarray
        ``{channel: (npix, npix) float64}`` in :data:`CHANNEL_UNITS`;
        ``image[i, j]`` has column j along the projected u axis and row i along v.
    """
    channels = check_channels(channels)
    cosmo = cosmology or default_cosmology()
    pixel_arcsec = _pixel_arcsec(npix, fov_arcmin)
    width = npix * pixel_size_mpc(redshift, pixel_arcsec, cosmo) / snapshot.scale_factor
    if signals is None:
        signals = particle_signals(snapshot, channels)
    indexes = indexes or {}
    maps: dict[str, np.ndarray] = {}
    for ptype, (weights, names) in signals.items():
        wanted = [names.index(ch) for ch in channels if ch in names]
        if not wanted:
            continue
        pdata = snapshot.particles[ptype]
        hsml = None
        if scheme == "sph":
            if "smoothing_length" not in pdata:
                raise InputError(
                    f"scheme 'sph' needs {ptype} smoothing lengths, absent from snapshot "
                    f"{snapshot.path or '<memory>'}; use scheme 'ngp' or 'cic'"
                )
            hsml = pdata["smoothing_length"]
        # all columns in order (the dataset builder's case): no O(N) copy per image
        chosen = weights if wanted == list(range(weights.shape[1])) else np.ascontiguousarray(weights[:, wanted])
        images = project(
            pdata.positions,
            chosen,
            np.asarray(centre, dtype=np.float64),
            snapshot.boxsize,
            los=los,
            azimuth=azimuth,
            depth=slab_depth(depth, snapshot.boxsize),
            width=width,
            npix=int(npix),
            scheme=scheme,
            smoothing_lengths=hsml,
            index=indexes.get(ptype),
            nthreads=nthreads,
        )
        for k, col in enumerate(wanted):
            ch = names[col]
            maps[ch] = np.asarray(images[k], dtype=np.float64) * pixel_normalisation(
                ch, redshift, pixel_arcsec, cosmo
            )
    missing = [ch for ch in channels if ch not in maps]
    if missing:
        raise InputError(f"signals given for render_maps lack channel(s) {', '.join(missing)}")
    return {ch: maps[ch] for ch in channels}


@dataclass
class Cutout:
    """One observed single-channel image and what it was made from."""

    image: np.ndarray
    channel: str
    redshift: float
    pixel_arcsec: float
    los: str
    azimuth: float  # radians
    instrument: Instrument
    scheme: str
    depth: float
    centre: np.ndarray
    cosmology: FLRW
    seed: int | None = None
    halo_id: int | None = None
    m200: float | None = None
    r200: float | None = None
    snapshot_path: str = ""


def render_observed(
    snapshot: Snapshot,
    centre: Sequence[float],
    *,
    channels: Sequence[str],
    redshift: float,
    instrument: str | Instrument = "paper",
    rng: Mapping[str, np.random.Generator | int | None] | np.random.Generator | int | None = None,
    los: str | Sequence[float] = "z",
    azimuth: float = 0.0,
    npix: int = 120,
    fov_arcmin: float = 20.0,
    scheme: str = "ngp",
    depth: float = 50.0,
    indexes: Mapping[str, CellIndex] | None = None,
    cosmology: FLRW | None = None,
    signals: Mapping[str, tuple[np.ndarray, tuple[str, ...]]] | None = None,
    nthreads: int | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Noise-free and observed images of several channels from one geometry.

    The maps are rendered once with a margin of ceil(4σ_beam) pixels around
    the field (the widest beam among ``channels``).  For each channel the map
    is cut to its own margin m_c (:func:`cmcore.instrument.beam_margin_pixels`),
    noise is drawn on that (npix + 2m_c)² field, the beam applied, and the
    central npix × npix kept: flux near the edges is smoothed as in the
    interior (flux from outside spills in, none is lost), and a channel's noise
    depends only on its own generator, its instrument and the pixel scale.

    Parameters
    ----------
    rng : Generator, int, None, or mapping of channel to those
        Noise generator or seed, one per channel when a mapping.  A single
        generator is used by the channels in the order given.
    Others
        As :func:`render_maps`.

    Returns
    -------
    (clean, observed) : tuple of dict of str to ndarray
        (npix, npix) float64 images per channel, noise-free and observed.
    """
    channels = check_channels(channels)
    inst = get_instrument(instrument)
    cosmo = cosmology or default_cosmology()
    pixel_arcsec = _pixel_arcsec(npix, fov_arcmin)
    margins = {ch: beam_margin_pixels(inst, ch, pixel_arcsec) for ch in channels}
    big_margin = max(margins.values())
    big = npix + 2 * big_margin
    maps = render_maps(
        snapshot, centre, channels=channels, redshift=redshift, los=los, azimuth=azimuth,
        npix=big, fov_arcmin=big * pixel_arcsec / 60.0, scheme=scheme, depth=depth,
        indexes=indexes, cosmology=cosmo, signals=signals, nthreads=nthreads,
    )
    area = pixel_area_kpc2(redshift, pixel_arcsec, cosmo)
    inner = slice(big_margin, big_margin + npix)
    clean: dict[str, np.ndarray] = {}
    observed: dict[str, np.ndarray] = {}
    for ch in channels:
        m = margins[ch]
        own = slice(big_margin - m, big_margin + npix + m)
        noisy = apply_instrument(
            ch, maps[ch][own, own], inst, pixel_arcsec,
            rng.get(ch) if isinstance(rng, Mapping) else rng, pixel_area_kpc2=area,
        )
        clean[ch] = maps[ch][inner, inner].copy()
        observed[ch] = noisy[m:m + npix, m:m + npix]
    return clean, observed


def render_cutout(
    snapshot: Snapshot,
    centre: Sequence[float],
    channel: str,
    *,
    redshift: float,
    los: str = "z",
    azimuth: float = 0.0,
    instrument: str | Instrument = "paper",
    npix: int = 120,
    fov_arcmin: float = 20.0,
    scheme: str = "ngp",
    depth: float = 50.0,
    seed: int | None = None,
    cosmology: FLRW | None = None,
    halo_id: int | None = None,
    m200: float | None = None,
    r200: float | None = None,
) -> Cutout:
    """Render one observed single-channel cutout (:func:`render_observed`).

    Parameters as :func:`render_maps` (``azimuth`` in radians); ``seed`` seeds
    the noise (``numpy.random.default_rng``); ``halo_id``, ``m200`` [M☉] and
    ``r200`` [comoving Mpc] are recorded only.

    Returns
    -------
    Cutout
        The image (``npix`` × ``npix``, in the channel's physical units) with
        everything it was made from; :func:`write_fits` writes it.

    Examples
    --------
    The Compton-y cutout of the one cluster of a small synthetic universe, seen
    at z = 0.05 through the paper's instrument (20′ field, 10″ pixels):

    >>> import tempfile
    >>> from cmcore.halos import read_halos
    >>> from cmcore.readers import read_snapshot
    >>> from cmcore.render import render_cutout
    >>> from cmcore.synth import generate
    >>> tmp = tempfile.TemporaryDirectory()
    >>> universe = generate("tiny", seed=1, out=tmp.name, box_size_h=30.0, n_bins=1,
    ...                     clusters_per_bin=1, field_min_mass=1e13)
    >>> snap = read_snapshot(universe.snapshot)
    >>> cat = read_halos(universe.halos)
    >>> cut = render_cutout(snap, cat.centre[0], "Ypar", redshift=0.05, seed=0)
    >>> cut.image.shape, cut.pixel_arcsec, cut.channel
    ((120, 120), 10.0, 'Ypar')
    >>> bool(cut.image[50:70, 50:70].mean() > 3 * cut.image[:20, :20].mean())  # centre vs corner
    True
    >>> tmp.cleanup()
    """
    inst = get_instrument(instrument)
    cosmo = cosmology or default_cosmology()
    _, observed = render_observed(
        snapshot, centre, channels=[channel], redshift=redshift, instrument=inst, rng=seed,
        los=los, azimuth=azimuth, npix=npix, fov_arcmin=fov_arcmin, scheme=scheme, depth=depth,
        cosmology=cosmo,
    )
    return Cutout(
        image=observed[channel], channel=channel, redshift=float(redshift),
        pixel_arcsec=_pixel_arcsec(npix, fov_arcmin), los=str(los), azimuth=float(azimuth),
        instrument=inst, scheme=scheme, depth=slab_depth(depth, snapshot.boxsize),
        centre=np.asarray(centre, dtype=np.float64), cosmology=cosmo, seed=seed,
        halo_id=halo_id, m200=m200, r200=r200, snapshot_path=str(snapshot.path),
    )


def cutout_wcs(npix: int, pixel_arcsec: float, crval: tuple[float, float] = DEFAULT_SKY_POSITION):
    """Celestial TAN WCS of a cutout centred on ``crval`` (RA, Dec) [deg].

    The image centre (FITS pixel (npix + 1)/2 on both axes) is the cluster
    centre; RA increases to the left (CDELT1 < 0), Dec upwards: the projected
    u axis points west, v north.
    """
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.cunit = ["deg", "deg"]
    w.wcs.crpix = [(npix + 1) / 2.0, (npix + 1) / 2.0]
    w.wcs.crval = [float(crval[0]), float(crval[1])]
    scale = pixel_arcsec / 3600.0
    w.wcs.cdelt = [-scale, scale]
    w.wcs.radesys = "ICRS"
    return w


def write_fits(
    path: str | os.PathLike,
    cutout: Cutout,
    *,
    crval: tuple[float, float] = DEFAULT_SKY_POSITION,
) -> None:
    """Write ``cutout`` as a FITS image with WCS and provenance cards, atomically.

    The file is written under a temporary name in the target folder and
    renamed over ``path`` (:func:`os.replace`), so a reader never sees a
    partial file.  Cards: ``BUNIT``, ``CHANNEL``, ``HALO_ID``, ``M200`` [M☉],
    ``R200`` [comoving Mpc] (these three when known), ``REDSHIFT``, ``LOS``, ``AZIMUTH``, ``INSTRUME``,
    ``NOISE``, ``BEAMFWHM`` [arcmin], ``SCHEME``, ``DEPTH``, ``SEED``,
    ``COSMO``, ``H0``, ``OM0``, ``CENTRE1..3``, ``SNAPSHOT``, ``CMCVERS``.
    """
    from astropy.io import fits

    npix = cutout.image.shape[0]
    header = cutout_wcs(npix, cutout.pixel_arcsec, crval).to_header()
    model = cutout.instrument[cutout.channel]
    cards = [
        ("BUNIT", CHANNEL_UNITS[cutout.channel], "pixel unit"),
        ("CHANNEL", cutout.channel, "observable (Yan et al. 2020)"),
        ("REDSHIFT", cutout.redshift, "placement redshift"),
        ("LOS", cutout.los, "line of sight"),
        ("AZIMUTH", float(np.degrees(cutout.azimuth)), "[deg] rotation about the line of sight"),
        ("INSTRUME", cutout.instrument.name, "cmc instrument preset"),
        ("NOISE", model.noise_rms,
         "[Msun/pix] noise rms" if model.mass_per_pixel else "[BUNIT] noise rms per pixel"),
        ("BEAMFWHM", model.beam_fwhm_arcmin, "[arcmin] Gaussian beam FWHM"),
        ("SCHEME", cutout.scheme, "deposition scheme"),
        ("DEPTH", cutout.depth, "[Mpc] comoving half-depth of the slab"),
        ("SEED", -1 if cutout.seed is None else int(cutout.seed), "noise seed (-1: unseeded)"),
        ("COSMO", str(cutout.cosmology.name or "custom"), "cosmology for d_A, d_L"),
        ("H0", float(cutout.cosmology.H0.to_value(u.km / u.s / u.Mpc)), "[km/s/Mpc]"),
        ("OM0", float(cutout.cosmology.Om0), "matter density parameter"),
    ]
    for key, value, comment in (("HALO_ID", cutout.halo_id, "halo id in the catalogue"),
                                ("M200", cutout.m200, "[Msun] M200c"),
                                ("R200", cutout.r200, "[Mpc] comoving R200c")):
        if value is not None:
            cards.append((key, int(value) if key == "HALO_ID" else float(value), comment))
    cards += [(f"CENTRE{k + 1}", float(cutout.centre[k]), "[Mpc] comoving halo centre") for k in range(3)]
    cards += [
        ("SNAPSHOT", os.path.basename(cutout.snapshot_path), "source snapshot"),
        ("CMCVERS", __version__, "cmc version"),
    ]
    if model.beam_fwhm_arcmin > 0:
        cards += [("BMAJ", model.beam_fwhm_arcmin / 60.0, "[deg] beam FWHM"),
                  ("BMIN", model.beam_fwhm_arcmin / 60.0, "[deg] beam FWHM")]
    for key, value, comment in cards:
        header[key] = (value, comment)
    hdu = fits.PrimaryHDU(np.asarray(cutout.image, dtype=np.float64), header=header)
    with atomic_write(path) as tmp:
        hdu.writeto(tmp, overwrite=True)
