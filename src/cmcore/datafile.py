"""The cmc dataset file: its layout, channels and splits, its build settings, and reading it.

Every reader of a dataset file goes through here: :func:`open_dataset` checks the format,
:func:`read_labels` and :func:`split_indices` read the labels, :func:`noise_field` and
:func:`redraw_noise` regenerate an image's noise.  The builder is :mod:`cmcore.dataset`;
the layout is documented in ``docs/dataset.md``.
"""
from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .errors import FileFormatError, InputError

FORMAT = "cmc-dataset"
FORMAT_VERSION = 1
CHANNELS = ("Star", "Fxs", "Fxb", "Ypar")
PROJECTIONS = ("x", "y", "z", "diag")
SPLIT_NAMES = ("train", "validation", "test")

# Stable integer codes mixed into the seed sequences (never reorder).
PROJECTION_CODE = {"x": 0, "y": 1, "z": 2, "diag": 3}
CHANNEL_CODE = {"Star": 0, "Fxs": 1, "Fxb": 2, "Ypar": 3}


@dataclass(frozen=True)
class DatasetConfig:
    """Settings of a dataset build (the paper's protocol by default).

    Parameters
    ----------
    per_bin
        Maximum number of haloes drawn in each mass bin.
    bins
        ``(lo, hi, step)`` in log10(M200/M☉); bins are ``[lo + k·step, lo + (k+1)·step)``,
        the last one closed.
    projections
        Lines of sight among ``x``, ``y``, ``z``, ``diag``.
    channels
        Observables among ``Star``, ``Fxs``, ``Fxb``, ``Ypar``.
    instrument
        Instrument preset name (see :mod:`cmcore.instrument`).
    z_range
        Placement redshifts are uniform in ``[z_range[0], z_range[1]]``.
    seed
        Root seed of every random choice.
    npix, fov_arcmin
        Image size in pixels and full field of view in arcmin.
    scheme
        Deposition scheme (``ngp``, ``cic``, ``sph``).
    depth
        Half-depth of the line-of-sight slab [Mpc].
    split_fractions
        Train / validation / test fractions of *haloes*.
    star_noise
        ``Star`` noise rms [M☉ kpc⁻² per pixel] replacing the instrument's, or
        None for the instrument's own.  :func:`sample_star_noise` computes the
        paper's rule (0.1 × the sample's mean noise-free ``Star`` pixel).
    interloper_radius
        None (the paper's fiducial images): every particle of the slab is rendered,
        fore- and background included.  A number k: only the particles within
        k × r200 of the cluster centre (periodic distance) are rendered, so the
        image holds no line-of-sight interlopers (the ablation of Yan et al. 2020,
        §3, with k = 2, the radius within which they tag a cluster's particles, §2.1).
    """

    per_bin: int = 200
    bins: tuple[float, float, float] = (13.0, 15.0, 0.25)
    projections: tuple[str, ...] = PROJECTIONS
    channels: tuple[str, ...] = CHANNELS
    instrument: str = "paper"
    z_range: tuple[float, float] = (0.03, 0.07)
    seed: int = 0
    npix: int = 120
    fov_arcmin: float = 20.0
    scheme: str = "ngp"
    depth: float = 50.0
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    star_noise: float | None = None
    interloper_radius: float | None = None

    def __post_init__(self) -> None:
        if self.interloper_radius is not None and not (np.isfinite(self.interloper_radius) and self.interloper_radius > 0):
            raise InputError(f"interloper_radius must be a positive multiple of r200, got {self.interloper_radius}")
        if self.star_noise is not None and not (np.isfinite(self.star_noise) and self.star_noise >= 0):
            raise InputError(f"star_noise must be finite and >= 0, got {self.star_noise}")
        if int(self.per_bin) < 1:
            raise InputError(f"per_bin must be at least 1, got {self.per_bin}")
        lo, hi, step = self.bins
        if not (np.isfinite([lo, hi, step]).all() and step > 0 and hi > lo):
            raise InputError(f"bins must be lo:hi:step with hi > lo and step > 0, got {self.bins}")
        if not self.projections or len(set(self.projections)) != len(self.projections):
            raise InputError(f"projections must be distinct and non-empty, got {self.projections}")
        for p in self.projections:
            if p not in PROJECTION_CODE:
                raise InputError(f"unknown projection {p!r}; choose from {', '.join(PROJECTIONS)}")
        if not self.channels or len(set(self.channels)) != len(self.channels):
            raise InputError(f"channels must be distinct and non-empty, got {self.channels}")
        for c in self.channels:
            if c not in CHANNEL_CODE:
                raise InputError(f"unknown channel {c!r}; choose from {', '.join(CHANNELS)}")
        z0, z1 = self.z_range
        if not (0 < z0 <= z1):
            raise InputError(f"z_range must satisfy 0 < z_lo <= z_hi, got {self.z_range}")
        if self.npix < 1 or not self.fov_arcmin > 0 or not self.depth > 0:
            raise InputError("npix, fov_arcmin and depth must be positive")
        fr = np.asarray(self.split_fractions, dtype=float)
        if fr.shape != (3,) or (fr < 0).any() or abs(fr.sum() - 1) > 1e-9:
            raise InputError(f"split_fractions must be three non-negative numbers summing to 1, got {self.split_fractions}")
        if int(self.seed) < 0:
            raise InputError(f"seed must be non-negative, got {self.seed}")
        if self.scheme not in ("ngp", "cic", "sph"):
            raise InputError(f"unknown scheme {self.scheme!r}; choose from ngp, cic, sph")
        from .instrument import get_instrument

        get_instrument(self.instrument)  # an unknown preset is refused here, not after the read

    @property
    def bin_edges(self) -> np.ndarray:
        """Edges of the log10(M200/M☉) bins."""
        lo, hi, step = self.bins
        n = int(round((hi - lo) / step))
        if n < 1 or not np.isclose(lo + n * step, hi):
            raise InputError(f"bins {lo}:{hi}:{step} do not divide the range into whole steps")
        return lo + step * np.arange(n + 1)

    def instrument_model(self):
        """The :class:`cmcore.instrument.Instrument` of the build (preset, then ``star_noise``)."""
        from .instrument import get_instrument, with_star_noise

        inst = get_instrument(self.instrument)
        return inst if self.star_noise is None else with_star_noise(inst, self.star_noise)

    @property
    def pixel_scale_arcsec(self) -> float:
        """Angular size of one pixel [arcsec]."""
        return self.fov_arcmin * 60.0 / self.npix

    def to_json(self) -> str:
        """JSON of every setting (tuples as lists)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "DatasetConfig":
        """Inverse of :meth:`to_json`."""
        d = json.loads(text)
        for k in ("bins", "projections", "channels", "z_range", "split_fractions"):
            d[k] = tuple(d[k])
        return cls(**d)

    def differences(self, other: "DatasetConfig") -> list[str]:
        """Settings that differ from ``other``, ignoring ``per_bin`` (which may grow)."""
        a, b = dataclasses.asdict(self), dataclasses.asdict(other)
        return [f"{k}: {b[k]!r} in the file, {a[k]!r} now" for k in a if k != "per_bin" and a[k] != b[k]]


#: Labels every dataset holds, one value per image.
LABELS = ("m200", "log10_m200", "r200", "theta200_arcmin", "halo_id", "projection", "azimuth", "redshift",
          "split")


def read_labels(f: h5py.File, names: Sequence[str] = LABELS, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Labels of an open dataset file (all images, or ``rows``), refusing missing ones by name."""
    missing = [n for n in names if f"labels/{n}" not in f]
    if missing:
        raise FileFormatError(f"{f.filename}: no label(s) {', '.join(missing)}")
    out = {n: f[f"labels/{n}"][:] for n in names}
    return out if rows is None else {n: v[rows] for n, v in out.items()}


def split_code(split: str) -> int:
    """The integer a split is stored as in ``labels/split`` (0 train, 1 validation, 2 test)."""
    if split not in SPLIT_NAMES:
        raise InputError(f"unknown split {split!r}; choose from {', '.join(SPLIT_NAMES)}")
    return SPLIT_NAMES.index(split)


def open_dataset(path: str | os.PathLike) -> h5py.File:
    """Open a cmc dataset read-only, refusing files of another format."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"dataset {path} does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise FileFormatError(f"{path} is not a readable HDF5 file ({exc})") from None
    if f.attrs.get("format") != FORMAT:
        f.close()
        raise FileFormatError(f"{path} is not a cmc dataset (no format={FORMAT!r} attribute)")
    return f


def split_indices(path: str | os.PathLike, split: str) -> np.ndarray:
    """Indices of the images of one split (``train``, ``validation`` or ``test``) in a dataset file."""
    code = split_code(split)
    with open_dataset(path) as f:
        return np.flatnonzero(f["labels/split"][:] == code)


def channel_units(channel: str) -> str:
    """Units of a channel's pixels (astropy/FITS string)."""
    from .observables import CHANNEL_UNITS

    return CHANNEL_UNITS[channel]


def instrument_description(config: DatasetConfig) -> dict:
    """Per-channel noise rms and beam FWHM of the build's instrument (preset and ``star_noise``)."""
    return config.instrument_model().describe()


def noise_field(channel: str, seed: int, redshift: float, config: DatasetConfig, cosmology=None) -> np.ndarray:
    """The beamed noise that a dataset image of ``channel`` received from ``seed``.

    :func:`cmcore.render.render_observed` draws the noise of each channel from
    ``default_rng(seed)`` on the field enlarged by the beam margin m
    (:func:`cmcore.instrument.beam_margin_pixels`), adds it, applies the beam and
    crops.  The beam is linear, so the noise part of the image is this function's
    result, and ``image − noise_field(seed) + noise_field(new_seed)`` is the image
    with a new noise realisation (:func:`redraw_noise`).
    """
    from .instrument import beam, beam_margin_pixels, draw_noise
    from .observables import pixel_area_kpc2

    inst = config.instrument_model()
    pix = config.pixel_scale_arcsec
    m = beam_margin_pixels(inst, channel, pix)
    rms = inst[channel].noise_rms
    if inst[channel].mass_per_pixel:
        rms /= pixel_area_kpc2(redshift, pix, distance_cosmology(cosmology))
    big = config.npix + 2 * m
    noise = draw_noise((big, big), rms, int(seed))
    return beam(noise, inst[channel].beam_fwhm_arcmin, pix)[m:m + config.npix, m:m + config.npix]


def redraw_noise(path: str | os.PathLike, index: int, channel: str, new_seed: int) -> np.ndarray:
    """Image ``index`` of ``channel`` in a dataset file with its noise drawn anew from ``new_seed``."""
    from .cosmology import cosmology_from_json

    with open_dataset(path) as f:
        config = DatasetConfig.from_json(f.attrs["config"])
        if channel not in config.channels:
            raise InputError(f"{path} has no channel {channel!r} (it has {', '.join(config.channels)})")
        c = config.channels.index(channel)
        image = f[f"images/{channel}"][index].astype(np.float64)
        seed = int(f["noise/seed"][index, c])
        z = float(f["labels/redshift"][index])
        cosmo = cosmology_from_json(f.attrs["cosmology"])
    return image - noise_field(channel, seed, z, config, cosmo) + noise_field(channel, new_seed, z, config, cosmo)


def distance_cosmology(cosmology):
    """``cosmology``, or cmc's default cosmology when it is None."""
    from .observables import default_cosmology

    return cosmology if cosmology is not None else default_cosmology()
