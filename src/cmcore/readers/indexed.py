"""Indexed snapshots (format ``cmc-indexed``): reading them, whole or by region.

``cmc index SNAPSHOT --out INDEXED`` (:func:`write_indexed`) writes, once, the
particles a renderer or a halo sphere needs, sorted by the cells of
:class:`cmcore.cellindex.CellIndex` with a table of where each cell starts.  A
cluster's ±50 Mpc column or a sphere around a halo is then read from disk cell
by cell (:meth:`IndexedSnapshot.read_boxes`, or
``read_snapshot(INDEXED, region=...)``) without loading the snapshot, and
:func:`cmcore.readers.read_snapshot` reads the file like any other snapshot
(same :class:`~cmcore.snapshot.Snapshot`, in memory units).

Order
-----
Particles of each type are in the order of ``CellIndex(positions, boxsize)``
over the whole type: by cell id ``(ix*ncell + iy)*ncell + iz`` (the compiled
cell assignment itself, with ``ncell`` = :func:`cmcore.cellindex.default_ncell`
of the type's count), in snapshot order within a cell.  A ``CellIndex`` over
the indexed particles is therefore the identity permutation with the same cells,
and one built over any file-ordered subset that holds whole cells visits those
cells' particles in the same order: images rendered from a region read are
bit-identical to images rendered from the whole snapshot.

File layout (format ``cmc-indexed``, version 1)
-----------------------------------------------
Root attributes: ``format``, ``format_version``, ``boxsize`` [comoving Mpc],
``h``, ``scale_factor``, ``redshift``, ``cosmology`` (JSON), ``flavour`` (of
the source), ``source`` (its first file), ``code_version``.  One group per
particle type (``gas``, ``dm``, ``stars``): ``positions`` (N, 3) [comoving
Mpc], ``masses`` (N,) [M☉] and the optional fields of
:data:`cmcore.snapshot.FIELD_UNITS` that the source has, in memory units, each
with a ``units`` attribute and chunked by :data:`cmcore.indexed.CHUNK_ROWS_ON_DISK` rows;
``cell_offsets`` (ncell³ + 1,) int64 (cell ``c`` is rows
``cell_offsets[c]:cell_offsets[c+1]``) and the attribute ``ncell``.

Built by :func:`cmcore.indexed.write_indexed` (``cmc index``).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import h5py
import numpy as np

from ..cosmology import cosmology_from_json
from ..errors import FileFormatError, InputError
from ..snapshot import FIELD_UNITS, PARTICLE_TYPES, ParticleData, Snapshot
from .files import open_hdf5

FORMAT = "cmc-indexed"
FORMAT_VERSION = 1


# ----------------------------------------------------------------------------- cells
def box_cells(centres: np.ndarray, half_extents: np.ndarray, boxsize: float, ncell: int,
              grow: int = 0) -> np.ndarray:
    """Sorted ids of the cells that any periodic box ``centres[b] ± half_extents[b]`` overlaps.

    ``grow`` adds that many cells on every side (a guard against rounding at
    cell faces).  A box that spans an axis takes every cell along it.
    """
    centres = np.atleast_2d(np.asarray(centres, dtype=np.float64))
    half_extents = np.broadcast_to(np.atleast_2d(np.asarray(half_extents, dtype=np.float64)), centres.shape)
    size = boxsize / ncell
    ids = []
    for c, h in zip(centres, half_extents):
        axes = []
        for a in range(3):
            lo = int(np.floor((c[a] - h[a]) / size)) - grow
            hi = int(np.floor((c[a] + h[a]) / size)) + grow
            axes.append(np.arange(ncell) if hi - lo + 1 >= ncell else np.mod(np.arange(lo, hi + 1), ncell))
        ids.append(((axes[0][:, None, None] * ncell + axes[1][None, :, None]) * ncell
                    + axes[2][None, None, :]).ravel())
    return np.unique(np.concatenate(ids)) if ids else np.zeros(0, dtype=np.int64)


def _row_ranges(cells: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(r, 2) half-open row ranges of the sorted ``cells``, consecutive cells merged, empty dropped."""
    if cells.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    breaks = np.flatnonzero(np.diff(cells) != 1) + 1
    first = cells[np.r_[0, breaks]]
    last = cells[np.r_[breaks - 1, cells.size - 1]]
    ranges = np.stack([offsets[first], offsets[last + 1]], axis=1)
    return ranges[ranges[:, 1] > ranges[:, 0]]


# ----------------------------------------------------------------------------- reading
class IndexedSnapshot:
    """An open indexed snapshot: header, cell tables, region reads.

    Parameters
    ----------
    path : path-like
        A file written by :func:`write_indexed`.

    Raises
    ------
    FileFormatError
        Not an indexed snapshot, or of another format version.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        with open_hdf5(self.path) as f:
            fmt = f.attrs.get("format", b"")
            if (fmt.decode() if isinstance(fmt, bytes) else str(fmt)) != FORMAT:
                raise FileFormatError(f"{self.path} is not an indexed snapshot (run cmc index on the snapshot)")
            if int(f.attrs.get("format_version", -1)) != FORMAT_VERSION:
                raise FileFormatError(f"{self.path}: indexed snapshot version {f.attrs.get('format_version')} "
                                      "is not supported")
            a = f.attrs
            self.boxsize = float(a["boxsize"])
            self.h = float(a["h"])
            self.scale_factor = float(a["scale_factor"])
            self.redshift = float(a["redshift"])
            self.cosmology = cosmology_from_json(_text(a["cosmology"]))
            self.flavour = _text(a["flavour"])
            self.source = _text(a["source"])
            self.types = [t for t in PARTICLE_TYPES if t in f]
            self.ncell = {t: int(f[t].attrs["ncell"]) for t in self.types}
            self.counts = {t: int(f[t]["masses"].shape[0]) for t in self.types}
            self.fields = {t: [k for k in f[t] if k in FIELD_UNITS] for t in self.types}
        self._offsets: dict[str, np.ndarray] = {}

    def offsets(self, ptype: str) -> np.ndarray:
        """Cell table of ``ptype`` (read once, then kept)."""
        if ptype not in self._offsets:
            with h5py.File(self.path, "r") as f:
                self._offsets[ptype] = f[ptype]["cell_offsets"][:]
        return self._offsets[ptype]

    def _check(self, particle_types, fields, optional_fields) -> tuple[list[str], dict[str, list[str]]]:
        types = list(particle_types) if particle_types is not None else list(self.types)
        missing = [t for t in types if t not in self.types]
        if missing:
            raise InputError(f"{self.path} has no {' or '.join(missing)} particles "
                             f"(it has: {', '.join(self.types) or 'none'})")
        bad = [k for k in (*(fields or ()), *optional_fields) if k not in FIELD_UNITS]
        if bad:
            raise InputError(f"unknown field(s) {bad}; choose among {sorted(FIELD_UNITS)}")
        chosen = {}
        for t in types:
            have = self.fields[t]
            if fields is None:
                chosen[t] = list(have)
                continue
            required = [k for k in fields if t == "gas" or k == "potential"]
            absent = [k for k in required if k not in have]
            if absent:
                raise InputError(f"{self.path}: {t} particles have no {absent[0]!r} dataset "
                                 "(not in the source snapshot, or not indexed)")
            chosen[t] = [k for k in dict.fromkeys([*fields, *optional_fields]) if k in have]
        return types, chosen

    def _read(self, f: h5py.File, ptype: str, names: Sequence[str], ranges: np.ndarray) -> ParticleData:
        g = f[ptype]
        out = {}
        for name in ("positions", "masses", *names):
            dset = g[name]
            parts = [dset[a:b] for a, b in ranges]
            out[name] = np.concatenate(parts) if parts else np.zeros((0, *dset.shape[1:]), dset.dtype)
        return ParticleData(out.pop("positions"), out.pop("masses"), out, name=ptype)

    def _snapshot(self, particles: dict[str, ParticleData]) -> Snapshot:
        return Snapshot(particles=particles, boxsize=self.boxsize, h=self.h, scale_factor=self.scale_factor,
                        redshift=self.redshift, cosmology=self.cosmology, flavour=self.flavour,
                        path=str(self.path))

    def read(self, *, particle_types=None, fields=None, optional_fields=(), rows=None) -> Snapshot:
        """The whole snapshot (or rows ``rows[0]:rows[1]`` of each type), in file order."""
        types, chosen = self._check(particle_types, fields, optional_fields)
        with h5py.File(self.path, "r") as f:
            particles = {}
            for t in types:
                n = self.counts[t]
                a, b = (0, n) if rows is None else (min(rows[0], n), min(rows[1], n))
                particles[t] = self._read(f, t, chosen[t], np.array([[a, b]]))
        return self._snapshot(particles)

    def read_cells(self, cells: dict[str, np.ndarray], *, fields=None, optional_fields=()) -> Snapshot:
        """The particles of whole cells (sorted cell ids per type), in file order."""
        types, chosen = self._check(list(cells), fields, optional_fields)
        with h5py.File(self.path, "r") as f:
            particles = {t: self._read(f, t, chosen[t], _row_ranges(np.asarray(cells[t]), self.offsets(t)))
                         for t in types}
        return self._snapshot(particles)

    def read_boxes(self, centres, half_extents, *, particle_types=None, fields=None, optional_fields=(),
                   grow: int = 1) -> Snapshot:
        """Every particle of the cells that the periodic boxes overlap (plus ``grow`` cells), in file order.

        A superset of the boxes' particles made of whole cells: what a
        :class:`~cmcore.cellindex.CellIndex` with the file's ``ncell`` needs to
        visit exactly the particles the whole-snapshot index visits there.
        """
        types, _ = self._check(particle_types, None, ())
        cells = {t: box_cells(centres, half_extents, self.boxsize, self.ncell[t], grow) for t in types}
        return self.read_cells(cells, fields=fields, optional_fields=optional_fields)

    def read_region(self, centre, half_width, *, particle_types=None, fields=None,
                    optional_fields=()) -> Snapshot:
        """Particles with ``|x − centre| <= half_width`` on every axis (minimum image), in file order.

        The selection of :func:`cmcore.readers.read_snapshot`'s ``region``,
        applied to the positions in memory units; only the cells the box
        overlaps are read.
        """
        centre = np.asarray(centre, dtype=np.float64).reshape(3)
        half = np.broadcast_to(np.asarray(half_width, dtype=np.float64), (3,))
        snap = self.read_boxes(centre, half + 1e-6 * self.boxsize, particle_types=particle_types,
                               fields=fields, optional_fields=optional_fields, grow=0)
        for p in snap.particles.values():
            d = p.positions.astype(np.float64) - centre
            d -= self.boxsize * np.round(d / self.boxsize)
            keep = np.all(np.abs(d) <= half, axis=1)
            p.positions, p.masses = p.positions[keep], p.masses[keep]
            p.fields = {k: v[keep] for k, v in p.fields.items()}
        return snap

    def read_sphere(self, centre, radius: float, *, particle_types=None, fields=None,
                    optional_fields=()) -> Snapshot:
        """Particles within ``radius`` of ``centre`` (periodic, float64 distances), in file order."""
        centre = np.asarray(centre, dtype=np.float64).reshape(3)
        snap = self.read_region(centre, float(radius), particle_types=particle_types, fields=fields,
                                optional_fields=optional_fields)
        for p in snap.particles.values():
            d = p.positions.astype(np.float64) - centre
            d -= self.boxsize * np.round(d / self.boxsize)
            keep = np.einsum("ij,ij->i", d, d) <= float(radius) ** 2
            p.positions, p.masses = p.positions[keep], p.masses[keep]
            p.fields = {k: v[keep] for k, v in p.fields.items()}
        return snap


@lru_cache(maxsize=4)
def _open_cached(path: str, mtime_ns: int) -> IndexedSnapshot:
    return IndexedSnapshot(path)


def open_indexed(path: str | os.PathLike) -> IndexedSnapshot:
    """:class:`IndexedSnapshot` of ``path``, kept open per process (cell tables read once)."""
    path = Path(path).resolve()
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        raise FileFormatError(f"{path}: no such file") from None
    return _open_cached(str(path), mtime)


def read_indexed(path, *, particle_types=None, fields=None, optional_fields=(), drop_nonfinite=False,
                 region=None, rows=None) -> Snapshot:
    """What :func:`cmcore.readers.read_snapshot` returns for an indexed snapshot.

    ``drop_nonfinite`` has nothing to do: values were checked when the file was
    written.
    """
    snap = IndexedSnapshot(path)
    if region is not None:
        return snap.read_region(region[0], region[1], particle_types=particle_types, fields=fields,
                                optional_fields=optional_fields)
    return snap.read(particle_types=particle_types, fields=fields, optional_fields=optional_fields, rows=rows)


def is_indexed(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an indexed snapshot (an HDF5 file with ``format = cmc-indexed``)."""
    try:
        with h5py.File(path, "r") as f:
            return _text(f.attrs.get("format", "")) == FORMAT
    except OSError:
        return False


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


