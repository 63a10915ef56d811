"""``cmc index``: write the indexed copy of a snapshot (format in :mod:`cmcore.readers.indexed`).

A spatially sorted, chunked copy of the particles a renderer or a halo sphere
needs, with a cell table, so that a cluster's ±50 Mpc column is read from disk
without loading the snapshot (:class:`cmcore.readers.indexed.IndexedSnapshot`).

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
from pathlib import Path

import h5py
import numpy as np

from ._version import __version__
from .cellindex import default_ncell
from .cosmology import cosmology_to_json
from .errors import FileFormatError, InputError
from .fileio import atomic_write
from .readers import particle_counts, read_snapshot, snapshot_files
from .readers.indexed import FORMAT, FORMAT_VERSION
from .snapshot import FIELD_UNITS, PARTICLE_TYPES

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
    from .progress import progress_bar

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
            for start in progress_bar(starts, desc=f"{ptype}: counting", unit="chunk", disable=not progress):
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
            for start in progress_bar(starts, desc=f"{ptype}: sorting", unit="chunk", disable=not progress):
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
                for b in progress_bar(range(nb), desc=f"{ptype}: writing", unit="bucket", disable=not progress):
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
