"""Images and labels of a cmc dataset as the networks see them.

:class:`ImageSource` reads (n, npix, npix, C) float32 stacks of chosen channels from
a dataset file (``cmcore.dataset`` layout), either streamed from the HDF5 file batch
by batch (memory bounded by a batch; the file's chunks hold one image each) or cached
in memory once (faster when the split fits).  :func:`square_symmetry` applies the
eight symmetries of the square, under which a cluster's mass does not change.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cmcore.datafile import CHANNELS, open_dataset, split_code
from cmcore.errors import InputError


def parse_channels(text: str | Sequence[str]) -> list[str]:
    """Channel list from ``"all"``, one name, or a comma-separated list (order kept)."""
    names = text.split(",") if isinstance(text, str) else list(text)
    names = [n.strip() for n in names if n.strip()]
    if names == ["all"]:
        return list(CHANNELS)
    unknown = [n for n in names if n not in CHANNELS]
    if unknown or not names:
        raise InputError(f"unknown channel(s) {unknown or names}: choose from {', '.join(CHANNELS)} or all")
    if len(set(names)) != len(names):
        raise InputError(f"channel listed twice in {names}")
    return names


def square_symmetry(images: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Apply symmetry ``k[i]`` of the square (0–7) to image ``i`` of an (n, H, W, C) stack.

    ``k % 4`` quarter turns, then a left–right flip when ``k >= 4``; ``k = 0`` is the
    identity.  Returns a new array.
    """
    k = np.asarray(k)
    if images.ndim != 4 or images.shape[1] != images.shape[2] or k.shape != images.shape[:1]:
        raise ValueError(f"need square images (n, H, H, C) and one k per image, got {images.shape}, {k.shape}")
    out = np.empty_like(images)
    for s in range(8):
        sel = np.flatnonzero(k == s)
        if sel.size:
            x = np.rot90(images[sel], s % 4, axes=(1, 2))
            out[sel] = x[:, :, ::-1] if s >= 4 else x
    return out


class ImageSource:
    """Channels of one dataset file, read by row index.

    Parameters
    ----------
    path : path-like
        A cmc dataset (``cmc dataset``).
    channels : sequence of str
        Channels in the order the network takes them.
    cache : {"auto", "memory", "none"}
        ``memory`` reads the rows asked for by :meth:`cache_rows` once into memory;
        ``none`` streams every batch from the file; ``auto`` caches when those rows
        take less than ``CMC_CACHE_GB`` (default 4) GB.
    """

    def __init__(self, path: str | os.PathLike, channels: Sequence[str], cache: str = "auto") -> None:
        self.path = Path(path)
        self.channels = list(channels)
        if cache not in ("auto", "memory", "none"):
            raise InputError(f"cache must be auto, memory or none, got {cache!r}")
        self._cache_mode = cache
        self._file = open_dataset(self.path)
        missing = [c for c in self.channels if f"images/{c}" not in self._file]
        if missing:
            self._file.close()
            raise InputError(f"dataset {self.path} has no channel(s) {missing} "
                             f"(it holds {list(self._file.attrs.get('channels', []))})")
        self._images = [self._file[f"images/{c}"] for c in self.channels]
        shapes = {d.shape for d in self._images}
        if len(shapes) != 1 or len(next(iter(shapes))) != 3:
            raise InputError(f"dataset {self.path}: channels {self.channels} have shapes {shapes}")
        self.n_images, self.npix, _ = next(iter(shapes))
        labels = self._file["labels"]
        self.log10_m200 = labels["log10_m200"][:].astype(np.float64)
        self.split = labels["split"][:].astype(np.int64)
        self._cached_rows: np.ndarray | None = None
        self._cached: np.ndarray | None = None

    # ------------------------------------------------------------------ labels
    def rows(self, split: str) -> np.ndarray:
        """Row indices (sorted) of one split: ``train``, ``validation`` or ``test``."""
        return np.flatnonzero(self.split == split_code(split))

    def label(self, name: str, rows: np.ndarray | None = None) -> np.ndarray:
        """A label array (``labels/<name>``), for all rows or the given ones."""
        data = self._file["labels"][name][:]
        return data if rows is None else data[rows]

    def attrs(self) -> dict:
        """The dataset file's root attributes, as plain Python values."""
        out = {}
        for key, value in self._file.attrs.items():
            if isinstance(value, np.ndarray):
                value = value.tolist()
            elif isinstance(value, np.generic):
                value = value.item()
            elif isinstance(value, bytes):
                value = value.decode()
            out[key] = value
        return out

    # ------------------------------------------------------------------ images
    def cache_rows(self, rows: np.ndarray) -> bool:
        """Hold ``rows`` in memory when the cache mode allows; return whether it did."""
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        nbytes = rows.size * self.npix * self.npix * len(self.channels) * 4
        limit = float(os.environ.get("CMC_CACHE_GB", "4")) * 2**30
        if self._cache_mode == "none" or (self._cache_mode == "auto" and nbytes > limit):
            return False
        self._cached = self._read_file(rows)
        self._cached_rows = rows
        return True

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Images of ``rows`` (any order, repeats allowed) as (n, npix, npix, C) float32."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_images):
            raise IndexError(f"row out of range 0..{self.n_images - 1}")
        if self._cached_rows is not None:
            pos = np.searchsorted(self._cached_rows, rows)
            pos = np.minimum(pos, self._cached_rows.size - 1)
            if np.array_equal(self._cached_rows[pos], rows):
                return self._cached[pos]
        return self._read_file(rows)

    def _read_file(self, rows: np.ndarray) -> np.ndarray:
        uniq, inverse = np.unique(rows, return_inverse=True)
        out = np.empty((uniq.size, self.npix, self.npix, len(self.channels)), dtype=np.float32)
        for c, dset in enumerate(self._images):
            # one image per chunk: contiguous runs are read with one slice each
            start = 0
            while start < uniq.size:
                stop = start + 1
                while stop < uniq.size and uniq[stop] == uniq[stop - 1] + 1:
                    stop += 1
                out[start:stop, ..., c] = dset[uniq[start]:uniq[stop - 1] + 1]
                start = stop
        return out[inverse.reshape(-1)]

    def close(self) -> None:
        """Close the dataset file."""
        self._file.close()

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
