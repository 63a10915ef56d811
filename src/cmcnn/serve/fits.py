"""FITS cutouts: a fast reader for plain float images, astropy for the rest, and multi-channel cubes.

The fast path reads the file once, parses the header cards here and views the data block
with NumPy (uncompressed IEEE float images without ``BSCALE``/``BZERO``); gzip, tile
compression, integer and scaled data go through ``astropy.io.fits``; both give the same
arrays.  A header's verdict is cached on the raw values of the cards the checks read.
"""
from __future__ import annotations

import math
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cmcore.errors import InputError

from cmcnn.serve.checks import (ReadOptions, Refused, check_header, pixel_scales_arcsec, place_cutout,
                                shape_text, squeeze_planes)
from cmcnn.serve.metadata import ModelInfo
from cmcnn.serve.redshift import header_redshift, resolve

_FAST_MAX_BYTES = 64 << 20
_BLOCK = 2880


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
    """Bytes of the data unit after a header, padded to whole blocks (FITS 4.0, eq. 2).

    :class:`Refused` for a header that declares a negative size (a reader walking the HDUs
    by these sizes would otherwise never reach the end of the file).
    """
    naxis = int(cards.get("NAXIS", 0))
    if not 0 <= naxis <= 999:  # the standard's range (FITS 4.0, §4.4.1.1)
        raise Refused(f"declares NAXIS = {naxis}")
    if naxis == 0:
        return 0
    size = 1
    for i in range(1, naxis + 1):
        n = int(cards[f"NAXIS{i}"])
        if n < 0:
            raise Refused(f"declares NAXIS{i} = {n}")
        size *= n
    gcount, pcount = int(cards.get("GCOUNT", 1)), int(cards.get("PCOUNT", 0))
    if gcount < 0 or pcount < 0:
        raise Refused(f"declares GCOUNT = {gcount}, PCOUNT = {pcount}")
    size = abs(int(cards["BITPIX"])) // 8 * gcount * (pcount + size)
    return -(-size // _BLOCK) * _BLOCK


#: BITPIX values of the FITS standard (4.0, Table 8).
_BITPIX = (8, 16, 32, 64, -32, -64)


def check_geometry(header, info: ModelInfo, what: str = "") -> tuple[int, ...]:
    """The data shape a header declares, refused unless it can hold the model's image.

    Run on the header alone, before any data is read: a header that declares negative or
    absurd axes (``NAXIS1 = 1000000000``), a BITPIX outside the standard, or a shape that is
    not the model's (npix, npix) — or (C, npix, npix) for C channels, degenerate axes of
    length 1 allowed — is refused in one line instead of being read.
    """
    try:
        naxis = int(header.get("NAXIS", 0))
        bitpix = int(header.get("BITPIX", 0))
        if not 2 <= naxis <= 6:  # before the axes are read: NAXIS = 10**12 is a card like any other
            raise Refused(f"{what}declares NAXIS = {naxis}; an image has 2 to 6 axes here")
        shape = tuple(int(header.get(f"NAXIS{i}", -1)) for i in range(naxis, 0, -1))
    except (TypeError, ValueError) as exc:
        raise Refused(f"{what}unreadable NAXIS/BITPIX cards ({exc})") from None
    if bitpix not in _BITPIX:
        raise Refused(f"{what}BITPIX = {bitpix} is not a FITS data type")
    if any(n < 1 for n in shape):
        raise Refused(f"{what}declares the data shape {shape} (NAXIS = {naxis})")
    core = shape
    while len(core) > 2 + (info.n_channels > 1) and core[0] == 1:  # degenerate leading axes, as read
        core = core[1:]
    npix, c = info.npix, info.n_channels
    if c == 1 and core != (npix, npix):
        raise Refused(f"{what}image of shape {shape_text(core)}, the model takes {npix}x{npix}")
    if c > 1 and core != (c, npix, npix):
        raise Refused(f"{what}image of shape {shape_text(core)}, the model takes a cube of {c} planes "
                      f"({', '.join(info.channels)}) of {npix}x{npix}")
    return shape


def _fast_fits(path: str, hdu: int | None, info: ModelInfo):
    """(data, header, hdu) through the fast path, or ``None`` when astropy must read the file.

    The chosen HDU's header is checked against the model (:func:`check_geometry`) and
    against the file's length before its data are viewed.
    """
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
            shape = check_geometry(cards, info)
            bitpix = int(cards["BITPIX"])
            count = math.prod(shape)
            if data_at + count * (abs(bitpix) // 8) > len(buf):
                raise Refused(f"truncated: the header declares {count * (abs(bitpix) // 8)} bytes of data, "
                              f"the file holds {max(len(buf) - data_at, 0)}")
            if bitpix not in (-32, -64) or "BSCALE" in cards or "BZERO" in cards:
                return None
            dtype = ">f4" if bitpix == -32 else ">f8"
            return np.frombuffer(buf, dtype=dtype, count=count, offset=data_at).reshape(shape), cards, k
        pos = data_at + _data_bytes(cards)  # > the header's start: every HDU moves on
        k += 1
    return None


def _prescan(path: str) -> None:
    """Walk every header of a file astropy is about to open; :class:`Refused` for a declared size
    that would send a reader backwards (astropy itself loops for ever on ``GCOUNT = -1``).

    Files (decompressed, for gzip) larger than the fast reader's limit are not scanned.
    """
    if path.lower().endswith(".gz"):
        import gzip

        with gzip.open(path, "rb") as fh:
            buf = fh.read(_FAST_MAX_BYTES + 1)
    else:
        with open(path, "rb") as fh:
            buf = fh.read(_FAST_MAX_BYTES + 1)
    if len(buf) > _FAST_MAX_BYTES or not buf.startswith(b"SIMPLE  ="):
        return
    pos = 0
    while pos < len(buf):
        parsed = _parse_header(buf, pos)
        if parsed is None:
            return
        cards, data_at = parsed
        pos = data_at + _data_bytes(cards)


def _astropy_fits(path: str, hdu: int | None, info: ModelInfo):
    from astropy.io import fits

    _prescan(path)

    with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
        if hdu is not None:
            if hdu >= len(hdul):
                raise Refused(f"has {len(hdul)} HDU(s), no HDU {hdu}")
            picks = [hdu]
        else:
            picks = range(len(hdul))
        for k in picks:
            h = hdul[k]
            if hdu is not None or (getattr(h, "is_image", False) and h.header.get("NAXIS", 0) >= 2):
                if getattr(h, "is_image", False):
                    check_geometry(h.header, info)  # before the data are read
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


def _cached_check(shape: tuple[int, ...], cards: Cards, info: ModelInfo, options: ReadOptions,
                  cache: bool = True) -> None:
    """:func:`check_header`, remembered for headers whose checked cards are identical.

    Survey cutouts of one kind share their WCS scale, units and channel cards, so the
    checks (WCS arithmetic, unit parsing) run once per distinct set of those cards.
    Both readers use it; ``cache=False`` checks every header again.
    """
    if not cache:
        check_header(shape, cards, info, options)
        return
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


def read_fits(path: str, info: ModelInfo, options: ReadOptions, out: np.ndarray, *,
              cache: bool = True) -> tuple[int, int]:
    """Read, check and place one FITS cutout into ``out`` (npix, npix, C).

    ``cache=False`` checks the header again even when an identical one was checked
    before (the benchmark's comparison without the cache; the result is the same).

    Returns
    -------
    (hdu, filled) : tuple of int
        The HDU read and the pixels filled under the non-finite policy.
    """
    hdu, filled, _ = read_fits_cutout(path, info, options, out, cache=cache)
    return hdu, filled


def read_fits_cutout(path: str, info: ModelInfo, options: ReadOptions, out: np.ndarray, *,
                     cache: bool = True) -> tuple[int, int, float]:
    """:func:`read_fits`, and the redshift to predict the cutout at (NaN for an image-only model)."""
    try:
        fast = _fast_fits(path, options.hdu, info) if options.fits_reader == "fast" else None
        data, header, k = fast if fast is not None else _astropy_fits(path, options.hdu, info)
    except Refused:
        raise
    except MemoryError:
        raise Refused("unreadable FITS file (its data do not fit in memory)") from None
    except Exception as exc:  # noqa: BLE001 - one bad file is refused, never the end of the run
        raise Refused(f"unreadable FITS file ({exc.__class__.__name__}: {exc})") from None
    try:
        z = math.nan
        if info.takes_redshift:
            z = resolve(info.redshift_range, catalogued=None if options.catalog is None else options.catalog.lookup(path),
                        given=options.redshift, own=header_redshift(header), extrapolate=options.extrapolate)
        data = squeeze_planes(data, info)
        _cached_check(data.shape, header, info, options, cache)
        return k, place_cutout(data, out, options), z
    except Refused as exc:
        raise Refused(f"HDU {k}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a malformed card (CDELT1 = '') refuses the file, not the run
        raise Refused(f"HDU {k}: unreadable header ({exc.__class__.__name__}: {exc})") from None


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
