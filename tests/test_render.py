"""Rendering: analytic profiles, integrated Y, flux scaling, beam margin, FITS/WCS, CLI."""
from __future__ import annotations

import os

import h5py
import numpy as np
import pytest
from astropy import constants as const
from astropy import units as u
from astropy.cosmology import WMAP9

from cmcnn import cli
from cmcore import emission, observables, render
from cmcore.errors import InputError
from cmcore.halos import HaloCatalogue, write_halos
from cmcore.instrument import get_instrument
from cmcore.projection import los_basis
from cmcore.snapshot import ParticleData, Snapshot

Z = 0.05


def _snap(boxsize=100.0, a=1.0, **particles):
    return Snapshot(particles, boxsize, 0.7, a, 1 / a - 1, WMAP9, "synthetic", "mem.hdf5")


def _hot_gas(pos, rng, t=(1e7, 8e7)):
    n = len(pos)
    return ParticleData(pos, rng.uniform(1e8, 1e9, n), {
        "density": 10 ** rng.uniform(12, 15, n),
        "temperature": 10 ** rng.uniform(np.log10(t[0]), np.log10(t[1]), n),
        "metallicity": rng.uniform(0.001, 0.01, n),
        "smoothing_length": np.full(n, 0.05),
    })


def _plummer(n, a, centre, rng, r_max=40.0):
    """β-model with β = 5/3 (Plummer sphere): ρ ∝ (1 + r²/a²)^(-5/2), truncated at r_max."""
    u_max = (r_max**2 / (r_max**2 + a**2)) ** 1.5
    m = rng.uniform(0, u_max, n)
    r = a / np.sqrt(m ** (-2.0 / 3.0) - 1.0)
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1)[:, None]
    return centre + r[:, None] * d


def _pixel_radii(npix, width):
    c = -width / 2 + (np.arange(npix) + 0.5) * width / npix
    return np.hypot(*np.meshgrid(c, c))


def test_beta_model_projected_profile_and_aperture_mass():
    rng = np.random.default_rng(11)
    n, a, m_tot, centre = 200_000, 0.15, 1e13, np.array([50.0, 50.0, 50.0])
    stars = ParticleData(_plummer(n, a, centre, rng), np.full(n, m_tot / n))
    star = render.render_maps(_snap(stars=stars), centre, channels=["Star"], redshift=Z)["Star"]
    pix = observables.pixel_size_mpc(Z, 10.0)
    radii = _pixel_radii(120, 120 * pix)
    # projected β-model: Σ(R) = M a² / (π (a² + R²)²) [Msun/Mpc²] -> Msun/kpc²
    sigma = m_tot * a**2 / (np.pi * (a**2 + radii**2) ** 2) / 1e6
    edges = np.array([0.02, 0.04, 0.08, 0.15, 0.25, 0.4, 0.55])
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (radii >= lo) & (radii < hi)
        counts = star[sel].sum() * pix**2 * 1e6 / (m_tot / n)
        ratio = star[sel].mean() / sigma[sel].mean()
        assert abs(ratio - 1) < 4 / np.sqrt(counts) + 0.01, (lo, hi, ratio)
    for r_ap in (0.1, 0.3, 0.5):
        m_ap = star[radii < r_ap].sum() * (1e3 * pix) ** 2
        expected = m_tot * r_ap**2 / (a**2 + r_ap**2)
        assert m_ap == pytest.approx(expected, rel=0.01 + 3 / np.sqrt(n * expected / m_tot))


def test_snapshot_scale_factor_keeps_physical_size():
    rng = np.random.default_rng(2)
    pos = _plummer(20_000, 0.2, np.array([20.0, 20.0, 20.0]), rng, r_max=10.0)
    m = np.full(len(pos), 1e8)
    img1 = render.render_maps(_snap(40.0, stars=ParticleData(pos, m)), [20, 20, 20],
                              channels=["Star"], redshift=Z, depth=15.0)["Star"]
    img2 = render.render_maps(_snap(80.0, 0.5, stars=ParticleData(2 * pos, m)), [40, 40, 40],
                              channels=["Star"], redshift=Z, depth=30.0)["Star"]
    assert img1.sum() > 0
    assert np.allclose(img1, img2, rtol=1e-12, atol=0)


def test_integrated_y_equals_sum_of_upsilon_in_footprint_and_slab():
    rng = np.random.default_rng(3)
    box, centre = 60.0, np.array([1.0, 59.0, 30.0])   # near a corner: periodic wrap
    clump = _plummer(5000, 0.3, centre, rng, r_max=5.0) % box
    pos = np.vstack([clump, rng.uniform(0, box, (20_000, 3))])
    gas = _hot_gas(pos, rng)
    snap = _snap(box, gas=gas)
    los, az, depth = "diag", 0.3, 10.0
    y = render.render_maps(snap, centre, channels=["Ypar"], redshift=Z, los=los, azimuth=az,
                           depth=depth)["Ypar"]
    pix = observables.pixel_size_mpc(Z, 10.0)
    half = 60 * pix
    d = pos - centre
    d -= box * np.floor(d / box + 0.5)
    u, v, nvec = los_basis(los, az)
    inside = (np.abs(d @ nvec) <= depth) & (np.abs(d @ u) < half) & (np.abs(d @ v) < half)
    upsilon = observables.upsilon(gas)
    assert 0 < inside.sum() < len(pos)
    assert y.sum() * pix**2 == pytest.approx(upsilon[inside].sum(), rel=1e-10)


def test_fluxes_scale_as_inverse_luminosity_distance_squared():
    rng = np.random.default_rng(4)
    centre = np.array([50.0, 50.0, 50.0])
    gas = _hot_gas(_plummer(3000, 0.02, centre, rng, r_max=0.2), rng)
    snap = _snap(gas=gas)
    l_soft, l_bol = observables.xray_luminosities(gas)
    sig = observables.particle_signals(snap, ["Fxs", "Fxb", "Ypar"])
    totals = {}
    for z in (0.03, 0.07):
        maps = render.render_maps(snap, centre, channels=["Fxs", "Fxb"], redshift=z, signals=sig)
        d_l = WMAP9.luminosity_distance(z).to("cm").value
        assert maps["Fxb"].sum() == pytest.approx(l_bol.sum() / (4 * np.pi * d_l**2), rel=1e-10)
        assert maps["Fxs"].sum() == pytest.approx(l_soft.sum() / (4 * np.pi * d_l**2), rel=1e-10)
        totals[z] = maps["Fxb"].sum()
    d_l = WMAP9.luminosity_distance([0.03, 0.07]).value
    assert totals[0.03] / totals[0.07] == pytest.approx((d_l[1] / d_l[0]) ** 2, rel=1e-10)


def test_all_channels_from_one_geometry_and_schemes_conserve():
    rng = np.random.default_rng(5)
    centre = np.array([50.0, 50.0, 50.0])
    gas = _hot_gas(_plummer(4000, 0.1, centre, rng, r_max=0.4), rng)
    stars = ParticleData(_plummer(1000, 0.05, centre, rng, r_max=0.4), np.full(1000, 1e9),
                         {"smoothing_length": np.full(1000, 0.03)})
    snap = _snap(gas=gas, stars=stars)
    chans = ["Star", "Fxs", "Fxb", "Ypar"]
    maps = {s: render.render_maps(snap, centre, channels=chans, redshift=Z, scheme=s)
            for s in ("ngp", "cic", "sph")}
    for ch in chans:
        assert maps["ngp"][ch].shape == (120, 120)
        for s in ("cic", "sph"):
            assert maps[s][ch].sum() == pytest.approx(maps["ngp"][ch].sum(), rel=1e-9)
    assert np.all(maps["ngp"]["Fxs"] <= maps["ngp"]["Fxb"])


def test_beam_margin_brings_in_flux_from_outside_and_conserves_y():
    rng = np.random.default_rng(6)
    centre = np.array([50.0, 50.0, 50.0])
    pix = observables.pixel_size_mpc(Z, 10.0)
    blob = _plummer(500, 0.002, centre, rng, r_max=0.005)
    outside = blob + np.array([62.5 * pix, 0.0, 0.0])     # 2.5 pixels beyond the right edge
    inst = get_instrument("paper", noise={"Ypar": 0.0})
    for pos, inside in ((blob, True), (outside, False)):
        snap = _snap(gas=_hot_gas(pos, rng))
        ideal = render.render_cutout(snap, centre, "Ypar", redshift=Z, instrument="ideal").image
        obs = render.render_cutout(snap, centre, "Ypar", redshift=Z, instrument=inst).image
        if inside:
            assert obs.sum() == pytest.approx(ideal.sum(), rel=1e-6)
            assert obs.max() < 0.1 * ideal.max()
        else:
            assert ideal.sum() == 0 and obs.sum() > 0 and obs[:, -1].sum() > obs[:, -10].sum()


def test_cutout_noise_is_seeded():
    rng = np.random.default_rng(7)
    snap = _snap(gas=_hot_gas(rng.uniform(45, 55, (2000, 3)), rng))
    kw = dict(redshift=Z, instrument="paper", npix=40, fov_arcmin=40 / 6)
    a = render.render_cutout(snap, [50, 50, 50], "Fxs", seed=9, **kw).image
    b = render.render_cutout(snap, [50, 50, 50], "Fxs", seed=9, **kw).image
    c = render.render_cutout(snap, [50, 50, 50], "Fxs", seed=10, **kw).image
    assert a.shape == (40, 40) and np.array_equal(a, b) and not np.array_equal(a, c)


def test_write_fits_wcs_and_cards(tmp_path):
    from astropy.io import fits
    from astropy.wcs import WCS
    from astropy.wcs.utils import proj_plane_pixel_scales

    import cmcore

    rng = np.random.default_rng(8)
    snap = _snap(gas=_hot_gas(rng.uniform(49, 51, (500, 3)), rng))
    cut = render.render_cutout(snap, [50, 50, 50], "Ypar", redshift=Z, los="diag", azimuth=np.pi / 6,
                               seed=1, halo_id=12, m200=3e14, r200=1.4)
    out = tmp_path / "c.fits"
    render.write_fits(out, cut)
    render.write_fits(out, cut)  # overwriting is fine
    assert os.listdir(tmp_path) == ["c.fits"]
    with fits.open(out) as hdul:
        hdr, data = hdul[0].header, hdul[0].data
    assert np.array_equal(data, cut.image)
    w = WCS(hdr)
    assert np.allclose(proj_plane_pixel_scales(w) * 3600, [10.0, 10.0])
    ra, dec = w.wcs_pix2world([[59.5, 59.5]], 0)[0]
    assert (ra, dec) == pytest.approx(render.DEFAULT_SKY_POSITION)
    assert w.wcs_pix2world([[0, 59.5]], 0)[0][0] > 180  # RA grows to the left
    assert hdr["BUNIT"] == "" and hdr["CHANNEL"] == "Ypar" and hdr["HALO_ID"] == 12
    assert hdr["M200"] == 3e14 and hdr["R200"] == 1.4 and hdr["REDSHIFT"] == Z
    assert hdr["LOS"] == "diag" and hdr["AZIMUTH"] == pytest.approx(30.0)
    assert hdr["INSTRUME"] == "paper" and hdr["CMCVERS"] == cmcore.__version__
    assert hdr["BEAMFWHM"] == 1.4 and hdr["NOISE"] == 1e-8 and hdr["SEED"] == 1
    flux = render.render_cutout(snap, [50, 50, 50], "Fxb", redshift=Z, instrument="ideal")
    render.write_fits(tmp_path / "f.fits", flux)
    assert fits.getheader(tmp_path / "f.fits")["BUNIT"] == "erg s-1 cm-2"


def test_render_input_errors():
    rng = np.random.default_rng(9)
    gas = _hot_gas(rng.uniform(0, 10, (100, 3)), rng)
    snap = _snap(10.0, gas=gas)
    with pytest.raises(InputError, match="Star needs stars particles"):
        render.render_maps(snap, [5, 5, 5], channels=["Star"], redshift=Z)
    stars = ParticleData(rng.uniform(0, 10, (10, 3)), np.ones(10))
    with pytest.raises(InputError, match="smoothing lengths"):
        render.render_maps(_snap(10.0, stars=stars), [5, 5, 5], channels=["Star"], redshift=Z, scheme="sph")
    with pytest.raises(InputError, match="redshift"):
        render.render_maps(snap, [5, 5, 5], channels=["Ypar"], redshift=0.0)
    with pytest.raises(InputError, match="npix"):
        render.render_maps(snap, [5, 5, 5], channels=["Ypar"], redshift=Z, npix=0)
    # the slab never exceeds half the box
    assert render.slab_depth(50.0, 10.0) == 5.0


# ---------------------------------------------------------------- real snapshot + CLI

GADGET4 = "gadget4_G2-lcdm-gas_snapshot_004.hdf5"


@pytest.fixture
def real(shared_file, tmp_path):
    """The shared GADGET-4 box, its haloes found by cmc, and a catalogue file."""
    from cmcore.halos import find_halos
    from cmcore.readers import read_snapshot

    path = shared_file(GADGET4)
    with pytest.warns(UserWarning, match="ElectronAbundance"):
        snap = read_snapshot(path, particle_types=["gas", "dm"], fields=[],
                             optional_fields=["density", "temperature", "potential"])
    cat = find_halos(snap)
    halos = tmp_path / "halos.h5"
    write_halos(halos, cat)
    return path, snap, cat, halos


def test_real_gadget4_cluster_is_physically_sensible(real):
    path, snap, cat, _ = real
    centre = cat.centre[0]
    with pytest.warns(UserWarning, match="metallicity"):
        maps = render.render_maps(snap, centre, channels=["Fxs", "Fxb", "Ypar"], redshift=Z)
    # ~1.2e14 Msun adiabatic cluster (M200 checked against the raw file in test_halos.py)
    assert 1e14 < cat.m200[0] < 1.5e14
    pix = observables.pixel_size_mpc(Z, 10.0)
    # independent of cmc's readers: the raw file in its own units (kpc/h, 1e10 Msun/h,
    # (km/s)^2), converted here by hand; T of fully ionised primordial gas (mu = 0.588)
    with h5py.File(path, "r") as f:
        h = float(f["Parameters"].attrs["HubbleParam"])
        pos = f["PartType0/Coordinates"][:] * 1e-3 / h  # Mpc
        m_g = f["Header"].attrs["MassTable"][0] * 1e10 / h * const.M_sun.cgs.value  # g
        rho = f["PartType0/Density"][:] * 1e10 / h * const.M_sun.cgs.value / (1e-3 / h * u.Mpc).to(u.cm).value ** 3
        energy = f["PartType0/InternalEnergy"][:] * 1e10  # (cm/s)^2
        box = float(f["Header"].attrs["BoxSize"]) * 1e-3 / h
    x = 0.76
    mu = 4 / (3 + 5 * x)  # fully ionised H + He
    temp = 2 / 3 * mu * const.m_p.cgs.value * energy / const.k_B.cgs.value
    d = pos - centre
    d -= box * np.round(d / box)
    inside = np.all(np.abs(d[:, :2]) < 60 * pix, axis=1)
    n_e = m_g * (1 + x) / 2 / const.m_p.cgs.value  # electrons per particle
    y_expected = np.sum((const.sigma_T.cgs.value * const.k_B.cgs.value / (const.m_e * const.c**2).cgs.value)
                        * temp[inside] * n_e) / u.Mpc.to(u.cm) ** 2
    assert maps["Ypar"].sum() * pix**2 == pytest.approx(y_expected, rel=2e-3)
    n_h = x * rho / const.m_p.cgs.value
    _, eps_bol = emission.emissivities(n_h, temp, 0.3 * emission.Z_SOLAR, 1 + (1 - x) / (2 * x))
    hot = inside & (temp > observables.T_MIN_XRAY)
    l_bol = np.sum(eps_bol[hot] * m_g / rho[hot])
    d_l = WMAP9.luminosity_distance(Z).to(u.cm).value
    assert maps["Fxb"].sum() == pytest.approx(l_bol / (4 * np.pi * d_l**2), rel=2e-3)
    assert 0 < maps["Fxs"].sum() < maps["Fxb"].sum()


def test_cli_render_real_snapshot(real, tmp_path, capsys):
    from astropy.io import fits

    path, _, cat, halos = real
    out = tmp_path / "y.fits"
    rc = cli.main([
        "render", str(path), "--halos", str(halos), "--halo-id", str(cat.halo_id[0]), "--channel", "Ypar",
        "--los", "x", "--z", "0.05", "--azimuth", "30", "--seed", "3", "--out", str(out),
    ])
    assert rc == 0
    assert "Y =" in capsys.readouterr().out
    hdr = fits.getheader(out)
    assert hdr["HALO_ID"] == cat.halo_id[0] and hdr["M200"] == pytest.approx(cat.m200[0])
    assert hdr["AZIMUTH"] == pytest.approx(30.0) and hdr["LOS"] == "x" and hdr["NAXIS1"] == 120


@pytest.mark.parametrize("argv, message", [
    (["--halo-id", "99999", "--channel", "Ypar"], "halo id 99999 is not in the catalogue"),
    (["--halo-id", "0", "--channel", "Star"], "channel Star: .*no stars particles"),
    (["--halo-id", "0", "--channel", "Ypar", "--noise", "-1"], "noise_rms must be finite and >= 0"),
])
def test_cli_render_user_errors(real, tmp_path, capsys, argv, message):
    import re

    path, _, _, halos = real
    rc = cli.main(["render", str(path), "--halos", str(halos), "--out", str(tmp_path / "o.fits"), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert re.search(message, err[-1]) and err[-1].startswith("cmc render: error:")
    assert "Traceback" not in "\n".join(err)
    assert not (tmp_path / "o.fits").exists()


def test_cli_render_missing_files_and_wrong_catalogue(shared_file, tmp_path, capsys):
    path = shared_file(GADGET4)
    base = ["--halo-id", "0", "--channel", "Ypar", "--out", str(tmp_path / "o.fits")]
    assert cli.main(["render", str(tmp_path / "nope.hdf5"), "--halos", str(tmp_path / "nope.h5"), *base]) == 2
    assert "no such file" in capsys.readouterr().err
    other = HaloCatalogue([0], [[1.0, 1.0, 1.0]], [1e14], [1.0], [100], boxsize=50.0, redshift=0.0)
    write_halos(tmp_path / "other.h5", other)
    assert cli.main(["render", str(path), "--halos", str(tmp_path / "other.h5"), *base]) == 2
    assert "not the catalogue of this snapshot" in capsys.readouterr().err


def test_render_observed_all_channels_one_geometry():
    from cmcore.cellindex import CellIndex

    rng = np.random.default_rng(12)
    centre = np.array([50.0, 50.0, 50.0])
    gas = _hot_gas(np.vstack([_plummer(3000, 0.2, centre, rng, r_max=3.0), rng.uniform(0, 100, (5000, 3))]), rng)
    stars = ParticleData(_plummer(800, 0.1, centre, rng, r_max=2.0), np.full(800, 1e9))
    snap = _snap(gas=gas, stars=stars)
    chans = ["Star", "Fxs", "Fxb", "Ypar"]
    kw = dict(channels=chans, redshift=Z, los="y", azimuth=1.0, npix=60, fov_arcmin=10.0)
    maps = render.render_maps(snap, centre, **kw)
    idx = {"gas": CellIndex(gas.positions, 100.0), "stars": CellIndex(stars.positions, 100.0)}
    clean, ideal = render.render_observed(snap, centre, instrument="ideal", indexes=idx, **kw)
    for ch in chans:
        assert np.allclose(clean[ch], maps[ch], rtol=1e-12, atol=0)
        assert np.allclose(ideal[ch], maps[ch], rtol=1e-12, atol=0) and maps[ch].max() > 0
    seeds = {"Star": 1, "Fxs": 2, "Fxb": 3, "Ypar": 4}
    _, obs = render.render_observed(snap, centre, instrument="paper", rng=seeds, **kw)
    _, alone = render.render_observed(snap, centre, instrument="paper", rng={"Ypar": 4},
                                      **{**kw, "channels": ["Ypar"]})
    assert np.array_equal(obs["Ypar"], alone["Ypar"])   # noise depends on its own seed only
    assert (obs["Fxs"] - clean["Fxs"]).std() > 1e-16   # paper noise 9e-16 before the 4" beam
