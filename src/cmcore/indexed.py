"""Indexed snapshots: a spatially sorted, chunked copy of a snapshot on disk.

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
with a ``units`` attribute and chunked by :data:`CHUNK_ROWS_ON_DISK` rows;
``cell_offsets`` (ncell³ + 1,) int64 (cell ``c`` is rows
``cell_offsets[c]:cell_offsets[c+1]``) and the attribute ``ncell``.

Building (bounded memory, resumable)
------------------------------------
Each type is done in three passes over the source, ``chunk_rows`` particles at
a time: count the particles per cell; distribute each chunk, sorted by cell,
into buckets of consecutive cells holding at most about ``chunk_rows``
particles (raw files in ``INDEXED.work/``); sort each bucket by cell (stable)
into that type's file.  Finished passes are recorded in ``INDEXED.work/``;
rerunning the command after an interruption resumes at the first unfinished
pass.  The output appears under its name complete, or not at all.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import h5py
import numpy as np

from ._version import __version__
from .cellindex import default_ncell
from .cosmology import cosmology_from_json, cosmology_to_json
from .errors import FileFormatError, InputError
from .fileio import atomic_write
from .snapshot import FIELD_UNITS, PARTICLE_TYPES, ParticleData, Snapshot

FORMAT = "cmc-indexed"
FORMAT_VERSION = 1

#: Rows per HDF5 chunk of the indexed datasets.
CHUNK_ROWS_ON_DISK = 1 << 15

#: Fields indexed by default: everything any channel or scheme of the renderer reads.
RENDER_FIELDS = ("density", "electron_abundance", "metallicity", "smoothing_length",
                 "star_formation_rate", "temperature", "luminosity_soft", "luminosity_bol")


@dataclass
class IndexSummary:
    """What :func:`write_indexed` did."""

    path: Path
    counts: dict[str, int]
    fields: dict[str, list[str]]
    seconds: float
    resumed: bool


# ----------------------------------------------------------------------------- cells
def cells_of(positions: np.ndarray, boxsize: float, ncell: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell order and cell ids of ``positions`` as :class:`~cmcore.cellindex.CellIndex` assigns them.

    Returns ``(order, cell)``: ``positions[order]`` are sorted by cell (stable)
    and ``cell[k]`` is the cell of ``positions[order[k]]``.
    """
    from . import _kernels

    pos = np.ascontiguousarray(positions)
    perm = np.empty(pos.shape[0], dtype=np.int32 if pos.shape[0] < 2**31 else np.int64)
    offsets = np.empty(ncell**3 + 1, dtype=np.int64)
    if _kernels.build_cell_index(pos, float(boxsize), int(ncell), perm, offsets, 1):
        raise InputError("positions contain NaN or infinite values")
    counts = np.diff(offsets)
    cell = np.repeat(np.arange(ncell**3, dtype=np.int64), counts)
    return perm, cell


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
        from .readers import open_hdf5

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


# ----------------------------------------------------------------------------- writing
def write_indexed(
    snapshot: str | os.PathLike,
    out: str | os.PathLike,
    *,
    particle_types: Sequence[str] | None = None,
    fields: Sequence[str] | None = None,
    chunk_rows: int = 1 << 22,
    unit_system=None,
    progress: bool = True,
) -> IndexSummary:
    """Write the indexed copy of ``snapshot`` to ``out`` (see the module docstring).

    Parameters
    ----------
    snapshot : path-like
        Any snapshot :func:`cmcore.readers.read_snapshot` reads (any file of a
        multi-file set).
    out : path-like
        Indexed snapshot to write.
    particle_types : sequence of str, optional
        Types to index; default every type the snapshot has.
    fields : sequence of str, optional
        Optional fields to copy where the source has them; default
        :data:`RENDER_FIELDS`.
    chunk_rows : int
        Particles per read and per bucket: memory holds a few such chunks.
    unit_system : mapping, optional
        Code units of a plain GADGET/GIZMO file (as ``read_snapshot``).
    progress : bool
        Progress bars.

    Returns
    -------
    IndexSummary
    """
    from tqdm.auto import tqdm

    from .readers import particle_counts, read_snapshot, snapshot_files

    t0 = time.perf_counter()
    out = Path(out)
    files = snapshot_files(snapshot)
    if int(chunk_rows) < 1:
        raise InputError(f"chunk_rows must be positive, got {chunk_rows}")
    chunk_rows = int(chunk_rows)
    counts = particle_counts(files[0])
    types = list(particle_types) if particle_types is not None else [t for t in PARTICLE_TYPES if t in counts]
    missing = [t for t in types if t not in counts]
    if missing or not types:
        raise InputError(f"{files[0]} has no {' or '.join(missing) or 'particles'} "
                         f"(it has: {', '.join(counts) or 'none'})")
    fields = tuple(fields) if fields is not None else RENDER_FIELDS
    bad = [k for k in fields if k not in FIELD_UNITS]
    if bad:
        raise InputError(f"unknown field(s) {bad}; choose among {sorted(FIELD_UNITS)}")
    options = dict(fields=[], optional_fields=fields, unit_system=unit_system)

    def chunk(ptype: str, start: int):
        snap = read_snapshot(files[0], particle_types=[ptype], rows=(start, start + chunk_rows), **options)
        return snap, snap.particles[ptype]

    header, _ = chunk(types[0], 0)
    work = out.with_name(out.name + ".work")
    stamp = {"source": [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in files],
             "types": types, "fields": list(fields), "chunk_rows": chunk_rows, "version": FORMAT_VERSION}
    state_path = work / "state.json"
    resumed = False
    if state_path.exists():
        state = json.loads(state_path.read_text())
        if state.get("stamp") != stamp:
            shutil.rmtree(work)  # a build of other settings or another source: start again
        else:
            resumed = True
    work.mkdir(parents=True, exist_ok=True)
    state = json.loads(state_path.read_text()) if state_path.exists() else {"stamp": stamp, "done": []}

    def mark(step: str) -> None:
        state["done"].append(step)
        with atomic_write(state_path) as tmp:
            tmp.write_text(json.dumps(state))

    stored: dict[str, list[str]] = {}
    for ptype in types:
        n = counts[ptype]
        ncell = default_ncell(n)
        ncells = ncell**3
        starts = range(0, n, chunk_rows)
        count_file = work / f"{ptype}.counts.npy"
        # pass 1: particles per cell, and which fields the source has
        if f"{ptype}:count" not in state["done"]:
            per_cell = np.zeros(ncells, dtype=np.int64)
            for start in tqdm(starts, desc=f"{ptype}: counting", unit="chunk", disable=not progress):
                _, p = chunk(ptype, start)
                per_cell += np.bincount(cells_of(p.positions, header.boxsize, ncell)[1], minlength=ncells)
            with atomic_write(count_file) as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, per_cell)
            mark(f"{ptype}:count")
        per_cell = np.load(count_file)
        if int(per_cell.sum()) != n:
            raise FileFormatError(f"{files[0]}: read {int(per_cell.sum())} {ptype} particles, headers say {n}")
        offsets = np.zeros(ncells + 1, dtype=np.int64)
        np.cumsum(per_cell, out=offsets[1:])
        # buckets of consecutive cells with at most ~chunk_rows particles
        edges = np.unique(np.searchsorted(offsets[1:], np.arange(chunk_rows, n, chunk_rows), side="left"))
        bucket_first = np.r_[0, edges[edges < ncells]]
        bucket_first = np.unique(bucket_first)
        nb = bucket_first.size
        _, p0 = chunk(ptype, 0)
        names = ["positions", "masses", *sorted(p0.fields)]
        dtypes = {"positions": p0.positions.dtype, "masses": p0.masses.dtype,
                  **{k: v.dtype for k, v in p0.fields.items()}}
        shapes = {"positions": (3,), "masses": (), **{k: v.shape[1:] for k, v in p0.fields.items()}}
        stored[ptype] = sorted(p0.fields)

        def bucket_file(b: int, name: str) -> Path:
            return work / f"{ptype}.bucket{b}.{name}.bin"

        # pass 2: each chunk, sorted by cell, appended to its buckets
        if f"{ptype}:bucket" not in state["done"]:
            for old in work.glob(f"{ptype}.bucket*.bin"):
                old.unlink()
            for start in tqdm(starts, desc=f"{ptype}: sorting", unit="chunk", disable=not progress):
                _, p = chunk(ptype, start)
                order, cell = cells_of(p.positions, header.boxsize, ncell)
                which = np.searchsorted(bucket_first, cell, side="right") - 1
                cuts = np.r_[0, np.flatnonzero(np.diff(which)) + 1, which.size]
                arrays = {"positions": p.positions, "masses": p.masses, **p.fields}
                for a, b in zip(cuts[:-1], cuts[1:]):
                    rows = order[a:b]
                    for name in names:
                        with open(bucket_file(int(which[a]), name), "ab") as fh:
                            fh.write(np.ascontiguousarray(arrays[name][rows]).tobytes())
                    with open(bucket_file(int(which[a]), "cell"), "ab") as fh:
                        fh.write(cell[a:b].astype(np.int64).tobytes())
            mark(f"{ptype}:bucket")
        # pass 3: each bucket sorted by cell into the type's file
        part = work / f"{ptype}.h5"
        if f"{ptype}:write" not in state["done"]:
            with h5py.File(part, "w") as f:
                g = f.create_group(ptype)
                dsets = {}
                for name in names:
                    rows_chunk = max(1, min(n, CHUNK_ROWS_ON_DISK))
                    dsets[name] = g.create_dataset(name, shape=(n, *shapes[name]), dtype=dtypes[name],
                                                   chunks=(rows_chunk, *shapes[name]))
                    dsets[name].attrs["units"] = _units(name)
                for b in tqdm(range(nb), desc=f"{ptype}: writing", unit="bucket", disable=not progress):
                    first = int(offsets[bucket_first[b]])
                    cfile = bucket_file(b, "cell")
                    if not cfile.exists():
                        continue
                    cell = np.fromfile(cfile, dtype=np.int64)
                    order = np.argsort(cell, kind="stable")
                    for name in names:
                        values = np.fromfile(bucket_file(b, name), dtype=dtypes[name]).reshape(-1, *shapes[name])
                        dsets[name][first: first + cell.size] = values[order]
                g.create_dataset("cell_offsets", data=offsets)
                g.attrs["ncell"] = ncell
            mark(f"{ptype}:write")
            for old in work.glob(f"{ptype}.bucket*.bin"):
                old.unlink()

    with atomic_write(out) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs.update({
                "format": FORMAT, "format_version": FORMAT_VERSION, "boxsize": header.boxsize, "h": header.h,
                "scale_factor": header.scale_factor, "redshift": header.redshift,
                "cosmology": cosmology_to_json(header.cosmology), "flavour": header.flavour,
                "source": str(files[0].resolve()), "code_version": __version__,
            })
            for ptype in types:
                with h5py.File(work / f"{ptype}.h5", "r") as src:
                    src.copy(src[ptype], f, name=ptype)
    shutil.rmtree(work)
    return IndexSummary(out, {t: counts[t] for t in types}, stored, time.perf_counter() - t0, resumed)


def _units(name: str) -> str:
    if name == "positions":
        return "Mpc (comoving)"
    if name == "masses":
        return "Msun"
    return FIELD_UNITS[name]
