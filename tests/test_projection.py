"""cmcore.projection: NGP/CIC against a plain NumPy reference, geometry, bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmcore.errors import InputError
from cmcore.projection import los_basis, project

L = 200.0
NAMED = ["x", "y", "z", "diag"]


# --------------------------------------------------------------------------------------
# the plain NumPy reference: identical float64 arithmetic, in the documented order
# --------------------------------------------------------------------------------------

def reference(pos, w, centre, boxsize, los="z", azimuth=0.0, depth=50.0, width=5.0,
              npix=120, scheme="ngp"):
    u, v, n = los_basis(los, azimuth)
    c = np.asarray(centre, dtype=np.float64)
    d = pos.astype(np.float64) - (c - boxsize * np.floor(c / boxsize) if boxsize else c)
    if boxsize:
        d = d - boxsize * np.floor(d / boxsize + 0.5)
    s = d[:, 0] * n[0] + d[:, 1] * n[1] + d[:, 2] * n[2]
    sel = np.abs(s) <= depth
    d, w = d[sel], np.asarray(w, dtype=np.float64)[sel]
    uu = d[:, 0] * u[0] + d[:, 1] * u[1] + d[:, 2] * u[2]
    vv = d[:, 0] * v[0] + d[:, 1] * v[1] + d[:, 2] * v[2]
    fu = (uu + 0.5 * width) * (npix / width)
    fv = (vv + 0.5 * width) * (npix / width)
    img = np.zeros(npix * npix)
    if scheme == "ngp":
        ok = (fu >= 0) & (fu < npix) & (fv >= 0) & (fv < npix)
        pix = fv[ok].astype(np.int64) * npix + fu[ok].astype(np.int64)
        img += np.bincount(pix, weights=w[ok], minlength=npix * npix)
    else:
        fx, fy = fu - 0.5, fv - 0.5
        x0, y0 = np.floor(fx), np.floor(fy)
        tx, ty = fx - x0, fy - y0
        j0, i0 = x0.astype(np.int64), y0.astype(np.int64)
        for a, wy in ((0, 1.0 - ty), (1, ty)):
            for b, wx in ((0, 1.0 - tx), (1, tx)):
                row, col = i0 + a, j0 + b
                ok = (row >= 0) & (row < npix) & (col >= 0) & (col < npix)
                img += np.bincount(row[ok] * npix + col[ok], weights=w[ok] * (wy[ok] * wx[ok]),
                                   minlength=npix * npix)
    return img.reshape(npix, npix)


def random_set(n, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n, 3)) * L).astype(dtype)


def clustered_set(n, dtype=np.float32, seed=1, centre=(0.5, 100.0, 199.0)):
    """Half uniform, half in a compact clump straddling the box boundary."""
    rng = np.random.default_rng(seed)
    bg = rng.random((n // 2, 3)) * L
    clump = np.asarray(centre) + rng.normal(scale=1.5, size=(n - n // 2, 3))
    pos = np.concatenate([bg, clump]) % L
    return pos.astype(dtype)


# --------------------------------------------------------------------------------------
# exact agreement with the reference
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("dataset", ["random", "clustered"])
@pytest.mark.parametrize("los", NAMED)
@pytest.mark.parametrize("azimuth", [0.0, 0.7])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ngp_equals_numpy_reference(dataset, los, azimuth, dtype):
    centre = (0.5, 100.0, 199.0)
    pos = (random_set(60_000, dtype) if dataset == "random"
           else clustered_set(60_000, dtype, centre=centre))
    # integer weights: the sums are exact whatever the summation order
    w = np.random.default_rng(2).integers(1, 50, size=len(pos)).astype(np.float64)
    img = project(pos, w, centre, L, los=los, azimuth=azimuth, width=12.0, npix=64)
    ref = reference(pos, w, centre, L, los, azimuth, width=12.0, npix=64)
    assert ref.sum() > 0
    np.testing.assert_array_equal(img, ref)


@pytest.mark.parametrize("dataset", ["random", "clustered"])
@pytest.mark.parametrize("los", NAMED)
@pytest.mark.parametrize("azimuth", [0.0, -1.3])
def test_cic_equals_numpy_reference(dataset, los, azimuth):
    centre = (0.5, 100.0, 199.0)
    pos = random_set(60_000) if dataset == "random" else clustered_set(60_000, centre=centre)
    w = np.random.default_rng(3).random(len(pos))
    img = project(pos, w, centre, L, los=los, azimuth=azimuth, width=12.0, npix=64, scheme="cic")
    ref = reference(pos, w, centre, L, los, azimuth, width=12.0, npix=64, scheme="cic")
    assert ref.sum() > 0
    np.testing.assert_allclose(img, ref, rtol=1e-12, atol=1e-12 * ref.max())


@pytest.mark.parametrize("scheme", ["ngp", "cic"])
def test_vector_los_and_open_box(scheme):
    pos = clustered_set(40_000, np.float64, centre=(50.0, 60.0, 70.0))
    w = np.random.default_rng(4).random(len(pos))
    los = (0.3, -0.5, 0.8)
    img = project(pos, w, (50.0, 60.0, 70.0), None, los=los, azimuth=0.4, depth=150.0,
                  width=10.0, npix=50, scheme=scheme)
    ref = reference(pos, w, (50.0, 60.0, 70.0), None, los, 0.4, depth=150.0, width=10.0,
                    npix=50, scheme=scheme)
    np.testing.assert_allclose(img, ref, rtol=1e-12, atol=1e-12 * ref.max())


def test_channels_share_one_pass():
    pos = clustered_set(30_000, centre=(100.0, 100.0, 100.0))
    rng = np.random.default_rng(5)
    w = rng.random((len(pos), 3))
    stack = project(pos, w, (100.0, 100.0, 100.0), L, width=8.0, npix=40, scheme="cic")
    assert stack.shape == (3, 40, 40)
    for k in range(3):
        one = project(pos, w[:, k], (100.0, 100.0, 100.0), L, width=8.0, npix=40, scheme="cic")
        np.testing.assert_allclose(stack[k], one, rtol=1e-13)


def test_threads_do_not_change_the_image():
    pos = clustered_set(200_000, centre=(100.0, 100.0, 100.0))
    w = np.random.default_rng(6).random(len(pos))
    kw = dict(width=8.0, npix=40, scheme="cic")
    one = project(pos, w, (100.0, 100.0, 100.0), L, nthreads=1, **kw)
    two = project(pos, w, (100.0, 100.0, 100.0), L, nthreads=2, **kw)
    np.testing.assert_allclose(one, two, rtol=1e-12)


# --------------------------------------------------------------------------------------
# geometry
# --------------------------------------------------------------------------------------

def test_pixel_convention():
    """Column j runs along u, row i along v; pixel j's centre at -w/2 + (j + 1/2) w / npix."""
    width, npix = 10.0, 10
    u, v, n = los_basis("diag", 0.3)
    centre = np.array([100.0, 100.0, 100.0])
    i, j = 2, 7
    pu = -width / 2 + (j + 0.5) * width / npix
    pv = -width / 2 + (i + 0.5) * width / npix
    pos = (centre + pu * u + pv * v + 3.0 * n)[None, :]
    img = project(pos, [1.0], centre, L, los="diag", azimuth=0.3, width=width, npix=npix)
    assert img[i, j] == 1.0 and img.sum() == 1.0


def test_named_basis_table():
    expected = {
        "x": ((0, 1, 0), (0, 0, 1)),
        "y": ((-1, 0, 0), (0, 0, 1)),
        "z": ((1, 0, 0), (0, 1, 0)),
        "diag": ((math.sqrt(0.5), math.sqrt(0.5), 0), (0, 0, 1)),
    }
    for name, (eu, ev) in expected.items():
        u, v, n = los_basis(name)
        np.testing.assert_allclose(u, eu, atol=1e-15)
        np.testing.assert_allclose(v, ev, atol=1e-15)
        np.testing.assert_allclose(np.cross(u, v), n, atol=1e-15)
    np.testing.assert_allclose(los_basis("diag")[2], (math.sqrt(0.5), -math.sqrt(0.5), 0))


@settings(max_examples=60, deadline=None)
@given(
    st.tuples(*[st.floats(-1, 1) for _ in range(3)]).filter(lambda t: sum(x * x for x in t) > 1e-4),
    st.floats(-10, 10),
)
def test_basis_is_orthonormal_and_right_handed(vec, azimuth):
    u, v, n = los_basis(vec, azimuth)
    m = np.stack([u, v, n])
    np.testing.assert_allclose(m @ m.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(np.cross(u, v), n, atol=1e-12)
    np.testing.assert_allclose(n, np.asarray(vec) / np.linalg.norm(vec), atol=1e-12)


def test_azimuth_turns_axes_about_los():
    u0, v0, n0 = los_basis("x")
    u, v, n = los_basis("x", math.pi / 2)
    np.testing.assert_allclose(u, v0, atol=1e-15)
    np.testing.assert_allclose(v, -u0, atol=1e-15)
    np.testing.assert_allclose(n, n0)


@pytest.mark.parametrize("scheme", ["ngp", "cic"])
@pytest.mark.parametrize("los", NAMED + [(0.2, 0.9, -0.4)])
def test_periodic_shift_of_box_and_centre(scheme, los):
    # dyadic positions, box and shift: every subtraction and wrap is exact
    rng = np.random.default_rng(7)
    box = 256.0
    pos = np.round(rng.random((40_000, 3)) * box * 2**12) / 2**12
    pos[:20_000] = (np.array([2.0, 128.0, 250.0]) + np.round(rng.normal(size=(20_000, 3)) * 2**12)
                    / 2**12) % box
    w = rng.random(len(pos))
    centre = np.array([2.0, 128.0, 250.0])
    kw = dict(los=los, azimuth=0.5, width=16.0, npix=48, scheme=scheme)
    img = project(pos, w, centre, box, **kw)
    for shift in (np.array([64.0, -32.0, 100.0]), np.array([-200.5, 0.25, 7.0])):
        shifted = project((pos + shift) % box, w, (centre + shift) % box, box, **kw)
        np.testing.assert_allclose(shifted, img, rtol=1e-12, atol=1e-14)
    assert img.sum() > 0


def test_positions_outside_the_box_are_wrapped():
    rng = np.random.default_rng(8)
    box = 256.0
    pos = np.round(rng.random((20_000, 3)) * box * 2**10) / 2**10
    w = rng.random(len(pos))
    kw = dict(width=40.0, npix=32)
    img = project(pos, w, (10.0, 20.0, 30.0), box, **kw)
    moved = pos + rng.integers(-3, 4, size=pos.shape) * box
    np.testing.assert_allclose(project(moved, w, (10.0, 20.0, 30.0) , box, **kw), img, rtol=1e-12)
    np.testing.assert_allclose(project(pos, w, (10.0 + 2 * box, 20.0 - box, 30.0), box, **kw), img,
                               rtol=1e-12)


@pytest.mark.parametrize("los", NAMED)
@pytest.mark.parametrize("centre_s", [100.0, 10.0, 190.0])
def test_slab_edges(los, centre_s):
    """49.9 along the line of sight counts, 50.1 does not; also through the boundary."""
    u, v, n = los_basis(los)
    centre = np.array([100.0, 100.0, 100.0]) + (centre_s - 100.0) * n
    offsets = np.array([49.9, -49.9, 50.1, -50.1])
    pos = (centre + offsets[:, None] * n[None, :] + 0.3 * u) % L
    w = np.array([1.0, 2.0, 4.0, 8.0])
    for scheme in ("ngp", "cic"):
        img = project(pos, w, centre, L, los=los, depth=50.0, width=4.0, npix=8, scheme=scheme)
        assert img.sum() == pytest.approx(3.0, rel=1e-12)


@pytest.mark.parametrize("los", NAMED)
def test_minimum_image_near_half_box(los):
    """Per-axis offsets just beyond L/2 wrap to the other side (depth up to L/2)."""
    box = 100.0
    u, v, n = los_basis(los)
    centre = np.array([30.0, 60.0, 90.0])
    offsets = np.array([50.5, -50.5, 49.5, -49.5, 50.0, -50.0, 99.0, 150.5])
    pos = centre + offsets[:, None] * n[None, :] + 0.2 * u - 0.3 * v
    w = 2.0 ** np.arange(len(offsets))
    for depth, kept in ((50.0, slice(None)), (49.6, [0, 1, 2, 3, 6, 7])):
        img = project(pos, w, centre, box, los=los, depth=depth, width=4.0, npix=8)
        if los != "diag":       # along an axis the wrapped distance is |offset| mod L
            assert img.sum() == w[kept].sum()
        np.testing.assert_array_equal(
            img, reference(pos, w, centre, box, los, depth=depth, width=4.0, npix=8))


def test_slab_is_inclusive():
    pos = np.array([[100.0, 100.0, 150.0], [100.0, 100.0, 50.0], [100.0, 100.0, 150.5]])
    img = project(pos, [1.0, 2.0, 4.0], (100.0, 100.0, 100.0), L, depth=50.0, width=4.0, npix=8)
    assert img.sum() == 3.0


@pytest.mark.parametrize("scheme", ["ngp", "cic"])
def test_mass_conservation(scheme):
    rng = np.random.default_rng(9)
    centre = np.array([199.0, 1.0, 100.0])          # footprint across two box faces
    pos = (centre + rng.uniform(-4.0, 4.0, size=(50_000, 3)) * [1, 1, 10]) % L
    w = rng.random(len(pos))
    img = project(pos, w, centre, L, los="z", width=10.0, npix=100, scheme=scheme)
    assert img.sum() == pytest.approx(w.sum(), rel=1e-12)


def test_float32_and_float64_positions_agree():
    pos = random_set(50_000, np.float32)
    w = np.random.default_rng(10).integers(1, 9, len(pos)).astype(np.float32)
    a = project(pos, w, (50.0, 50.0, 50.0), L, los="diag", width=30.0, npix=60)
    b = project(pos.astype(np.float64), w.astype(np.float64), (50.0, 50.0, 50.0), L, los="diag",
                width=30.0, npix=60)
    np.testing.assert_array_equal(a, b)


def test_strided_inputs_and_integer_weights():
    pos = np.asfortranarray(random_set(30_000, np.float64))
    w = np.random.default_rng(11).integers(1, 9, (len(pos), 2))
    img = project(pos, w[:, 1], (50.0, 50.0, 50.0), L, width=30.0, npix=30)
    ref = reference(np.ascontiguousarray(pos), w[:, 1], (50.0, 50.0, 50.0), L, width=30.0, npix=30)
    np.testing.assert_array_equal(img, ref)


def test_empty_particle_set():
    img = project(np.empty((0, 3)), np.empty(0), (1.0, 1.0, 1.0), L, width=1.0, npix=4)
    assert img.shape == (4, 4) and not img.any()


def test_nan_weight_outside_the_image_is_never_read():
    pos = np.array([[100.0, 100.0, 100.0], [10.0, 10.0, 10.0]])
    img = project(pos, [1.0, np.nan], (100.0, 100.0, 100.0), L, width=4.0, npix=4)
    assert img.sum() == 1.0


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------

def _good():
    pos = random_set(1000, np.float64)
    pos[0] = (100.0, 100.0, 100.0)
    return dict(positions=pos, weights=np.ones(1000), centre=(100.0, 100.0, 100.0), boxsize=L,
                width=4.0)


@pytest.mark.parametrize("change, name", [
    (lambda k: k["positions"].__setitem__((5, 1), np.nan), "positions"),
    (lambda k: k["positions"].__setitem__((7, 2), np.inf), "positions"),
    (lambda k: k["positions"].__setitem__((3, 0), -np.inf), "positions"),
    (lambda k: k.__setitem__("positions", k["positions"][:, :2]), "positions"),
    (lambda k: k.__setitem__("positions", k["positions"].astype(np.int64)), "positions"),
    (lambda k: k.__setitem__("positions", k["positions"].astype(np.float16)), "positions"),
    (lambda k: k.__setitem__("positions", k["positions"].ravel()), "positions"),
    (lambda k: k["weights"].__setitem__(0, np.nan), "weights"),
    (lambda k: k["weights"].__setitem__(0, np.inf), "weights"),
    (lambda k: k.__setitem__("weights", np.ones(999)), "weights"),
    (lambda k: k.__setitem__("weights", np.ones((1000, 2, 2))), "weights"),
    (lambda k: k.__setitem__("weights", np.ones(1000, dtype=complex)), "weights"),
    (lambda k: k.__setitem__("weights", np.ones((1000, 0))), "weights"),
    (lambda k: k.__setitem__("centre", (1.0, 2.0)), "centre"),
    (lambda k: k.__setitem__("centre", (1.0, np.nan, 2.0)), "centre"),
    (lambda k: k.__setitem__("boxsize", 0.0), "boxsize"),
    (lambda k: k.__setitem__("boxsize", -5.0), "boxsize"),
    (lambda k: k.__setitem__("boxsize", np.inf), "boxsize"),
    (lambda k: k.__setitem__("npix", 0), "npix"),
    (lambda k: k.__setitem__("npix", 2.5), "npix"),
    (lambda k: k.__setitem__("width", 0.0), "width"),
    (lambda k: k.__setitem__("width", -1.0), "width"),
    (lambda k: k.__setitem__("width", np.nan), "width"),
    (lambda k: k.__setitem__("depth", 0.0), "depth"),
    (lambda k: k.__setitem__("depth", -3.0), "depth"),
    (lambda k: k.__setitem__("depth", 100.5), "depth"),
    (lambda k: k.__setitem__("los", "w"), "los"),
    (lambda k: k.__setitem__("los", (0.0, 0.0, 0.0)), "los"),
    (lambda k: k.__setitem__("los", (1.0, 0.0)), "los"),
    (lambda k: k.__setitem__("azimuth", np.nan), "azimuth"),
    (lambda k: k.__setitem__("scheme", "tsc"), "scheme"),
    (lambda k: k.__setitem__("scheme", "sph"), "smoothing_lengths"),
    (lambda k: k.__setitem__("nthreads", 0), "nthreads"),
])
def test_bad_input_raises_value_error_naming_the_argument(change, name):
    kwargs = _good()
    change(kwargs)
    with pytest.raises(ValueError, match=name) as info:
        project(**kwargs)
    assert isinstance(info.value, InputError)


def test_good_baseline_of_bad_input_cases():
    assert project(**_good()).sum() == 1.0


def test_depth_above_half_box_is_fine_without_periodicity():
    kw = _good()
    kw.update(boxsize=None, depth=500.0)
    assert project(**kw).sum() >= 1.0
