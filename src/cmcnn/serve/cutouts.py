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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from cmcnn.serve.checks import ReadOptions, Refused, check_scale, check_unit, card_text, repair_nonfinite
from cmcnn.serve.fits import read_fits_cutout
from cmcnn.serve.metadata import ModelInfo
from cmcnn.serve.redshift import resolve

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz", ".fits.fz", ".fz")
NPY_SUFFIXES = (".npy",)
HDF5_SUFFIXES = (".h5", ".hdf5")

__all__ = ["ReadOptions", "Refused", "Source", "Batch", "expand_inputs", "plan", "read_task", "iter_batches",
           "read_ahead"]


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
                check_unit(card_text(unit), info.units[c], f"images/{c} units")
        if len({d.shape[0] for d in dsets}) != 1:
            raise Refused(f"channels hold different numbers of images {[d.shape[0] for d in dsets]}")
        scale = f.attrs.get("pixel_scale_arcsec")
        if scale is None:
            if self.options.require_wcs:
                raise Refused("no pixel_scale_arcsec attribute (use --no-wcs-check to accept)")
        else:
            check_scale((float(scale), float(scale)), info, self.options)
        return dsets

    def __exit__(self, *exc) -> None:
        self.f.close()


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
        except Exception as exc:  # noqa: BLE001 - whatever a file does, it ends only its own prediction
            refusals.append((path, f"unreadable ({exc.__class__.__name__}: {exc})"))
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
