"""cmcore.cellindex: selections equal brute force; project(index=...) equals the full scan."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmcore.cellindex import CellIndex
from cmcore.errors import InputError
from cmcore.projection import project

L = 100.0


def brute_offsets(pos, centre, boxsize):
    c = np.asarray(centre, dtype=np.float64)
    c = c - boxsize * np.floor(c / boxsize)
    d = pos.astype(np.float64) - c
    return d - boxsize * np.floor(d / boxsize + 0.5)


def brute_box(pos, centre, half, boxsize):
    d = brute_offsets(pos, centre, boxsize)
    half = np.broadcast_to(np.asarray(half, dtype=np.float64), (3,))
    return np.flatnonzero(np.all(np.abs(d) <= half, axis=1))


def brute_sphere(pos, centre, radius, boxsize):
    d = brute_offsets(pos, centre, boxsize)
    return np.flatnonzero(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1] + d[:, 2] * d[:, 2]
                          <= radius * radius)


def particles(n=50_000, dtype=np.float32, seed=0):
    """Uniform background plus clumps, two of them across box faces/corners."""
    rng = np.random.default_rng(seed)
    bg = rng.random((n // 2, 3)) * L
    centres = np.array([[0.2, 50.0, 50.0], [99.5, 99.8, 0.3], [30.0, 60.0, 70.0]])
    clumps = centres[rng.integers(0, 3, n - n // 2)] + rng.normal(scale=2.0, size=(n - n // 2, 3))
    return (np.concatenate([bg, clumps]) % L).astype(dtype)


@pytest.fixture(scope="module", params=[np.float32, np.float64])
def indexed(request):
    pos = particles(dtype=request.param)
    return pos, CellIndex(pos, L, particles_per_cell=8)


CENTRES = [(0.2, 50.0, 50.0), (99.5, 99.8, 0.3), (30.0, 60.0, 70.0), (0.0, 0.0, 0.0),
           (50.0, 50.0, 50.0), (-3.0, 105.0, 250.0)]


@pytest.mark.parametrize("centre", CENTRES)
@pytest.mark.parametrize("radius", [0.0, 0.7, 3.0, 12.5, 49.0, 80.0])
def test_select_sphere_equals_brute_force(indexed, centre, radius):
    pos, idx = indexed
    got = idx.select_sphere(centre, radius)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, brute_sphere(pos, centre, radius, L))


@pytest.mark.parametrize("centre", CENTRES)
@pytest.mark.parametrize("half", [0.5, 4.0, (1.0, 20.0, 3.0), (60.0, 2.0, 2.0), 50.0])
def test_select_box_equals_brute_force(indexed, centre, half):
    pos, idx = indexed
    got = idx.select_box(centre, half)
    np.testing.assert_array_equal(got, brute_box(pos, centre, half, L))


@settings(max_examples=40, deadline=None)
@given(
    st.tuples(*[st.floats(-150.0, 250.0) for _ in range(3)]),
    st.floats(0.0, 60.0),
    st.tuples(*[st.floats(0.0, 60.0) for _ in range(3)]),
)
def test_selections_property(centre, radius, half):
    pos = _HYP_POS
    np.testing.assert_array_equal(_HYP_IDX.select_sphere(centre, radius),
                                  brute_sphere(pos, centre, radius, L))
    np.testing.assert_array_equal(_HYP_IDX.select_box(centre, half), brute_box(pos, centre, half, L))


_HYP_POS = particles(20_000, np.float32, seed=3)
_HYP_IDX = CellIndex(_HYP_POS, L, particles_per_cell=4)


def test_particles_on_cell_and_box_boundaries():
    # positions exactly on cell faces, on 0 and just below L, and outside [0, L)
    g = np.linspace(0.0, L, 11)
    pos = np.array(np.meshgrid(g, g, g, indexing="ij")).reshape(3, -1).T.copy()
    pos = np.concatenate([pos, pos - 1e-12, pos + L, pos - 3 * L])
    idx = CellIndex(pos, L, particles_per_cell=1.0)
    for centre in [(0.0, 0.0, 0.0), (10.0, 20.0, 90.0), (55.0, 45.0, 5.0)]:
        for r in (0.0, 10.0, 10.000001, 25.0):
            np.testing.assert_array_equal(idx.select_sphere(centre, r), brute_sphere(pos, centre, r, L))
            np.testing.assert_array_equal(idx.select_box(centre, r), brute_box(pos, centre, r, L))


def test_index_memory_is_at_most_8_bytes_per_particle():
    pos = particles(200_000)
    idx = CellIndex(pos, L)
    assert idx.nbytes <= 8 * len(pos)
    assert idx.permutation.dtype == np.int32
    np.testing.assert_array_equal(np.sort(idx.permutation), np.arange(len(pos)))
    assert idx.offsets[0] == 0 and idx.offsets[-1] == len(pos)


def test_index_keeps_positions_without_copy():
    pos = particles(1000)
    assert CellIndex(pos, L).positions is pos


@pytest.mark.parametrize("scheme", ["ngp", "cic", "sph"])
@pytest.mark.parametrize("los, azimuth", [("x", 0.0), ("y", 0.4), ("z", 1.0), ("diag", 2.0),
                                          ((0.1, 0.7, -0.3), 0.3)])
@pytest.mark.parametrize("centre", [(0.2, 50.0, 50.0), (99.5, 99.8, 0.3)])
def test_project_with_index_equals_full_scan(scheme, los, azimuth, centre):
    pos = _PROJ_POS
    w = np.random.default_rng(4).random((len(pos), 2))
    kw = dict(los=los, azimuth=azimuth, depth=30.0, width=9.0, npix=36, scheme=scheme,
              smoothing_lengths=_PROJ_H)
    full = project(pos, w, centre, L, **kw)
    fast = project(pos, w, centre, L, index=_PROJ_IDX, **kw)
    assert full.sum() > 0
    np.testing.assert_allclose(fast, full, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("scheme", ["ngp", "cic"])
@pytest.mark.parametrize("los, azimuth", [("z", 0.0), ("diag", 0.3), ((0.1, 0.7, -0.3), 1.1)])
def test_project_with_index_in_spatial_order(scheme, los, azimuth):
    """Particles stored cell by cell (as snapshots are: long runs of consecutive ids in
    the permutation, scanned vectorised), with a shuffled part (short runs)."""
    pos = _PROJ_POS[CellIndex(_PROJ_POS, L, particles_per_cell=8).permutation]
    tail = np.random.default_rng(7).permutation(np.arange(40_000, len(pos)))
    pos = np.ascontiguousarray(np.concatenate([pos[:40_000], pos[tail]]))
    idx = CellIndex(pos, L, particles_per_cell=8)
    w = np.random.default_rng(8).random(len(pos))
    for centre in [(0.2, 50.0, 50.0), (99.5, 99.8, 0.3), (30.0, 60.0, 70.0)]:
        kw = dict(los=los, azimuth=azimuth, depth=30.0, width=9.0, npix=36, scheme=scheme)
        full = project(pos, w, centre, L, **kw)
        fast = project(pos, w, centre, L, index=idx, **kw)
        assert full.sum() > 0
        np.testing.assert_allclose(fast, full, rtol=1e-12, atol=1e-14)


_PROJ_POS = particles(60_000, np.float32, seed=5)
_PROJ_H = np.random.default_rng(6).uniform(0.05, 2.0, len(_PROJ_POS)).astype(np.float32)
_PROJ_IDX = CellIndex(_PROJ_POS, L, smoothing_lengths=_PROJ_H, particles_per_cell=8)


def test_index_bad_input():
    pos = particles(1000, np.float64)
    with pytest.raises(ValueError, match="boxsize"):
        CellIndex(pos, 0.0)
    with pytest.raises(ValueError, match="boxsize"):
        CellIndex(pos, None)
    with pytest.raises(ValueError, match="positions"):
        CellIndex(pos[:, :2], L)
    bad = pos.copy()
    bad[17, 2] = np.nan
    with pytest.raises(InputError, match="positions"):
        CellIndex(bad, L)
    with pytest.raises(ValueError, match="smoothing_lengths"):
        CellIndex(pos, L, smoothing_lengths=-np.ones(len(pos)))
    idx = CellIndex(pos, L)
    with pytest.raises(ValueError, match="radius"):
        idx.select_sphere((1, 2, 3), -1.0)
    with pytest.raises(ValueError, match="half_extent"):
        idx.select_box((1, 2, 3), (1.0, np.nan, 1.0))
    with pytest.raises(ValueError, match="centre"):
        idx.select_box((1, 2), 1.0)
    w = np.ones(len(pos))
    with pytest.raises(ValueError, match="index"):
        project(pos.copy(), w, (1, 2, 3), L, width=2.0, index=idx)
    with pytest.raises(ValueError, match="index"):
        project(pos, w, (1, 2, 3), 2 * L, width=2.0, index=idx)
    with pytest.raises(ValueError, match="smoothing_lengths"):
        project(pos, w, (1, 2, 3), L, width=2.0, index=idx, scheme="sph",
                smoothing_lengths=np.ones(len(pos)))


def test_sph_smoothing_lengths_above_index_maximum_are_refused():
    pos = particles(5000, np.float64)
    h = np.full(len(pos), 0.5)
    idx = CellIndex(pos, L, smoothing_lengths=h)
    with pytest.raises(ValueError, match="smoothing_lengths"):
        project(pos, np.ones(len(pos)), (30.0, 60.0, 70.0), L, width=5.0, scheme="sph",
                smoothing_lengths=2 * h, index=idx)


def test_empty_index():
    idx = CellIndex(np.empty((0, 3), np.float32), L)
    assert idx.select_sphere((1, 1, 1), 10.0).size == 0


@pytest.mark.slow
def test_large_box_selection_equals_brute_force():
    rng = np.random.default_rng(7)
    pos = (rng.random((20_000_000, 3)) * 500.0).astype(np.float32)
    idx = CellIndex(pos, 500.0)
    for centre in [(1.0, 250.0, 499.0), (300.0, 10.0, 20.0)]:
        np.testing.assert_array_equal(idx.select_sphere(centre, 6.0),
                                      brute_sphere(pos, centre, 6.0, 500.0))
