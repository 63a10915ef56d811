"""The "sph" scheme: projected Wendland C2 kernel, mass conservation, edges, bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

from cmcore.projection import los_basis, project, projected_wendland_c2

L = 100.0


def wendland_c2_3d(r):
    """Wendland C2 kernel of unit support radius, normalised in 3D."""
    return np.where(r < 1.0, 21.0 / (2.0 * np.pi) * (1.0 - r) ** 4 * (1.0 + 4.0 * r), 0.0)


@pytest.mark.parametrize("q", [0.0, 0.01, 0.2, 0.5, 0.77, 0.95, 0.999])
def test_projected_kernel_equals_line_integral(q):
    zmax = math.sqrt(1.0 - q * q)
    exact, _ = integrate.quad(lambda z: wendland_c2_3d(math.hypot(q, z)), -zmax, zmax,
                              epsabs=0.0, epsrel=1e-13)
    assert projected_wendland_c2(q) == pytest.approx(exact, rel=1e-11, abs=1e-15)


def test_projected_kernel_is_normalised_and_compact():
    total, _ = integrate.quad(lambda q: 2.0 * np.pi * q * projected_wendland_c2(q), 0.0, 1.0,
                              epsrel=1e-12)
    assert total == pytest.approx(1.0, rel=1e-10)
    assert projected_wendland_c2(1.0) == 0.0 and projected_wendland_c2(3.0) == 0.0
    # at q = 0 the line of sight runs through the kernel centre
    centre, _ = integrate.quad(lambda z: 2.0 * wendland_c2_3d(z), 0.0, 1.0)
    assert projected_wendland_c2(0.0) == pytest.approx(centre, rel=1e-13)


def _one_particle(H, offset=(0.0, 0.0), width=10.0, npix=100, weight=1.0):
    centre = np.array([50.0, 50.0, 50.0])
    u, v, n = los_basis("z")
    pos = (centre + offset[0] * u + offset[1] * v + 2.0 * n)[None, :]
    img = project(pos, [weight], centre, L, width=width, npix=npix, scheme="sph",
                  smoothing_lengths=[H])
    return img


@pytest.mark.parametrize("H, offset", [(1.5, (0.0, 0.0)), (2.0, (0.33, -0.71)), (0.8, (1.0, 2.0))])
def test_deposit_matches_analytic_surface_density(H, offset):
    """Pixel values approach w * f(R/H) / H^2 * pixel area (kernel over many pixels)."""
    width, npix = 10.0, 100
    img = _one_particle(H, offset, width, npix, weight=3.0)
    pix = width / npix
    centres = -width / 2 + (np.arange(npix) + 0.5) * pix
    uu, vv = np.meshgrid(centres, centres)          # image[i, j]: v = centres[i], u = centres[j]
    R = np.hypot(uu - offset[0], vv - offset[1])
    expected = 3.0 * projected_wendland_c2(R / H) / H**2 * pix**2
    assert img.sum() == pytest.approx(3.0, rel=1e-12)
    core = R < 0.8 * H
    np.testing.assert_allclose(img[core], expected[core], rtol=2e-3)
    assert np.all(img[R >= H] == 0.0)


def test_mass_conserved_for_kernels_inside_the_image():
    rng = np.random.default_rng(0)
    n = 5000
    centre = np.array([99.0, 0.5, 50.0])             # across box faces
    H = rng.uniform(0.001, 1.0, n)
    uv = rng.uniform(-3.9, 3.9, (n, 2)) * (1 - H[:, None] / 4.0)
    uv = np.clip(uv, -5.0 + H[:, None] + 1e-3, 5.0 - H[:, None] - 1e-3)
    pos = (centre + np.column_stack([uv, rng.uniform(-40, 40, n)])) % L
    w = rng.random(n)
    for dtype in (np.float32, np.float64):
        img = project(pos.astype(dtype), w.astype(dtype), centre, L, width=10.0, npix=64,
                      scheme="sph", smoothing_lengths=H.astype(dtype))
        assert img.sum() == pytest.approx(w.astype(dtype).sum(), rel=1e-6 if dtype is np.float32
                                          else 1e-12)


def test_kernel_at_the_edge_keeps_only_the_inside_part():
    # centred exactly on the right edge: pixel centres are symmetric about it
    img = _one_particle(H=1.3, offset=(5.0, 0.0))
    assert img.sum() == pytest.approx(0.5, rel=1e-12)
    img = _one_particle(H=1.3, offset=(5.0, 5.0))      # on a corner
    assert img.sum() == pytest.approx(0.25, rel=1e-12)
    assert _one_particle(H=1.3, offset=(6.31, 0.0)).sum() == 0.0


@pytest.mark.parametrize("H, offset", [(1.7, (4.0, -2.0)), (3.3, (0.5, 0.25)), (12.0, (-9.0, 3.0))])
def test_large_kernels_crossing_the_edge_keep_their_inside_fraction(H, offset):
    """Edge kernels of >= 16 pixels use the analytic normalisation; check it to 1e-6."""
    width, npix = 10.0, 100
    img = _one_particle(H, offset, width, npix)
    pix = width / npix
    r = H / pix
    assert r >= 16
    # exact discrete fractions: kernel sampled at every pixel centre of its support
    cu, cv = offset[0] / pix + npix / 2 - 0.5, offset[1] / pix + npix / 2 - 0.5
    j = np.arange(math.ceil(cu - r), math.floor(cu + r) + 1)
    i = np.arange(math.ceil(cv - r), math.floor(cv + r) + 1)
    q = np.hypot(j[None, :] - cu, i[:, None] - cv) / r
    f = projected_wendland_c2(q)
    inside = ((j[None, :] >= 0) & (j[None, :] < npix) & (i[:, None] >= 0) & (i[:, None] < npix))
    assert img.sum() == pytest.approx(f[inside].sum() / f.sum(), rel=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.floats(0.05, 0.8), st.floats(-5.3, 5.3), st.floats(-5.3, 5.3))
def test_deposit_is_the_normalised_kernel_sampled_at_pixel_centres(H, du, dv):
    """Every pixel gets w f(R_ij / H) / sum over the whole support (inside or not)."""
    width, npix = 10.0, 100
    img = _one_particle(H, (du, dv), width, npix)
    pix = width / npix
    r = H / pix
    cu, cv = du / pix + npix / 2 - 0.5, dv / pix + npix / 2 - 0.5
    j = np.arange(math.ceil(cu - r), math.floor(cu + r) + 1)
    i = np.arange(math.ceil(cv - r), math.floor(cv + r) + 1)
    f = projected_wendland_c2(np.hypot(j[None, :] - cu, i[:, None] - cv) / r)
    if f.sum() == 0.0:
        return                                   # covered by the one-pixel tests
    expected = np.zeros((npix, npix))
    rows, cols = (i >= 0) & (i < npix), (j >= 0) & (j < npix)
    expected[np.ix_(i[rows], j[cols])] = (f / f.sum())[np.ix_(rows, cols)]
    # the compiled kernel (float32 piecewise polynomial) is within 1.3e-7 of its peak
    peak = projected_wendland_c2(0.0)
    np.testing.assert_allclose(img, expected, rtol=0, atol=2e-6 * peak / f.sum())


def test_kernel_smaller_than_a_pixel_goes_into_one_pixel():
    img = _one_particle(H=0.04, offset=(0.27, -1.13), width=10.0, npix=100)   # pixel 0.1
    assert np.count_nonzero(img) == 1 and img.sum() == 1.0
    ngp = project(np.array([[50.27, 48.87, 52.0]]), [1.0], (50.0, 50.0, 50.0), L, width=10.0,
                  npix=100)
    np.testing.assert_array_equal(img, ngp)


def test_kernel_covering_no_pixel_centre_goes_into_its_pixel():
    # support radius 0.06 > half a pixel, centred on a pixel corner: nearest centre at 0.0707
    img = _one_particle(H=0.06, offset=(0.0, 0.0), width=10.0, npix=100)
    assert np.count_nonzero(img) == 1 and img.sum() == 1.0


@settings(max_examples=80, deadline=None)
@given(st.floats(0.01, 3.0), st.floats(-7.0, 7.0), st.floats(-7.0, 7.0))
def test_deposit_never_exceeds_the_weight(H, du, dv):
    total = _one_particle(H, (du, dv)).sum()
    assert total <= 1.0 + 1e-12
    if abs(du) + H < 4.95 and abs(dv) + H < 4.95:
        assert total == pytest.approx(1.0, rel=1e-12)


def test_sph_channels_and_slab():
    rng = np.random.default_rng(1)
    pos = rng.random((20_000, 3)) * L
    h = rng.uniform(0.1, 3.0, len(pos))
    w = rng.random((len(pos), 3))
    kw = dict(width=20.0, npix=40, scheme="sph", smoothing_lengths=h, depth=20.0)
    stack = project(pos, w, (50.0, 50.0, 50.0), L, **kw)
    for k in range(3):
        np.testing.assert_allclose(stack[k], project(pos, w[:, k], (50.0, 50.0, 50.0), L, **kw),
                                   rtol=1e-13)
    # the slab cut is on the particle centre, as for NGP
    thin = project(pos, w[:, 0], (50.0, 50.0, 50.0), L, **{**kw, "depth": 1e-9})
    assert thin.sum() == 0.0


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf])
def test_bad_smoothing_lengths(bad):
    pos = np.array([[50.0, 50.0, 50.0], [10.0, 80.0, 30.0]])
    h = np.array([1.0, bad])
    with pytest.raises(ValueError, match="smoothing_lengths"):
        project(pos, [1.0, 1.0], (50.0, 50.0, 50.0), L, width=4.0, scheme="sph",
                smoothing_lengths=h)


def test_smoothing_lengths_shape_and_dtype():
    pos = np.array([[50.0, 50.0, 50.0], [10.0, 80.0, 30.0]])
    for h in (np.ones(3), np.ones((2, 1)), np.array(["a", "b"])):
        with pytest.raises(ValueError, match="smoothing_lengths"):
            project(pos, [1.0, 1.0], (50.0, 50.0, 50.0), L, width=4.0, scheme="sph",
                    smoothing_lengths=h)


def test_large_kernels_conserve_mass_and_share_channels():
    """Calls whose kernels are mostly >= 16 pixels (the wide rows where the CPU has
    AVX-512): exact mass conservation inside, several channels as one."""
    rng = np.random.default_rng(5)
    n = 300
    H = rng.uniform(1.6, 3.0, n)                     # 16-30 pixels of 0.1
    uv = rng.uniform(-1.0, 1.0, (n, 2)) * (5.0 - H - 0.15)[:, None]    # wholly inside
    pos = np.column_stack([50.0 + uv, rng.uniform(40.0, 60.0, n)])
    w = rng.random((n, 2))
    kw = dict(width=10.0, npix=100, scheme="sph", smoothing_lengths=H, depth=20.0)
    stack = project(pos, w, (50.0, 50.0, 50.0), L, **kw)
    assert stack[0].sum() == pytest.approx(w[:, 0].sum(), rel=1e-12)
    for k in range(2):
        np.testing.assert_allclose(stack[k], project(pos, w[:, k], (50.0, 50.0, 50.0), L, **kw),
                                   rtol=1e-13)
    # crossing the edges: never more than the weight
    edge = project(pos + np.array([3.0, -2.5, 0.0]), w[:, 0], (50.0, 50.0, 50.0), L, **kw)
    assert edge.sum() <= w[:, 0].sum() * (1 + 1e-12)


@pytest.mark.parametrize("simd", ["portable", "avx2"])
def test_narrower_sph_paths_agree(simd):
    """CMC_SPH_SIMD (read at import) caps the SPH evaluator; all give the same image
    up to float32 rounding of the kernel."""
    import subprocess
    import sys

    code = (
        "import numpy as np, sys\n"
        "from cmcore import _kernels\n"
        "from cmcore.projection import project\n"
        "rng = np.random.default_rng(2)\n"
        "pos = rng.random((3000, 3)) * 100.0\n"
        "h = np.concatenate([rng.uniform(0.05, 0.8, 2000), rng.uniform(1.6, 4.0, 1000)])\n"
        "for sel in (slice(0, 2000), slice(2000, 3000), slice(None)):\n"
        "    img = project(pos[sel], np.ones(len(pos))[sel], (50.0, 50.0, 50.0), 100.0, width=10.0,\n"
        "                  npix=100, scheme='sph', smoothing_lengths=h[sel], depth=30.0)\n"
        "    np.save(sys.stdout.buffer, img)\n"
        "print(_kernels.sph_simd(), file=sys.stderr)\n"
    )
    import io
    import os

    imgs = {}
    for name in (simd, "auto"):
        env = dict(os.environ, CMC_SPH_SIMD=name)
        res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True)
        buf = io.BytesIO(res.stdout)
        imgs[name] = ([np.load(buf) for _ in range(3)], res.stderr.decode().strip())
    assert imgs[simd][1] in (simd, "portable")
    for a, b in zip(imgs[simd][0], imgs["auto"][0]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6 * a.max())
        assert a.sum() == pytest.approx(b.sum(), rel=1e-6)
