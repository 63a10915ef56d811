"""Indexed snapshots: same particles as the source, cell order, region reads, multi-file, resume."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from cmcore.cellindex import CellIndex
from cmcore.errors import FileFormatError
from cmcore.indexed import RENDER_FIELDS, write_indexed
from cmcore.readers.indexed import IndexedSnapshot
from cmcore.readers import read_snapshot

FIELDS = ["density", "temperature", "metallicity", "smoothing_length", "electron_abundance"]


@pytest.fixture(scope="module")
def indexed(tiny_universe, tmp_path_factory):
    out = tmp_path_factory.mktemp("indexed") / "indexed.hdf5"
    write_indexed(tiny_universe.snapshot, out, chunk_rows=50_000, progress=False)
    return out


@pytest.fixture(scope="module")
def full(tiny_universe):
    return read_snapshot(tiny_universe.snapshot, fields=[], optional_fields=FIELDS)


def rows_of(p):
    """Particles as sortable rows (positions, mass, fields) for comparing selections as sets."""
    cols = [p.positions.astype(np.float64), p.masses[:, None]] + [p.fields[k][:, None] for k in sorted(p.fields)]
    table = np.hstack(cols)
    return table[np.lexsort(table.T[::-1])]


def test_indexed_copy_is_the_source_in_cell_index_order(indexed, full):
    snap = read_snapshot(indexed)
    assert snap.boxsize == full.boxsize and snap.redshift == full.redshift and snap.h == full.h
    assert snap.cosmology == full.cosmology
    assert set(snap.particles) == set(full.particles)
    for ptype, p in full.particles.items():
        q = snap.particles[ptype]
        perm = CellIndex(p.positions, full.boxsize).permutation
        np.testing.assert_array_equal(q.positions, p.positions[perm])
        np.testing.assert_array_equal(q.masses, p.masses[perm])
        assert sorted(q.fields) == sorted(p.fields)
        for key in p.fields:
            np.testing.assert_array_equal(q.fields[key], p.fields[key][perm])
        # an index over the indexed copy keeps it in place: same cells, same order
        np.testing.assert_array_equal(CellIndex(q.positions, snap.boxsize).permutation, np.arange(len(q)))


@pytest.mark.parametrize("centre, half", [
    ((5.0, 7.0, 9.0), 4.0),                        # interior
    ((0.3, 71.0, 35.0), (2.0, 3.0, 6.0)),          # across x = 0 and y = L
    ((71.2, 0.1, 71.3), 5.0),                      # a corner: all three faces
    ((30.0, 30.0, 30.0), 40.0),                    # wider than the box: everything once
])
def test_region_reads_equal_the_selection_from_the_full_snapshot(indexed, full, centre, half):
    got = read_snapshot(indexed, region=(centre, half), fields=[], optional_fields=FIELDS)
    box = full.boxsize
    for ptype, p in full.particles.items():
        d = p.positions.astype(np.float64) - np.asarray(centre)
        d -= box * np.round(d / box)
        keep = np.all(np.abs(d) <= np.broadcast_to(half, (3,)), axis=1)
        assert keep.any()
        sel = got.particles[ptype]
        assert len(sel) == keep.sum()
        want = type(p)(p.positions[keep], p.masses[keep], {k: v[keep] for k, v in p.fields.items()})
        np.testing.assert_array_equal(rows_of(sel), rows_of(want))


def test_sphere_reads_equal_the_selection_from_the_full_snapshot(indexed, full):
    box = full.boxsize
    centre = np.array([box - 0.2, 0.4, box / 2])
    got = IndexedSnapshot(indexed).read_sphere(centre, 6.0, particle_types=["dm", "gas"], fields=[])
    for ptype in ("dm", "gas"):
        p = full.particles[ptype]
        d = p.positions.astype(np.float64) - centre
        d -= box * np.round(d / box)
        keep = np.einsum("ij,ij->i", d, d) <= 36.0
        assert keep.sum() > 100
        q = got.particles[ptype]
        np.testing.assert_array_equal(rows_of(type(p)(q.positions, q.masses)),
                                      rows_of(type(p)(p.positions[keep], p.masses[keep])))


def split_into_files(src, base, nfiles):
    """Write ``src`` (an EAGLE-style single file) as a ``base.K.hdf5`` multi-file snapshot."""
    with h5py.File(src, "r") as f:
        total = np.asarray(f["Header"].attrs["NumPart_ThisFile"], dtype=np.int64)
        for k in range(nfiles):
            lo, hi = total * k // nfiles, total * (k + 1) // nfiles
            with h5py.File(f"{base}.{k}.hdf5", "w") as g:
                for name in f:
                    if not name.startswith("PartType"):
                        f.copy(f[name], g, name=name)
                g["Header"].attrs["NumFilesPerSnapshot"] = nfiles
                g["Header"].attrs["NumPart_ThisFile"] = (hi - lo).astype(f["Header"].attrs["NumPart_ThisFile"].dtype)
                for name in f:
                    if name.startswith("PartType"):
                        t = int(name[len("PartType"):])
                        grp = g.create_group(name)
                        for dname, dset in f[name].items():
                            out = grp.create_dataset(dname, data=dset[lo[t]:hi[t]])
                            out.attrs.update(dset.attrs)


def test_multi_file_snapshot_gives_the_same_indexed_file(tiny_universe, indexed, tmp_path):
    split_into_files(tiny_universe.snapshot, tmp_path / "snap", 3)
    out = tmp_path / "multi.hdf5"
    summary = write_indexed(tmp_path / "snap.1.hdf5", out, chunk_rows=70_000, progress=False)
    assert not summary.resumed
    with h5py.File(indexed, "r") as a, h5py.File(out, "r") as b:
        for ptype in a:
            assert sorted(a[ptype]) == sorted(b[ptype])
            for name in a[ptype]:
                np.testing.assert_array_equal(a[ptype][name][()], b[ptype][name][()])


def test_interrupted_index_resumes_to_the_same_file(tiny_universe, indexed, tmp_path, monkeypatch):
    import cmcore.indexed as mod

    real, calls = mod.cells_of, {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 9:        # in the sorting pass of the second type
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    out = tmp_path / "resumed.hdf5"
    monkeypatch.setattr(mod, "cells_of", failing)
    with pytest.raises(KeyboardInterrupt):
        write_indexed(tiny_universe.snapshot, out, chunk_rows=50_000, progress=False)
    assert not out.exists() and (tmp_path / "resumed.hdf5.work" / "state.json").exists()
    monkeypatch.setattr(mod, "cells_of", real)
    summary = write_indexed(tiny_universe.snapshot, out, chunk_rows=50_000, progress=False)
    assert summary.resumed and not (tmp_path / "resumed.hdf5.work").exists()
    with h5py.File(indexed, "r") as a, h5py.File(out, "r") as b:
        for ptype in a:
            for name in a[ptype]:
                np.testing.assert_array_equal(a[ptype][name][()], b[ptype][name][()])


def test_not_an_indexed_file(tiny_universe):
    with pytest.raises(FileFormatError, match="not an indexed snapshot"):
        IndexedSnapshot(tiny_universe.snapshot)


def test_contents_of_an_indexed_copy_are_checked_like_a_snapshot(tiny_universe, indexed, tmp_path):
    from cmcore.errors import InputError
    from cmcore.observables import check_request
    from cmcore.readers import snapshot_contents

    assert snapshot_contents(indexed) == {t: f & frozenset(RENDER_FIELDS) for t, f in
                                          snapshot_contents(tiny_universe.snapshot).items()}
    gas_only = tmp_path / "gas.hdf5"
    write_indexed(tiny_universe.snapshot, gas_only, particle_types=["gas"], fields=["temperature"], progress=False)
    check_request(snapshot_contents(gas_only), ["Ypar"])
    with pytest.raises(InputError, match="Star needs stars"):
        check_request(snapshot_contents(gas_only), ["Star"])
    with pytest.raises(InputError, match="density"):
        check_request(snapshot_contents(gas_only), ["Fxb"])
