"""Relations measured back in bounded memory (``cmcore.synth.measure``): the chunked
passes give what the whole snapshot in memory gives, however the snapshot is cut."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from cmcnn import cli
from cmcore.errors import InputError
from cmcore.halos import read_halos, spherical_overdensity, write_halos
from cmcore.observables import xray_luminosities
from cmcore.readers import read_snapshot
from cmcore.render import render_maps
from cmcore.synth.measure import image_luminosities, measure
from cmcore.synth.relations import compton_y_per_particle
from cmcore.synth.universe import decode_ids

#: Rows per chunk small enough that every type of the tiny universe is cut into
#: several chunks and most haloes straddle a cut.
SMALL_CHUNK = 37_000


@pytest.fixture(scope="module")
def whole(tiny_universe):
    """The tiny universe's snapshot in memory and its catalogue."""
    return read_snapshot(tiny_universe.snapshot), read_halos(tiny_universe.halos)


@pytest.fixture(scope="module")
def chunked(tiny_universe):
    return measure(tiny_universe.snapshot, tiny_universe.halos, chunk_rows=SMALL_CHUNK)


def test_so_masses_are_those_of_the_whole_snapshot_exactly(whole, chunked):
    snap, cat = whole
    types = list(snap.particles.values())
    rho_c = float(snap.cosmology.critical_density(snap.redshift).to("Msun / Mpc3").value)
    m500, r500 = spherical_overdensity([p.positions for p in types], [p.masses for p in types],
                                       cat.centre, snap.boxsize, rho_c, delta=500.0)
    # same particles, same order, same rule: bit for bit
    assert np.array_equal(chunked["m500"], m500) and np.array_equal(chunked["r500"], r500)
    assert np.all(chunked["r500"] < chunked["r200"])


def test_sums_are_those_of_the_whole_snapshot(tiny_universe, whole, chunked):
    snap, cat = whole
    gas, stars = snap.particles["gas"], snap.particles["stars"]
    l_soft, l_bol = xray_luminosities(gas)
    with h5py.File(tiny_universe.snapshot, "r") as f:
        uid, _, index = decode_ids(f["PartType4/ParticleIDs"][:])
    expect = {k: np.zeros(len(cat)) for k in ("y500", "lx_soft500", "lx_bol500", "m_gas500",
                                               "mstar500", "mstar_bcg_icl500", "mstar_central")}

    def dist(p, c):
        d = p.positions - c
        d -= snap.boxsize * np.round(d / snap.boxsize)
        return np.linalg.norm(d, axis=1)

    for i, (c, r5) in enumerate(zip(cat.centre, chunked["r500"])):
        g = dist(gas, c) <= r5
        expect["y500"][i] = compton_y_per_particle(gas.masses[g], gas["temperature"][g]).sum()
        expect["lx_soft500"][i], expect["lx_bol500"][i] = l_soft[g].sum(), l_bol[g].sum()
        expect["m_gas500"][i] = gas.masses[g].sum()
        r = dist(stars, c)
        expect["mstar500"][i] = stars.masses[r <= r5].sum()
        expect["mstar_central"][i] = stars.masses[r <= 0.05].sum()
        own = (r <= r5) & (uid == cat.halo_id[i]) & ((index >> 16) < 2)
        expect["mstar_bcg_icl500"][i] = stars.masses[own].sum()
    assert np.all(expect["y500"] > 0) and np.all(expect["lx_soft500"] > 0)
    for key, value in expect.items():
        np.testing.assert_allclose(chunked[key], value, rtol=1e-12, err_msg=key)


def test_results_do_not_depend_on_the_chunk_size(tiny_universe, chunked):
    one = measure(tiny_universe.snapshot, tiny_universe.halos, chunk_rows=10**9)
    for key, value in one.items():
        np.testing.assert_allclose(chunked[key], value, rtol=1e-12, equal_nan=True, err_msg=key)


def test_a_sphere_too_small_for_r500_is_gathered_again(tiny_universe, tmp_path, chunked):
    cat = read_halos(tiny_universe.halos)
    cat.r200 = cat.r200 * 0.3  # a catalogue whose R200 is not from these particles: R500 lies beyond
    halos = tmp_path / "small_r200.h5"
    write_halos(halos, cat)
    got = measure(tiny_universe.snapshot, halos)
    assert np.any(chunked["r500"] > cat.r200)  # so some haloes needed a second pass
    assert np.array_equal(got["m500"], chunked["m500"])
    np.testing.assert_allclose(got["y500"], chunked["y500"], rtol=1e-12)


def test_bad_chunk_size_is_refused(tiny_universe):
    with pytest.raises(InputError, match="chunk_rows"):
        measure(tiny_universe.snapshot, tiny_universe.halos, chunk_rows=0)


def test_image_luminosities_are_those_of_images_of_the_whole_snapshot(tiny_universe, whole, chunked):
    snap, cat = whole
    n, npix, z = 4, 60, 0.05
    got = image_luminosities(tiny_universe.snapshot, cat.centre[:n], chunked["r500"][:n], redshift=z,
                             npix=npix, chunk_rows=SMALL_CHUNK)
    from astropy import units as u

    from cmcore.observables import default_cosmology

    cosmo = default_cosmology()
    d_a = cosmo.angular_diameter_distance(z).to_value(u.Mpc)
    four_pi_dl2 = 4 * np.pi * cosmo.luminosity_distance(z).to_value(u.cm) ** 2
    grid = (np.arange(npix) + 0.5) / npix - 0.5
    inside = np.hypot(*np.meshgrid(grid, grid)) <= 1 / 2.4
    for i in range(n):
        fov = np.degrees(2.4 * chunked["r500"][i] / d_a) * 60
        image = render_maps(snap, cat.centre[i], channels=["Fxs"], redshift=z, npix=npix, fov_arcmin=fov)
        assert got[i] == pytest.approx(image["Fxs"][inside].sum() * four_pi_dl2, rel=1e-10)
    assert np.all(got > 0.5 * chunked["lx_soft500"][:n])  # the projected R500 holds the sphere's gas


def test_image_luminosities_refuse_an_oblique_line_of_sight(tiny_universe):
    with pytest.raises(InputError, match="axis line of sight"):
        image_luminosities(tiny_universe.snapshot, [[1.0, 1.0, 1.0]], [0.5], los="diag")


@pytest.mark.slow
def test_synth_plots_redraws_from_the_measured_file(tiny_universe, tmp_path, monkeypatch, capsys):
    measured = tmp_path / "measured.npz"
    args = ["synth-plots", str(tiny_universe.out), "--measured", str(measured), "--no-progress", "--no-images"]
    assert cli.main([*args, "--out", str(tmp_path / "a.png")]) == 0
    first = json.loads(tiny_universe.meta.read_text())["literature_offsets"]
    printed = capsys.readouterr().out
    with np.load(measured) as f:
        assert {"m500", "y500", "lx_soft500"} <= set(f.files)

    def no_snapshot(*a, **k):
        raise AssertionError("the snapshot was read again")

    monkeypatch.setattr("cmcore.synth.plots.measure", no_snapshot)
    monkeypatch.setattr("cmcore.synth.plots.image_luminosities", no_snapshot)
    assert cli.main([*args, "--out", str(tmp_path / "b.png")]) == 0
    assert capsys.readouterr().out.replace("b.png", "a.png") == printed
    assert json.loads(tiny_universe.meta.read_text())["literature_offsets"] == first
    # a file measured without images cannot stand in for one with them
    assert cli.main(args[:-1] + ["--out", str(tmp_path / "c.png")]) == 2
    assert "no image luminosities" in capsys.readouterr().err
