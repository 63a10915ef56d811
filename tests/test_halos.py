"""Tests of halo catalogues, spherical overdensity and the halo finder (cmcore.halos)."""
from __future__ import annotations

import os
import warnings

import h5py
import numpy as np
import pytest
from astropy import constants as const
from astropy import units as u
from astropy.cosmology import FlatLambdaCDM
from scipy.spatial import cKDTree

from cmcnn.cli import main
from cmcore.errors import FileFormatError, InputError
from cmcore.halos import (
    HaloCatalogue,
    critical_density_comoving,
    find_halos,
    read_halos,
    spherical_overdensity,
    write_halos,
)
from cmcore.readers.units import MPC_CM, MSUN_G
from cmcore.snapshot import ParticleData, Snapshot

COSMO = FlatLambdaCDM(H0=70.0, Om0=0.3, Ob0=0.045)
G4 = "gadget4_G2-lcdm-gas_snapshot_004.hdf5"


# ------------------------------------------------------------------ helpers
def _nfw_mass_fraction(x):
    return np.log1p(x) - x / (1.0 + x)


def nfw_halo(rng, m200, c, r200, x_max=2.0, m_particle=5e10):
    """NFW particle halo out to x_max·r200 about the origin, radii stratified in mass.

    Radii are the mass quantiles of the profile (so M(<r) follows the profile to
    one particle), directions are random.  Returns (positions, n_particles).
    """
    rs = r200 / c
    m_total = m200 * _nfw_mass_fraction(c * x_max) / _nfw_mass_fraction(c)
    n = int(round(m_total / m_particle))
    q = (np.arange(n) + 0.5) / n * _nfw_mass_fraction(c * x_max)
    grid = np.linspace(0, c * x_max, 200001)
    radii = np.interp(q, _nfw_mass_fraction(grid), grid) * rs
    v = rng.normal(size=(n, 3))
    return radii[:, None] * v / np.linalg.norm(v, axis=1)[:, None]


def r200_of(m200, rho_crit):
    return (3 * m200 / (4 * np.pi * 200 * rho_crit)) ** (1 / 3)


def planted_snapshot(redshift=0.0, seed=0, box=40.0, potential=False):
    """Three NFW haloes in a uniform dark-matter background (particle mass 5e10 Msun).

    Returns the snapshot (comoving positions) and the haloes' (centres, M200, physical r200).
    """
    rng = np.random.default_rng(seed)
    a = 1.0 / (1.0 + redshift)
    rho_c = COSMO.critical_density(redshift).to("Msun / Mpc3").value  # physical
    masses = np.array([1e15, 4e14, 1.5e14])
    centres = np.array([[10.0, 10.0, 10.0], [30.0, 25.0, 8.0], [0.3, 39.5, 30.0]])  # last wraps
    parts = []
    for m, centre in zip(masses, centres):
        r200 = r200_of(m, rho_c)  # physical
        parts.append(nfw_halo(rng, m, 5.0, r200) / a + centre)  # comoving
    mean_matter = COSMO.Om0 * COSMO.critical_density0.to("Msun / Mpc3").value  # per comoving Mpc^3
    n_bg = int(mean_matter * box**3 / 5e10 * 0.2)  # a thin background: fast, still periodic
    parts.append(rng.uniform(0, box, (n_bg, 3)))
    pos = np.mod(np.concatenate(parts), box)
    fields = {}
    if potential:
        # a potential whose minimum is the particle closest to each planted centre
        d = pos[:, None, :] - centres[None]
        d -= box * np.round(d / box)
        fields["potential"] = -1.0 / (np.linalg.norm(d, axis=2).min(axis=1) + 1e-3)
    dm = ParticleData(pos, np.full(len(pos), 5e10), fields)
    snap = Snapshot({"dm": dm}, boxsize=box, h=0.7, scale_factor=a, redshift=redshift,
                    cosmology=COSMO, flavour="synthetic", path="planted")
    return snap, centres, masses, np.array([r200_of(m, rho_c) for m in masses])


def _catalogue(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return HaloCatalogue(
        halo_id=np.arange(10, 10 + n), centre=rng.uniform(0, 50, (n, 3)),
        m200=10 ** rng.uniform(13, 15, n), r200=rng.uniform(0.3, 2, n),
        n_particles=rng.integers(100, 1000, n), boxsize=50.0, redshift=0.1, cosmology=COSMO,
        source="unit test",
    )


# ------------------------------------------------------------------ catalogue I/O
def test_cmc_halos_round_trip_is_sorted_and_atomic(tmp_path):
    cat = _catalogue()
    assert np.all(np.diff(cat.m200) <= 0)
    write_halos(tmp_path / "h.h5", cat)
    assert [p.name for p in tmp_path.iterdir()] == ["h.h5"]  # no temporary left behind
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "h.h5").stat().st_mode & 0o777 == 0o666 & ~umask
    back = read_halos(tmp_path / "h.h5")
    for name in ("halo_id", "centre", "m200", "r200", "n_particles"):
        np.testing.assert_array_equal(getattr(back, name), getattr(cat, name))
    assert back.cosmology == COSMO
    assert (back.boxsize, back.redshift, back.source) == (50.0, 0.1, "unit test")
    with h5py.File(tmp_path / "h.h5") as f:
        assert f.attrs["format"] == "cmc-halos" and f.attrs["format_version"] == 1
        assert f["m200"].attrs["units"] == "Msun" and "comoving" in f["r200"].attrs["units"]
        assert f["halo_id"].dtype == np.int64 and f["centre"].shape == (5, 3)


def test_halo_id_lookup():
    cat = _catalogue()
    assert cat.halo_id[cat.index(12)] == 12
    with pytest.raises(InputError, match="halo id 99 is not in the catalogue"):
        cat.index(99)


def test_read_halos_bad_input(tmp_path):
    with pytest.raises(FileFormatError, match="no such file"):
        read_halos(tmp_path / "absent.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("x", data=[1])
    with pytest.raises(FileFormatError, match="not a halo catalogue"):
        read_halos(tmp_path / "other.h5")


def test_read_eagle_subfind_catalogue_converts_h(tmp_path):
    h, a = 0.7, 0.5
    m200 = np.array([2e14, 0.0, 5e13])  # Msun; the empty group is dropped
    r200 = np.array([1.2, 0.0, 0.7])  # comoving Mpc
    pos = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    with h5py.File(tmp_path / "eagle_subfind_tab_028.0.hdf5", "w") as f:
        f.create_group("Header").attrs.update({"HubbleParam": h, "ExpansionFactor": a, "Redshift": 1 / a - 1,
                                               "BoxSize": 25.0 * h, "Omega0": 0.3, "OmegaLambda": 0.7,
                                               "OmegaBaryon": 0.045, "NumFilesPerSnapshot": 1})
        for name, data, cgs, aexp, hexp in (
            ("GroupCentreOfPotential", pos * h, MPC_CM, 1, -1),
            ("Group_M_Crit200", m200 * h / 1e10, 1e10 * MSUN_G, 0, -1),
            ("Group_R_Crit200", r200 * h, MPC_CM, 1, -1),
        ):
            d = f.create_dataset(f"FOF/{name}", data=data)
            d.attrs.update({"CGSConversionFactor": cgs, "aexp-scale-exponent": aexp, "h-scale-exponent": hexp})
        f["FOF/GroupLength"] = np.array([500, 3, 200])
    cat = read_halos(tmp_path / "eagle_subfind_tab_028.0.hdf5")
    np.testing.assert_allclose(cat.m200, [2e14, 5e13], rtol=1e-12)
    np.testing.assert_allclose(cat.r200, [1.2, 0.7], rtol=1e-12)
    np.testing.assert_allclose(cat.centre, pos[[0, 2]], rtol=1e-12)
    np.testing.assert_array_equal(cat.halo_id, [0, 2])
    np.testing.assert_array_equal(cat.n_particles, [500, 200])
    assert cat.boxsize == pytest.approx(25.0) and cat.redshift == pytest.approx(1.0)


def test_read_gadget4_group_catalogue_with_parameters_units(tmp_path):
    h = 0.7
    with h5py.File(tmp_path / "fof_subhalo_tab_004.hdf5", "w") as f:
        f.create_group("Header").attrs.update({"BoxSize": 50000.0, "Time": 1.0, "Redshift": 0.0})
        f.create_group("Parameters").attrs.update({
            "HubbleParam": h, "Omega0": 0.3, "OmegaLambda": 0.7, "OmegaBaryon": 0.04,
            "UnitLength_in_cm": 3.085678e21, "UnitMass_in_g": 1.989e43})
        f["Group/GroupPos"] = np.array([[7000.0, 700.0, 70.0]])  # ckpc/h
        f["Group/Group_M_Crit200"] = np.array([17.5])  # 1e10 Msun/h
        f["Group/Group_R_Crit200"] = np.array([700.0])  # ckpc/h
        f["Group/GroupLen"] = np.array([1234])
    cat = read_halos(tmp_path / "fof_subhalo_tab_004.hdf5")
    kpc = 3.085678e21 / MPC_CM
    np.testing.assert_allclose(cat.centre[0], np.array([10000.0, 1000.0, 100.0]) * kpc, rtol=1e-12)
    np.testing.assert_allclose(cat.m200, 17.5e10 / h * 1.989e43 / 1e10 / MSUN_G, rtol=1e-12)
    np.testing.assert_allclose(cat.r200, 1000.0 * kpc, rtol=1e-12)
    assert cat.boxsize == pytest.approx(50000 / h * kpc)


# ------------------------------------------------------------------ spherical overdensity
def test_spherical_overdensity_is_exact_to_the_particle():
    rng = np.random.default_rng(3)
    box = 30.0
    rho_c = critical_density_comoving(COSMO, 0.0)
    clumps = [nfw_halo(rng, m, 4.0, r200_of(m, rho_c), m_particle=2e10) + c
              for m, c in ((3e14, (29.5, 0.2, 15.0)), (8e13, (10.0, 10.0, 10.0)))]
    gas = rng.uniform(0, box, (20000, 3))
    positions = [np.mod(np.concatenate(clumps), box), gas]
    masses = [np.full(len(positions[0]), 2e10), rng.uniform(1e9, 3e9, len(gas))]
    centres = np.array([[29.5, 0.2, 15.0], [10.0, 10.0, 10.0], [20.0, 20.0, 20.0]])
    m200, r200, n = spherical_overdensity(positions, masses, centres, box, rho_c, return_counts=True)
    allpos, allm = np.concatenate(positions), np.concatenate(masses)
    for i, centre in enumerate(centres):
        d = allpos - centre
        d -= box * np.round(d / box)
        r = np.linalg.norm(d, axis=1)
        inside = r <= r200[i]
        if m200[i] == 0:  # the empty field: no particle dense enough about it
            continue
        assert allm[inside].sum() == pytest.approx(m200[i], rel=1e-12)
        assert inside.sum() == n[i]
        assert m200[i] / (4 / 3 * np.pi * r200[i] ** 3) == pytest.approx(200 * rho_c, rel=1e-12)
        assert np.sort(r[~inside])[0] > r200[i]  # next particle out lies beyond r200
    assert m200[0] == pytest.approx(3e14, rel=0.03)
    assert m200[1] == pytest.approx(8e13, rel=0.03)
    # translation invariance through the periodic boundary
    shift = np.array([7.3, -12.1, 4.4])
    m2, r2 = spherical_overdensity([p + shift for p in positions], masses, centres + shift, box, rho_c)
    np.testing.assert_allclose(m2, m200, rtol=1e-12)


def test_spherical_overdensity_refuses_a_box_denser_than_delta():
    pos = np.random.default_rng(0).uniform(0, 10, (5000, 3))
    with pytest.raises(InputError, match="half the box"):
        spherical_overdensity([pos], [np.full(5000, 1e13)], [5, 5, 5], 10.0, 1.0)


# ------------------------------------------------------------------ halo finder
@pytest.mark.parametrize("redshift", [0.0, 1.0])
def test_find_halos_recovers_planted_nfw_m200(redshift):
    snap, centres, masses, r200_phys = planted_snapshot(redshift)
    cat = find_halos(snap)
    assert len(cat) >= 3
    for centre, m, r in zip(centres, masses, r200_phys):
        d = cat.centre - centre
        d -= snap.boxsize * np.round(d / snap.boxsize)
        i = np.argmin(np.linalg.norm(d, axis=1))
        assert np.linalg.norm(d[i]) < 0.05 * r / snap.scale_factor
        assert cat.m200[i] == pytest.approx(m, rel=0.03)
        assert cat.r200[i] * snap.scale_factor == pytest.approx(r, rel=0.01)  # comoving -> physical


def test_find_halos_centres_on_the_main_peak_not_a_denser_subhalo():
    """A compact subhalo inside the main halo's FoF group has the densest particle."""
    rng = np.random.default_rng(7)
    box = 30.0
    rho_c = critical_density_comoving(COSMO, 0.0)
    main_r200 = r200_of(5e14, rho_c)
    main = nfw_halo(rng, 5e14, 4.0, main_r200) + 15.0
    sub_centre = 15.0 + np.array([0.6 * main_r200, 0.0, 0.0])
    sub = nfw_halo(rng, 2e13, 40.0, r200_of(2e13, rho_c), x_max=0.5) + sub_centre
    pos = np.concatenate([main, sub, rng.uniform(0, box, (20000, 3))])
    snap = Snapshot({"dm": ParticleData(pos, np.full(len(pos), 5e10))}, box, 0.7, 1.0, 0.0,
                    COSMO, "synthetic", "subhalo")
    r_32 = cKDTree(np.mod(pos, box), boxsize=box).query(np.mod(pos, box), k=33)[0][:, -1]
    assert np.linalg.norm(pos[np.argmin(r_32)] - sub_centre) < 0.05  # the densest particle is the subhalo's
    cat = find_halos(snap)
    assert np.linalg.norm(cat.centre[0] - 15.0) < 0.05 * main_r200
    assert cat.m200[0] == pytest.approx(5e14 + 2e13 * _nfw_mass_fraction(20.0) / _nfw_mass_fraction(40.0), rel=0.03)


def test_find_halos_uses_minimum_potential_as_centre():
    snap, centres, _, _ = planted_snapshot(potential=True, seed=4)
    cat = find_halos(snap)
    pos = snap.dm.positions
    for centre in centres:
        d = pos - centre
        d -= snap.boxsize * np.round(d / snap.boxsize)
        nearest = pos[np.argmin(np.linalg.norm(d, axis=1))]
        assert np.any(np.all(np.isclose(cat.centre, nearest), axis=1))


def test_find_halos_needs_dark_matter_and_groups():
    gas_only = Snapshot({"gas": ParticleData(np.zeros((3, 3)), np.ones(3))}, 10.0, 0.7, 1.0, 0.0,
                        COSMO, "synthetic", "x")
    with pytest.raises(InputError, match="no dm particles"):
        find_halos(gas_only)
    rng = np.random.default_rng(0)
    sparse = Snapshot({"dm": ParticleData(rng.uniform(0, 10, (1000, 3)), np.full(1000, 1e10))},
                      10.0, 0.7, 1.0, 0.0, COSMO, "synthetic", "x")
    with pytest.raises(InputError, match="no friends-of-friends group"):
        find_halos(sparse)


# ------------------------------------------------------------------ cmc halos
def test_cmc_halos_on_the_real_gadget4_snapshot(shared_file, tmp_path, capsys):
    out = tmp_path / "halos.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["halos", str(shared_file(G4)), "--out", str(out), "--no-progress"]) == 0
    cat = read_halos(out)
    # independent of cmc's readers: the raw file in its own units (kpc/h, 1e10 Msun/h, h = 0.7)
    with h5py.File(shared_file(G4), "r") as f:
        h = float(f["Parameters"].attrs["HubbleParam"])
        table = f["Header"].attrs["MassTable"] * 1e10 / h  # Msun
        pos = np.concatenate([f[f"PartType{i}/Coordinates"][:] for i in (0, 1)]) * 1e-3 / h  # Mpc
        mass = np.repeat(table, [f[f"PartType{i}/Coordinates"].shape[0] for i in (0, 1)])
        box = float(f["Header"].attrs["BoxSize"]) * 1e-3 / h
    rho200 = 200 * float((3 * (70 * u.km / u.s / u.Mpc) ** 2 / (8 * np.pi * const.G)).to(u.Msun / u.Mpc**3).value)
    d = pos - cat.centre[0]
    d -= box * np.round(d / box)
    r = np.sort(np.linalg.norm(d, axis=1))
    order = np.argsort(np.linalg.norm(d, axis=1))
    enclosed = np.cumsum(mass[order])
    dense = np.nonzero(enclosed / (4 / 3 * np.pi * r**3) >= rho200)[0]
    m200, r200 = enclosed[dense[-1]], r[dense[-1]]
    # to within one particle (cmc puts R200 where the mean density crosses 200 rho_c, between
    # particles), in Msun and Mpc: a factor-of-h error would be 0.7x or 1.4x
    assert cat.m200[0] == pytest.approx(m200, rel=2e-3)
    assert cat.r200[0] == pytest.approx(r200, rel=2e-3)
    assert cat.m200[0] == pytest.approx(rho200 * 4 / 3 * np.pi * cat.r200[0] ** 3, rel=1e-9)
    # largest FoF group ~2.5e14 Msun/h (data README): its M200c is below that
    assert 5e13 < cat.m200[0] * h < 2.5e14
    assert len(cat) > 20 and cat.boxsize == pytest.approx(box)
    assert "largest M200" in capsys.readouterr().out


def test_cmc_halos_errors_are_one_line(tmp_path, capsys):
    assert main(["halos", str(tmp_path / "absent.hdf5"), "--out", str(tmp_path / "h.h5"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"cmc halos: error: {tmp_path / 'absent.hdf5'}: no such file"]


@pytest.mark.slow
def test_find_halos_recovers_the_synthetic_universe_catalogue(tmp_path):
    """cmc's own synthetic universe (``tiny``): every target halo found to 3 per cent."""
    from cmcore.readers import read_snapshot
    from cmcore.synth.universe import generate

    result = generate("tiny", seed=1, out=tmp_path)
    truth = read_halos(result.halos)
    snap = read_snapshot(result.snapshot, fields=[])
    found = find_halos(snap)
    for centre, m200 in zip(truth.centre, truth.m200):
        d = found.centre - centre
        d -= snap.boxsize * np.round(d / snap.boxsize)
        j = np.argmin(np.einsum("ij,ij->i", d, d))
        assert found.m200[j] == pytest.approx(m200, rel=0.03)


def test_find_halos_from_single_precision_positions_finds_the_same_haloes(tiny_universe):
    """``read_snapshot(single_precision_positions=True)`` (cmc halos --single-precision): float32
    rounding (~6e-8 of the box) moves M200 by at most a particle or two and the centres by ~1 kpc."""
    from cmcore.readers import read_snapshot

    full = read_snapshot(tiny_universe.snapshot, fields=[])
    half = read_snapshot(tiny_universe.snapshot, fields=[], single_precision_positions=True)
    for kind in full.particles:
        assert half.particles[kind].positions.dtype == np.float32
        np.testing.assert_allclose(half.particles[kind].positions, full.particles[kind].positions,
                                   rtol=0, atol=1e-7 * full.boxsize)
        np.testing.assert_array_equal(half.particles[kind].masses, full.particles[kind].masses)
    a, b = find_halos(full), find_halos(half)
    np.testing.assert_array_equal(a.halo_id, b.halo_id)
    np.testing.assert_allclose(b.m200, a.m200, rtol=1e-3)
    assert np.abs(b.centre - a.centre).max() < 0.005  # Mpc


def test_a_catalogue_refuses_the_snapshot_of_another_box():
    from cmcore.errors import InputError
    from cmcore.halos import HaloCatalogue

    cat = HaloCatalogue(halo_id=np.array([1]), centre=np.zeros((1, 3)), m200=np.array([1e14]),
                        r200=np.array([1.0]), n_particles=np.array([100]), boxsize=100.0, redshift=0.0)
    cat.check_snapshot(100.0 * (1 + 1e-6))
    with pytest.raises(InputError, match="not the catalogue of this snapshot"):
        cat.check_snapshot(150.0)
