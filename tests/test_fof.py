"""The compiled union-find friends-of-friends equals the pair-list definition."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from cmcore.benchmarks.centres import numpy_shrinking_sphere
from cmcore.errors import InputError
from cmcore.halos import _wrap, friends_of_friends, shrinking_sphere_centres


def reference_fof(positions, boxsize, linking_length, min_members):
    """Groups from every pair within the linking length (cKDTree) and connected components."""
    pos = _wrap(positions, boxsize)
    pairs = cKDTree(pos, boxsize=boxsize).query_pairs(linking_length, output_type="ndarray")
    n = len(pos)
    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels)
    big = np.flatnonzero(sizes >= min_members)
    big = big[np.argsort(-sizes[big], kind="stable")]
    order = np.argsort(labels, kind="stable")
    starts = np.r_[0, np.cumsum(sizes)]
    return [order[starts[g]: starts[g + 1]] for g in big]


def clustered(rng, n_field, clumps, boxsize, dtype=np.float64):
    """Uniform field particles plus Gaussian clumps (some across the periodic faces)."""
    parts = [rng.uniform(0, boxsize, (n_field, 3))]
    for centre, sigma, n in clumps:
        parts.append(np.asarray(centre) + rng.normal(0, sigma, (n, 3)))
    return np.mod(np.concatenate(parts), boxsize).astype(dtype)


def assert_same_groups(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fof_equals_pair_definition_with_dense_clumps_and_periodic_faces(dtype):
    rng = np.random.default_rng(3)
    box = 50.0
    clumps = [((0.1, 25.0, 25.0), 0.4, 4000),       # straddles x = 0
              ((49.9, 49.9, 0.05), 0.3, 3000),      # a corner
              ((20.0, 20.0, 20.0), 0.05, 6000),     # very dense: fine-cell path
              ((30.0, 10.0, 40.0), 1.5, 1500)]
    pos = clustered(rng, 20000, clumps, box, dtype)
    ll = 0.2 * box / len(pos) ** (1 / 3)
    assert_same_groups(friends_of_friends(pos, box, ll, 8), reference_fof(pos, box, ll, 8))


def test_fof_result_does_not_depend_on_the_cell_grid():
    rng = np.random.default_rng(4)
    box = 20.0
    pos = clustered(rng, 5000, [((10.0, 10.0, 19.9), 0.2, 3000), ((3.0, 3.0, 3.0), 0.6, 2000)], box)
    ll = 0.25
    want = reference_fof(pos, box, ll, 2)
    for ppc in (1.0, 8.0, 200.0, 5000.0):
        assert_same_groups(friends_of_friends(pos, box, ll, 2, particles_per_cell=ppc), want)


def test_fof_chain_across_the_box_is_one_group():
    box = 10.0
    x = np.arange(0.0, box, 0.09)                # spacing 0.09 < 0.1: one ring around the box
    pos = np.column_stack([x, np.full_like(x, 5.0), np.full_like(x, 5.0)])
    groups = friends_of_friends(pos, box, 0.1, 2)
    assert len(groups) == 1 and len(groups[0]) == len(x)
    one_gap = pos[(x < 4.5) | (x > 4.7)]        # a chain that closes across x = 0: one group
    groups = friends_of_friends(one_gap, box, 0.1, 2)
    assert len(groups) == 1 and len(groups[0]) == len(one_gap)
    two_gaps = pos[((x < 4.5) | (x > 4.7)) & ((x < 7.0) | (x > 7.2))]
    groups = friends_of_friends(two_gaps, box, 0.1, 2)
    xs = two_gaps[:, 0]
    wrapped = np.flatnonzero((xs < 4.5) | (xs > 7.2))
    assert len(groups) == 2
    np.testing.assert_array_equal(groups[0], wrapped)   # the larger one, across the boundary


def test_fof_refuses_bad_input():
    with pytest.raises(InputError, match="linking length"):
        friends_of_friends(np.zeros((10, 3)), 1.0, 0.5)
    with pytest.raises(InputError, match="NaN"):
        friends_of_friends(np.full((10, 3), np.nan), 1.0, 0.1)


def test_fof_on_the_tiny_universe_equals_the_pair_definition(tiny_universe):
    from cmcore.readers import read_snapshot

    snap = read_snapshot(tiny_universe.snapshot, particle_types=["dm"], fields=[])
    pos, box = snap.dm.positions, snap.boxsize
    ll = 0.2 * box / len(pos) ** (1 / 3)
    assert_same_groups(friends_of_friends(pos, box, ll, 32), reference_fof(pos, box, ll, 32))


def test_shrinking_sphere_equals_the_reference_and_finds_the_main_clump():
    rng = np.random.default_rng(5)
    box = 30.0
    groups = [
        # a main clump across the periodic faces and a denser, smaller one 1.5 Mpc away
        np.concatenate([np.array([0.2, 15.0, 29.8]) + rng.normal(0, 0.5, (6000, 3)),
                        np.array([1.7, 15.0, 29.8]) + rng.normal(0, 0.05, (800, 3))]),
        np.array([10.0, 10.0, 10.0]) + rng.normal(0, 0.3, (15, 3)),      # fewer than the final count
        np.array([20.0, 5.0, 25.0]) + rng.standard_cauchy((3000, 3)) * 0.1,  # heavy tails
    ]
    pos = np.mod(np.concatenate(groups + [rng.uniform(0, box, (5000, 3))]), box)
    sizes = [len(g) for g in groups]
    starts = np.r_[0, np.cumsum(sizes)]
    members = np.arange(starts[-1])
    for dtype in (np.float64, np.float32):
        p = pos.astype(dtype)
        got = shrinking_sphere_centres(p, box, members, starts)
        want = np.array([numpy_shrinking_sphere(p[members[a:b]].astype(np.float64), box)
                         for a, b in zip(starts[:-1], starts[1:])])
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    d = got[0] - [0.2, 15.0, 29.8]
    d -= box * np.round(d / box)
    assert np.linalg.norm(d) < 0.2      # the main clump (a flat Gaussian core), not the neighbour 1.5 Mpc away
    assert np.linalg.norm(got[1] - groups[1].mean(axis=0)) < 1e-5   # small group: its centre of mass (float32)
    assert np.linalg.norm(got[2] - [20.0, 5.0, 25.0]) < 0.05
    # translation through the periodic faces moves the centres with it
    shift = np.array([7.3, -12.1, 4.4])
    moved = shrinking_sphere_centres(np.mod(pos + shift, box), box, members, starts)
    d = moved - np.mod(got + shift, box)
    d -= box * np.round(d / box)
    assert np.abs(d).max() < 1e-5


def test_shrinking_sphere_refuses_bad_groups():
    with pytest.raises(InputError, match="starts"):
        shrinking_sphere_centres(np.zeros((10, 3)), 1.0, np.arange(10), np.array([0, 5]))
    with pytest.raises(InputError, match="members"):
        shrinking_sphere_centres(np.zeros((10, 3)), 1.0, np.array([3, 12]), np.array([0, 2]))


@pytest.mark.slow
def test_find_halos_gives_the_catalogue_of_the_pair_list_finder_on_the_tiny_universe(tiny_universe, monkeypatch):
    """The pair-list friends-of-friends (cKDTree pairs, connected components) gives the same catalogue."""
    import cmcore.halos as halos
    from cmcore.readers import read_snapshot

    snap = read_snapshot(tiny_universe.snapshot, fields=[])
    new = halos.find_halos(snap)

    def pair_list_groups(positions, boxsize, linking_length, min_members):
        groups = reference_fof(positions, boxsize, linking_length, min_members)
        return np.concatenate(groups).astype(np.int64), np.r_[0, np.cumsum([len(g) for g in groups])]

    monkeypatch.setattr(halos, "_fof_groups", pair_list_groups)
    old = halos.find_halos(snap)
    assert len(new) == len(old) > 10
    for name in ("halo_id", "centre", "m200", "r200", "n_particles"):
        np.testing.assert_array_equal(getattr(new, name), getattr(old, name))
