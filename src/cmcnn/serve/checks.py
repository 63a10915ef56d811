"""The checks a cutout must pass against a model's contract, and how inputs are read (:class:`ReadOptions`).

Shape, channel names, units, the WCS pixel scale and non-finite pixels (the module
docstring of :mod:`cmcnn.serve.cutouts` lists them); each failure is a :class:`Refused`
with a one-line reason.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from cmcore.errors import InputError

from cmcnn.serve.metadata import ModelInfo
from cmcnn.serve.redshift import RedshiftCatalog, Refused

NONFINITE_POLICIES = ("refuse", "zero", "median")
_ARCSEC = {"deg": 3600.0, "arcmin": 60.0, "arcsec": 1.0, "mas": 1e-3, "rad": 206264.80624709636}
_CELESTIAL = ("RA--", "DEC-", "GLON", "GLAT", "ELON", "ELAT", "SLON", "SLAT", "HLON", "HLAT")

__all__ = ["NONFINITE_POLICIES", "ReadOptions", "Refused", "check_cutout", "check_header", "pixel_scales_arcsec",
           "repair_nonfinite"]


@dataclass(frozen=True)
class ReadOptions:
    """How inputs are checked and repaired (see the module docstring)."""

    pixel_scale_rtol: float = 0.01
    require_wcs: bool = True
    nonfinite: str = "refuse"
    max_fill_fraction: float = 0.1
    hdu: int | None = None
    fits_reader: str = "fast"
    redshift: float | None = None
    catalog: RedshiftCatalog | None = None
    extrapolate: bool = False

    def __post_init__(self) -> None:
        if self.redshift is not None and not (math.isfinite(self.redshift) and self.redshift > 0):
            raise InputError(f"--redshift must be finite and positive, got {self.redshift}")
        if self.fits_reader not in ("fast", "astropy"):
            raise InputError(f"FITS reader must be fast or astropy, got {self.fits_reader!r}")
        if self.nonfinite not in NONFINITE_POLICIES:
            raise InputError(f"non-finite policy must be one of {', '.join(NONFINITE_POLICIES)}, "
                             f"got {self.nonfinite!r}")
        if not 0 <= self.max_fill_fraction <= 1:
            raise InputError(f"--max-fill-fraction must be in [0, 1], got {self.max_fill_fraction}")
        if not self.pixel_scale_rtol > 0:
            raise InputError(f"--pixel-scale-rtol must be positive, got {self.pixel_scale_rtol}")
        if self.hdu is not None and self.hdu < 0:
            raise InputError(f"--hdu must be >= 0, got {self.hdu}")


def card_text(value) -> str:
    """A header value as text (bytes decoded)."""
    return value.decode() if isinstance(value, bytes) else str(value)


@lru_cache(maxsize=256)
def _parse_unit(text: str):
    from astropy import units as u

    text = text.strip()
    if text == "":
        return u.dimensionless_unscaled
    for fmt in ("fits", "generic"):
        try:
            return u.Unit(text, format=fmt)
        except ValueError:
            continue
    return None


@lru_cache(maxsize=256)
def _same_unit(have: str, want: str) -> bool | None:
    """Whether two unit strings are the same unit (``None``: ``have`` is not a unit)."""
    if have.strip() == want.strip():
        return True
    a, b = _parse_unit(have), _parse_unit(want)
    if a is None:
        return None
    return b is not None and a == b


def check_unit(have: str, want: str, what: str = "BUNIT") -> None:
    """Refuse a unit ``have`` that is not the model's ``want`` (compared as astropy units)."""
    same = _same_unit(have, want)
    if same is None:
        raise Refused(f"{what} {have!r} is not a unit astropy can read (the model takes {want or 'dimensionless'!r})")
    if not same:
        raise Refused(f"{what} is {have!r}, the model takes {want or 'dimensionless'!r}")


def check_scale(scales: tuple[float, float], info: ModelInfo, options: ReadOptions) -> None:
    """Refuse pixel scales [arcsec] more than ``options.pixel_scale_rtol`` from the model's."""
    want = info.pixel_scale_arcsec
    for s in scales:
        if not abs(s / want - 1.0) <= options.pixel_scale_rtol:
            shown = ", ".join(f"{x:.6g}" for x in scales)
            raise Refused(f"pixel scale {shown} arcsec from the WCS, the model takes {want:g} arcsec "
                          f"(tolerance {options.pixel_scale_rtol:g})")


def pixel_scales_arcsec(header: Mapping) -> tuple[float, float] | None:
    """Pixel side along FITS axes 1 and 2 [arcsec] from a celestial WCS, or ``None`` without one.

    The column norms of the linear transformation (``CDi_j``, else ``PCi_j`` ×
    ``CDELTi``; ``CROTA2`` rotates and leaves them unchanged), in ``CUNITi`` (degrees
    by default), as astropy's ``proj_plane_pixel_scales``.
    """
    ctype = [str(header.get(f"CTYPE{i}", "") or "") for i in (1, 2)]
    if not all(c[:4].upper() in _CELESTIAL or c[1:4].upper() in ("LON", "LAT") for c in ctype):
        return None
    if any(f"CD{i}_{j}" in header for i in (1, 2) for j in (1, 2)):
        m = [[float(header.get(f"CD{i}_{j}", 0.0)) for j in (1, 2)] for i in (1, 2)]
    else:
        cdelt = [float(header.get(f"CDELT{i}", 1.0)) for i in (1, 2)]
        m = [[cdelt[i - 1] * float(header.get(f"PC{i}_{j}", 1.0 if i == j else 0.0)) for j in (1, 2)]
             for i in (1, 2)]
    factor = []
    for i in (1, 2):
        unit = str(header.get(f"CUNIT{i}", "deg") or "deg").strip().lower()
        if unit not in _ARCSEC:
            return None
        factor.append(_ARCSEC[unit])
    return tuple(float(np.hypot(m[0][j] * factor[0], m[1][j] * factor[1])) for j in (0, 1))


def check_cutout(data: np.ndarray, header: Mapping, info: ModelInfo, options: ReadOptions,
                 out: np.ndarray) -> int:
    """Check one FITS image against the model and write it, as (npix, npix, C), into ``out``.

    Parameters
    ----------
    data : ndarray
        The HDU's data as NumPy indexes it: (npix, npix), or (C, npix, npix) for a cube.
    header : mapping
        Its header cards (``get(key, default)``).
    info, options
        The model's contract and the checks to apply.
    out : ndarray, (npix, npix, C) float32
        Where the image goes.

    Returns
    -------
    int
        Number of pixels filled under the non-finite policy.

    Raises
    ------
    Refused
        With the one-line reason.
    """
    data = squeeze_planes(data, info)
    check_header(data.shape, header, info, options)
    return place_cutout(data, out, options)


def squeeze_planes(data: np.ndarray, info: ModelInfo) -> np.ndarray:
    """The image without degenerate leading axes (of length 1, beyond those the model takes)."""
    while data.ndim > 2 + (info.n_channels > 1) and data.shape[0] == 1:  # degenerate leading axes
        data = data[0]
    return data


def place_cutout(data: np.ndarray, out: np.ndarray, options: ReadOptions) -> int:
    """Copy a checked image into ``out`` under the non-finite policy; return the pixels filled."""
    if data.ndim == 2:
        out[..., 0] = data
    else:
        out[...] = np.moveaxis(data, 0, -1)
    return repair_nonfinite(out, options)


def check_header(shape: tuple[int, ...], header: Mapping, info: ModelInfo, options: ReadOptions) -> None:
    """Checks 1-4 of the module docstring on an image's shape and header; :class:`Refused` if one fails."""
    npix, c = info.npix, info.n_channels
    if c == 1:
        if shape != (npix, npix):
            raise Refused(f"image of shape {shape_text(shape)}, the model takes {npix}x{npix}")
        card = header.get("CHANNEL")
        if card is not None and str(card).strip() != info.channels[0]:
            raise Refused(f"CHANNEL card is {str(card).strip()!r}, the model takes {info.channels[0]!r}")
        bunit = header.get("BUNIT")
        if bunit is not None:
            check_unit(str(bunit), info.units[info.channels[0]])
    else:
        if shape != (c, npix, npix):
            raise Refused(f"image of shape {shape_text(shape)}, the model takes a cube of {c} planes "
                          f"({', '.join(info.channels)}) of {npix}x{npix}")
        names = [header.get(f"CHANNEL{k}") for k in range(1, c + 1)]
        if any(n is None for n in names):
            raise Refused(f"cube planes are not named (cards CHANNEL1..CHANNEL{c} = "
                          f"{', '.join(info.channels)} are required)")
        names = [str(n).strip() for n in names]
        if names != list(info.channels):
            raise Refused(f"cube planes are {', '.join(names)}, the model takes {', '.join(info.channels)}")
        for k, ch in enumerate(info.channels, start=1):
            bunit = header.get(f"BUNIT{k}", header.get("BUNIT"))
            if bunit is not None:
                check_unit(str(bunit), info.units[ch], f"BUNIT{k}" if f"BUNIT{k}" in header else "BUNIT")
    scales = pixel_scales_arcsec(header)
    if scales is None:
        if options.require_wcs:
            raise Refused("no celestial WCS to check the pixel scale (use --no-wcs-check to accept)")
    else:
        check_scale(scales, info, options)


def shape_text(shape: tuple[int, ...]) -> str:
    """A data shape in array order, ``24x24`` or ``4x24x24``."""
    return "x".join(str(s) for s in shape)


def repair_nonfinite(image: np.ndarray, options: ReadOptions) -> int:
    """Apply the non-finite policy to one (npix, npix, C) image in place; return pixels filled."""
    if math.isfinite(image.sum()):  # NaN and inf propagate into the sum (an overflow only costs the full check)
        return 0
    finite = np.isfinite(image)
    bad = int(finite.size - np.count_nonzero(finite))
    if options.nonfinite == "refuse":
        raise Refused(f"{bad} NaN/inf pixel(s) (use --fill-nonfinite zero|median to fill them)")
    npix2 = image.shape[0] * image.shape[1]
    for k in range(image.shape[-1]):
        ok = finite[..., k]
        n_bad = npix2 - int(np.count_nonzero(ok))
        if n_bad == 0:
            continue
        if n_bad > options.max_fill_fraction * npix2:
            raise Refused(f"{n_bad} of {npix2} pixels of channel {k + 1} are NaN/inf, more than "
                          f"--max-fill-fraction {options.max_fill_fraction:g}")
        plane = image[..., k]
        plane[~ok] = 0.0 if options.nonfinite == "zero" else np.median(plane[ok])
    return bad
