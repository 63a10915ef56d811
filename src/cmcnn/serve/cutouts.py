"""Survey cutouts for prediction: finding them, reading them, checking them against a model.

Inputs (:func:`expand_inputs`), in the order given; directories and globs in sorted
name order, directories not recursed:

- **FITS cutouts** (``.fits``, ``.fit``, ``.fts``, also ``.gz`` and tile-compressed
  ``.fz``): one cutout per file, the first HDU holding an image (or ``hdu=``).  A
  single-channel model takes a 2-D image (npix, npix).  The multi-channel model takes
  a **FITS cube**: one image HDU of shape (C, npix, npix) (NAXIS3 = C), planes in the
  model's channel order, named by the cards ``CHANNEL1`` … ``CHANNELC`` (required: a
  cube whose planes are not named is refused, since a wrong order would pass
  silently), units in ``BUNIT1`` … ``BUNITC`` or one ``BUNIT`` for all planes.
  :func:`write_cube` makes such a cube from single-channel cutouts (e.g. of ``cmc render``).
- **cmc dataset HDF5** (``.h5``, ``.hdf5``): every image of the file, channels picked by
  name from ``images/<channel>``; units and pixel scale from its attributes.
- **NumPy stacks** (``.npy``): (n, npix, npix, C), or (n, npix, npix) for one channel,
  or one image without the leading axis; pixel values in the model's units (a ``.npy``
  carries no units or WCS: the user vouches for them).

Checks (:func:`check_cutout`), each failing with a one-line reason:

1. shape: (npix, npix) per channel, C planes for C channels;
2. channel: a ``CHANNEL``/``CHANNELk`` card, where present, names the model's channel;
3. units: ``BUNIT``, where present, is the model's unit (compared as astropy units, so
   ``Msun / kpc2`` equals ``solMass kpc-2``); an unparseable ``BUNIT`` is refused;
4. pixel scale from the celestial WCS (``CDi_j``, or ``PCi_j`` × ``CDELTi``, in
   ``CUNITi``; astropy's ``proj_plane_pixel_scales``) within ``pixel_scale_rtol`` of the
   model's on both axes; a cutout without a celestial WCS is refused unless
   ``require_wcs=False``;
5. NaN/inf pixels: refused, unless ``nonfinite="zero"`` (set to 0) or ``"median"`` (set
   to the median of the cutout's finite pixels of that channel), and then only up to
   ``max_fill_fraction`` of the pixels of each channel;
6. redshift, for a model that takes one (:mod:`cmcnn.serve.redshift`): present, and in
   the training range unless ``extrapolate``.

FITS files go through a fast reader (one ``read`` of the file, the header cards parsed
here, the data block viewed with NumPy): uncompressed files whose image is IEEE float
(BITPIX −32/−64) without ``BSCALE``/``BZERO``.  Anything else (gzip, tile compression,
integer data, scaled data) goes through ``astropy.io.fits``; both give the same arrays
(``fits_reader="astropy"`` sends every file through astropy).
"""
from __future__ import annotations

import glob
import math
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from cmcore.errors import InputError

from cmcnn.serve.metadata import ModelInfo
from cmcnn.serve.redshift import RedshiftCatalog, Refused, header_redshift, resolve

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz", ".fits.fz", ".fz")
NPY_SUFFIXES = (".npy",)
HDF5_SUFFIXES = (".h5", ".hdf5")
NONFINITE_POLICIES = ("refuse", "zero", "median")
#: Files larger than this go through astropy (memory-mapped) rather than one read.
_FAST_MAX_BYTES = 64 << 20
_BLOCK = 2880
_ARCSEC = {"deg": 3600.0, "arcmin": 60.0, "arcsec": 1.0, "mas": 1e-3, "rad": 206264.80624709636}
_CELESTIAL = ("RA--", "DEC-", "GLON", "GLAT", "ELON", "ELAT", "SLON", "SLAT", "HLON", "HLAT")


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


# --------------------------------------------------------------------------- sources
@dataclass
class Source:
    """A run of inputs of one kind: FITS files, or the rows of one stack."""

    kind: str                  # "fits", "npy", "h5" or "refused"
    paths: list[str]
    n: int                     # inputs (cutouts) it holds
    reason: str = ""           # for kind "refused"


def _kind(path: str) -> str | None:
    low = path.lower()
    if low.endswith(FITS_SUFFIXES):
        return "fits"
    if low.endswith(NPY_SUFFIXES):
        return "npy"
    if low.endswith(HDF5_SUFFIXES):
        return "h5"
    return None


def expand_inputs(inputs: Iterable[str | os.PathLike], info: ModelInfo,
                  options: ReadOptions = ReadOptions()) -> list[Source]:
    """Files, directories and glob patterns as a list of :class:`Source`, in input order.

    Consecutive FITS files share one source; each stack is a source of its rows.  A
    path that does not exist, matches nothing or is of an unknown type, and a stack
    that fails its file-level checks, becomes a ``refused`` source (one input).
    """
    sources: list[Source] = []

    def add_file(path: str) -> None:
        kind = _kind(path)
        if kind == "fits":
            if sources and sources[-1].kind == "fits":
                sources[-1].paths.append(path)
                sources[-1].n += 1
            else:
                sources.append(Source("fits", [path], 1))
        elif kind is None:
            sources.append(Source("refused", [path], 1, "not a FITS, .npy or HDF5 file (unknown suffix)"))
        else:
            try:
                n = stack_length(path, kind, info, options)
                sources.append(Source(kind, [path], n))
            except Refused as exc:
                sources.append(Source("refused", [path], 1, str(exc)))

    for item in inputs:
        item = os.fspath(item)
        if os.path.isdir(item):
            with os.scandir(item) as it:
                names = sorted(e.name for e in it if _kind(e.name) and not e.name.startswith(".") and e.is_file())
            for name in names:
                add_file(os.path.join(item, name))
        elif os.path.exists(item):
            add_file(item)
        elif glob.has_magic(item):
            matches = sorted(p for p in glob.glob(item, recursive=True) if os.path.isfile(p))
            if not matches:
                sources.append(Source("refused", [item], 1, "no file matches this pattern"))
            for p in matches:
                add_file(p)
        else:
            sources.append(Source("refused", [item], 1, "no such file or directory"))
    return sources


def stack_length(path: str, kind: str, info: ModelInfo, options: ReadOptions) -> int:
    """Number of images in a ``.npy`` or dataset HDF5 stack, after its file-level checks."""
    if kind == "npy":
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise Refused(f"unreadable .npy file ({exc})") from None
        return _npy_view(arr, info).shape[0]
    with _open_h5(path, info, options) as (_, dsets):
        return dsets[0].shape[0]


def _npy_view(arr: np.ndarray, info: ModelInfo) -> np.ndarray:
    """A .npy array as (n, npix, npix, C) (a view), or :class:`Refused`."""
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise Refused(f"array of dtype {arr.dtype} is not numeric")
    npix, c = info.npix, info.n_channels
    shp = arr.shape
    if shp == (npix, npix, c) or (c == 1 and shp == (npix, npix)):
        return arr.reshape(1, npix, npix, c)
    if len(shp) == 4 and shp[1:] == (npix, npix, c):
        return arr
    if c == 1 and len(shp) == 3 and shp[1:] == (npix, npix):
        return arr.reshape(shp[0], npix, npix, 1)
    want = f"(n, {npix}, {npix}, {c})" + (f" or (n, {npix}, {npix})" if c == 1 else "")
    raise Refused(f"array of shape {shp}, the model takes {want} (NHWC, channels {', '.join(info.channels)})")


class _open_h5:
    """Context manager: a cmc dataset file checked against the model, and its channel datasets."""

    def __init__(self, path: str, info: ModelInfo, options: ReadOptions) -> None:
        self.path, self.info, self.options = path, info, options

    def __enter__(self):
        import h5py

        try:
            self.f = h5py.File(self.path, "r")
        except OSError as exc:
            raise Refused(f"unreadable HDF5 file ({exc})") from None
        try:
            return self.f, self._check()
        except BaseException:
            self.f.close()
            raise

    def _check(self):
        f, info = self.f, self.info
        from cmcore.datafile import FORMAT

        if f.attrs.get("format") != FORMAT:
            raise Refused(f"not a cmc dataset (no format={FORMAT!r} attribute)")
        missing = [c for c in info.channels if f"images/{c}" not in f]
        if missing:
            raise Refused(f"has no image channel(s) {', '.join(missing)} (the model takes {', '.join(info.channels)})")
        dsets = [f[f"images/{c}"] for c in info.channels]
        for c, d in zip(info.channels, dsets):
            if d.ndim != 3 or d.shape[1:] != (info.npix, info.npix):
                raise Refused(f"images/{c} has shape {d.shape}, the model takes (n, {info.npix}, {info.npix})")
            unit = d.attrs.get("units")
            if unit is not None:
                _check_unit(_text(unit), info.units[c], f"images/{c} units")
        if len({d.shape[0] for d in dsets}) != 1:
            raise Refused(f"channels hold different numbers of images {[d.shape[0] for d in dsets]}")
        scale = f.attrs.get("pixel_scale_arcsec")
        if scale is None:
            if self.options.require_wcs:
                raise Refused("no pixel_scale_arcsec attribute (use --no-wcs-check to accept)")
        else:
            _check_scale((float(scale), float(scale)), info, self.options)
        return dsets

    def __exit__(self, *exc) -> None:
        self.f.close()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --------------------------------------------------------------------------- checks
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


def _check_unit(have: str, want: str, what: str = "BUNIT") -> None:
    same = _same_unit(have, want)
    if same is None:
        raise Refused(f"{what} {have!r} is not a unit astropy can read (the model takes {want or 'dimensionless'!r})")
    if not same:
        raise Refused(f"{what} is {have!r}, the model takes {want or 'dimensionless'!r}")


def _check_scale(scales: tuple[float, float], info: ModelInfo, options: ReadOptions) -> None:
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
    data = _squeeze(data, info)
    check_header(data.shape, header, info, options)
    return _place(data, out, options)


def _squeeze(data: np.ndarray, info: ModelInfo) -> np.ndarray:
    while data.ndim > 2 + (info.n_channels > 1) and data.shape[0] == 1:  # degenerate leading axes
        data = data[0]
    return data


def _place(data: np.ndarray, out: np.ndarray, options: ReadOptions) -> int:
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
            raise Refused(f"image of shape {_shape(shape)}, the model takes {npix}x{npix}")
        card = header.get("CHANNEL")
        if card is not None and str(card).strip() != info.channels[0]:
            raise Refused(f"CHANNEL card is {str(card).strip()!r}, the model takes {info.channels[0]!r}")
        bunit = header.get("BUNIT")
        if bunit is not None:
            _check_unit(str(bunit), info.units[info.channels[0]])
    else:
        if shape != (c, npix, npix):
            raise Refused(f"image of shape {_shape(shape)}, the model takes a cube of {c} planes "
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
                _check_unit(str(bunit), info.units[ch], f"BUNIT{k}" if f"BUNIT{k}" in header else "BUNIT")
    scales = pixel_scales_arcsec(header)
    if scales is None:
        if options.require_wcs:
            raise Refused("no celestial WCS to check the pixel scale (use --no-wcs-check to accept)")
    else:
        _check_scale(scales, info, options)


def _shape(shape: tuple[int, ...]) -> str:
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


# --------------------------------------------------------------------------- FITS reading
class Cards(dict):
    """Header cards of one HDU as raw value strings, parsed on access (``get``, ``[]``)."""

    def get(self, key, default=None):
        raw = dict.get(self, key)
        return default if raw is None else _card_value(raw)

    def __getitem__(self, key):
        return _card_value(dict.__getitem__(self, key))


def _card_value(raw: str):
    s = raw.strip()
    if s.startswith("'"):
        out, i = [], 1
        while i < len(s):
            if s[i] == "'":
                if s[i + 1:i + 2] == "'":
                    out.append("'")
                    i += 2
                    continue
                break
            out.append(s[i])
            i += 1
        return "".join(out).rstrip()
    v = s.split("/", 1)[0].strip()
    if v in ("T", "F"):
        return v == "T"
    if v == "":
        return None
    try:
        return int(v)
    except ValueError:
        pass
    try:
        return float(v.replace("D", "E").replace("d", "e"))
    except ValueError:
        return v


_END = b"END" + b" " * 77
_CARD = re.compile(r"(.{8})(.{2})(.{70})", re.S)


def _parse_header(buf: bytes, start: int) -> tuple[Cards, int] | None:
    """Cards of the header at ``start`` and the offset of its data, or ``None`` if truncated."""
    pos = start
    while True:  # the END card, on a card boundary
        end = buf.find(_END, pos)
        if end < 0:
            return None
        if (end - start) % 80 == 0:
            break
        pos = end + 1
    text = buf[start:end].decode("ascii", "replace")
    cards = Cards((k.rstrip(), v) for k, eq, v in _CARD.findall(text) if eq == "= ")
    return cards, start + -(-(end + 80 - start) // _BLOCK) * _BLOCK


def _data_bytes(cards: Cards) -> int:
    """Bytes of the data unit after a header, padded to whole blocks (FITS 4.0, eq. 2)."""
    naxis = int(cards.get("NAXIS", 0))
    if naxis == 0:
        return 0
    size = 1
    for i in range(1, naxis + 1):
        size *= int(cards[f"NAXIS{i}"])
    size = abs(int(cards["BITPIX"])) // 8 * int(cards.get("GCOUNT", 1)) * (int(cards.get("PCOUNT", 0)) + size)
    return -(-size // _BLOCK) * _BLOCK


def _fast_fits(path: str, hdu: int | None):
    """(data, header, hdu) through the fast path, or ``None`` when astropy must read the file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size > _FAST_MAX_BYTES:
            return None
        buf = os.read(fd, size)
    finally:
        os.close(fd)
    if not buf.startswith(b"SIMPLE  ="):
        return None
    pos, k = 0, 0
    while pos < len(buf):
        parsed = _parse_header(buf, pos)
        if parsed is None:
            return None
        cards, data_at = parsed
        naxis = int(cards.get("NAXIS", 0))
        if k > 0 and str(cards.get("XTENSION", "")).strip() != "IMAGE":
            if hdu == k or (hdu is None and cards.get("ZIMAGE")):
                return None  # a table or a compressed image: astropy
        elif (hdu == k) or (hdu is None and naxis >= 2):
            bitpix = int(cards["BITPIX"])
            if bitpix not in (-32, -64) or "BSCALE" in cards or "BZERO" in cards:
                return None
            shape = tuple(int(cards[f"NAXIS{i}"]) for i in range(naxis, 0, -1))
            count = math.prod(shape) if shape else 0
            if data_at + count * (abs(bitpix) // 8) > len(buf):
                return None
            dtype = ">f4" if bitpix == -32 else ">f8"
            return np.frombuffer(buf, dtype=dtype, count=count, offset=data_at).reshape(shape), cards, k
        pos = data_at + _data_bytes(cards)
        k += 1
    return None


def _astropy_fits(path: str, hdu: int | None):
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        if hdu is not None:
            if hdu >= len(hdul):
                raise Refused(f"has {len(hdul)} HDU(s), no HDU {hdu}")
            picks = [hdu]
        else:
            picks = range(len(hdul))
        for k in picks:
            h = hdul[k]
            if hdu is not None or (getattr(h, "is_image", False) and h.header.get("NAXIS", 0) >= 2):
                data = h.data
                if data is None or not np.issubdtype(np.asarray(data).dtype, np.number):
                    raise Refused(f"HDU {k} holds no image")
                return np.array(data), dict(h.header.items()), k
    raise Refused("holds no image HDU")


#: Header cards the checks read; a FITS header's verdict is cached on their raw values.
_CHECKED = ("CHANNEL", "BUNIT", "CTYPE1", "CTYPE2", "CUNIT1", "CUNIT2", "CDELT1", "CDELT2",
            "CD1_1", "CD1_2", "CD2_1", "CD2_2", "PC1_1", "PC1_2", "PC2_1", "PC2_2")
_verdicts: dict = {}
_verdicts_lock = threading.Lock()


def _cached_check(shape: tuple[int, ...], cards: Cards, info: ModelInfo, options: ReadOptions) -> None:
    """:func:`check_header`, remembered for headers whose checked cards are identical.

    Survey cutouts of one kind share their WCS scale, units and channel cards, so the
    checks (WCS arithmetic, unit parsing) run once per distinct set of those cards.
    """
    keys = _CHECKED + tuple(f"{k}{i}" for i in range(1, info.n_channels + 1) for k in ("CHANNEL", "BUNIT")
                            if info.n_channels > 1)
    key = (info.key, options, shape, tuple(dict.get(cards, k) for k in keys))
    verdict = _verdicts.get(key)
    if verdict is None:
        try:
            check_header(shape, cards, info, options)
            verdict = ""
        except Refused as exc:
            verdict = str(exc)
        with _verdicts_lock:
            if len(_verdicts) > 4096:
                _verdicts.clear()
            _verdicts[key] = verdict
    if verdict:
        raise Refused(verdict)


def read_fits(path: str, info: ModelInfo, options: ReadOptions, out: np.ndarray) -> tuple[int, int]:
    """Read, check and place one FITS cutout into ``out`` (npix, npix, C).

    Returns
    -------
    (hdu, filled) : tuple of int
        The HDU read and the pixels filled under the non-finite policy.
    """
    hdu, filled, _ = read_fits_cutout(path, info, options, out)
    return hdu, filled


def read_fits_cutout(path: str, info: ModelInfo, options: ReadOptions, out: np.ndarray) -> tuple[int, int, float]:
    """:func:`read_fits`, and the redshift to predict the cutout at (NaN for an image-only model)."""
    try:
        fast = _fast_fits(path, options.hdu) if options.fits_reader == "fast" else None
        data, header, k = fast if fast is not None else _astropy_fits(path, options.hdu)
    except Refused:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise Refused(f"unreadable FITS file ({exc.__class__.__name__}: {exc})") from None
    try:
        z = math.nan
        if info.takes_redshift:
            z = resolve(info.redshift_range, catalogued=None if options.catalog is None else options.catalog.lookup(path),
                        given=options.redshift, own=header_redshift(header), extrapolate=options.extrapolate)
        if fast is None:
            return k, check_cutout(data, header, info, options, out), z
        data = _squeeze(data, info)
        _cached_check(data.shape, header, info, options)
        return k, _place(data, out, options), z
    except Refused as exc:
        raise Refused(f"HDU {k}: {exc}") from None


# --------------------------------------------------------------------------- batches
@dataclass
class Batch:
    """Images read for one inference call, with their provenance and the refusals met."""

    images: np.ndarray                       # (k, npix, npix, C) float32
    names: list[str]
    hdus: np.ndarray                         # int, -1 where not FITS
    indices: np.ndarray                      # int, row in a stack, -1 for FITS
    filled: np.ndarray                       # pixels filled per image
    refusals: list[tuple[str, str]] = field(default_factory=list)   # (name, reason)
    redshift: np.ndarray | None = None       # per image (NaN for an image-only model)
    log10_err: np.ndarray | None = None      # set by the prediction, for a model with errors

    @property
    def n_inputs(self) -> int:
        return len(self.names) + len(self.refusals)


Task = tuple[Source, int, int]   # source, first item, stop


def plan(sources: Sequence[Source], batch_size: int) -> Iterator[Task]:
    """Split sources into tasks of at most ``batch_size`` inputs, in input order."""
    for src in sources:
        if src.kind == "refused":
            yield src, 0, 1
            continue
        for start in range(0, src.n, batch_size):
            yield src, start, min(src.n, start + batch_size)


def read_task(task: Task, info: ModelInfo, options: ReadOptions) -> Batch:
    """Read one task's inputs into a :class:`Batch` (runs in a reader thread)."""
    src, start, stop = task
    if src.kind == "refused":
        return _empty(info, [(src.paths[0], src.reason)])
    if src.kind == "fits":
        return _read_fits_batch(src.paths[start:stop], info, options)
    return _read_stack_batch(src, start, stop, info, options)


def _empty(info: ModelInfo, refusals: list) -> Batch:
    z = np.zeros(0, dtype=np.int64)
    return Batch(np.empty((0, *info.input_shape), np.float32), [], z, z, z, refusals, np.zeros(0))


def _read_fits_batch(paths: Sequence[str], info: ModelInfo, options: ReadOptions) -> Batch:
    images = np.empty((len(paths), *info.input_shape), dtype=np.float32)
    names, hdus, filled, refusals, redshift = [], [], [], [], []
    for path in paths:
        try:
            hdu, nfill, z = read_fits_cutout(path, info, options, images[len(names)])
        except Refused as exc:
            refusals.append((path, str(exc)))
            continue
        names.append(path)
        hdus.append(hdu)
        filled.append(nfill)
        redshift.append(z)
    k = len(names)
    return Batch(images[:k], names, np.asarray(hdus, np.int64), np.full(k, -1, np.int64),
                 np.asarray(filled, np.int64), refusals, np.asarray(redshift, np.float64))


def _read_stack_batch(src: Source, start: int, stop: int, info: ModelInfo, options: ReadOptions) -> Batch:
    path = src.paths[0]
    raw = np.empty((stop - start, *info.input_shape), dtype=np.float32)
    own = [None] * (stop - start)
    try:
        if src.kind == "npy":
            raw[...] = _npy_view(np.load(path, mmap_mode="r", allow_pickle=False), info)[start:stop]
        else:
            with _open_h5(path, info, options) as (f, dsets):
                for c, d in enumerate(dsets):
                    raw[..., c] = d[start:stop]
                if info.takes_redshift and "labels/redshift" in f:
                    own = f["labels/redshift"][start:stop].astype(float).tolist()
    except Refused as exc:  # the file changed since it was listed
        return _empty(info, [(f"{path}[{i}]", str(exc)) for i in range(start, stop)])
    keep, filled, refusals, redshift = [], [], [], []
    for i in range(stop - start):
        try:
            z = math.nan
            if info.takes_redshift:
                z = resolve(info.redshift_range,
                            catalogued=None if options.catalog is None else options.catalog.lookup(path, start + i),
                            given=options.redshift, own=own[i], extrapolate=options.extrapolate)
            filled.append(repair_nonfinite(raw[i], options))
            keep.append(i)
            redshift.append(z)
        except Refused as exc:
            refusals.append((f"{path}[{start + i}]", str(exc)))
    keep_a = np.asarray(keep, dtype=np.int64)
    images = raw if len(keep) == raw.shape[0] else raw[keep_a]
    return Batch(images, [path] * len(keep), np.full(len(keep), -1, np.int64), keep_a + start,
                 np.asarray(filled, np.int64), refusals, np.asarray(redshift, np.float64))


# --------------------------------------------------------------------------- cubes
def write_cube(out: str | os.PathLike, cutouts: Sequence[str | os.PathLike],
               channels: Sequence[str] | None = None) -> Path:
    """Stack single-channel FITS cutouts of one field into the multi-channel model's cube.

    Parameters
    ----------
    out : path-like
        FITS file to write (atomically): one image HDU (C, npix, npix) with the first
        cutout's header (celestial WCS on axes 1-2), ``CHANNELk`` and ``BUNITk`` cards,
        and a third axis ``CTYPE3 = 'CHANNEL'``.
    cutouts : sequence of path-like
        One FITS file per channel, e.g. written by ``cmc render``.
    channels : sequence of str, optional
        Channel names in cube order; by default each file's ``CHANNEL`` card.

    Returns
    -------
    Path
    """
    from astropy.io import fits

    from cmcore.fileio import atomic_write

    planes, heads = [], []
    for p in cutouts:
        with fits.open(p, memmap=False) as hdul:
            h = next((h for h in hdul if h.is_image and h.header.get("NAXIS", 0) == 2), None)
            if h is None:
                raise InputError(f"{p} holds no 2-D image")
            planes.append(np.asarray(h.data, dtype=np.float64))
            heads.append(h.header.copy())
    names = list(channels) if channels is not None else [str(h.get("CHANNEL", "")).strip() for h in heads]
    if len(names) != len(planes) or not all(names):
        raise InputError("name every plane: give channels= or use cutouts with a CHANNEL card")
    if len({p.shape for p in planes}) != 1:
        raise InputError(f"cutouts have different shapes {[p.shape for p in planes]}")
    s0 = pixel_scales_arcsec(heads[0])
    for p, h in zip(cutouts, heads):
        if pixel_scales_arcsec(h) != s0:
            raise InputError(f"{p} has another pixel scale than {cutouts[0]}")
    units = [str(h.get("BUNIT", "")) for h in heads]
    header = heads[0]
    for key in ("CHANNEL", "BUNIT"):
        header.remove(key, ignore_missing=True)
    for k, (name, unit) in enumerate(zip(names, units), start=1):
        header[f"CHANNEL{k}"] = (name, f"observable of plane {k}")
        header[f"BUNIT{k}"] = (unit, f"unit of plane {k}")
    header["CTYPE3"] = ("CHANNEL", "plane index")
    hdu = fits.PrimaryHDU(np.stack(planes), header=header)
    with atomic_write(out) as tmp:
        hdu.writeto(tmp, overwrite=True)
    return Path(out)


def iter_batches(sources: Sequence[Source], info: ModelInfo, options: ReadOptions, batch_size: int,
                 submit: Callable, window: int) -> Iterator[Batch]:
    """Read ``sources`` batch by batch with ``submit`` (an executor's), at most ``window`` ahead, in order."""
    return read_ahead(plan(sources, batch_size), info, options, submit, window)


def read_ahead(tasks: Iterable[Task], info: ModelInfo, options: ReadOptions, submit: Callable,
               window: int) -> Iterator[Batch]:
    """Read ``tasks`` (of :func:`plan`) with ``submit``, at most ``window`` ahead; batches in task order."""
    from collections import deque

    pending: deque = deque()
    for task in tasks:
        pending.append(submit(read_task, task, info, options))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()
