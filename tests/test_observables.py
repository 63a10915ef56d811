"""Per-particle signals (eq. 1, X-ray luminosities) and per-pixel normalisation."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.cosmology import WMAP9

from cmcore import emission, observables
from cmcore.errors import InputError
from cmcore.snapshot import ParticleData, Snapshot

MPC_CM = 3.0856775814913673e24
MSUN_G = 1.988409870698051e33


def _gas(n=4, **fields):
    pos = np.zeros((n, 3))
    return ParticleData(pos, np.full(n, 1e10), fields, name="gas")


def _snap(**particles):
    return Snapshot(particles, 100.0, 0.7, 1.0, 0.0, WMAP9, "synthetic", "mem.hdf5")


def test_upsilon_hand_calculation():
    gas = _gas(1, temperature=np.array([1e8]))
    # sigma_T k T / (m_e c^2) * m / (mu_e m_H), fully ionised X = 0.76: mu_e = 2/1.76
    sigma_t, k_b, me_c2, m_h = 6.6524587e-25, 1.380649e-16, 8.1871057769e-07, 1.00794 * 1.66053907e-24
    expected_cm2 = sigma_t * (k_b * 1e8 / me_c2) * 1e10 * MSUN_G / (2 / 1.76 * m_h)
    assert observables.upsilon(gas)[0] == pytest.approx(expected_cm2 / MPC_CM**2, rel=1e-6)
    assert expected_cm2 / MPC_CM**2 == pytest.approx(1.2318e-8, rel=1e-3)


def test_mu_e_uses_electron_abundance():
    gas = _gas(2, temperature=np.full(2, 1e7), electron_abundance=np.array([1.0, 0.5]))
    assert observables.mu_e(gas) == pytest.approx([1 / 0.76, 2 / 0.76])
    assert observables.mu_e(_gas(1, temperature=np.ones(1)))[0] == pytest.approx(2 / 1.76)
    y = observables.upsilon(gas)
    assert y[1] == pytest.approx(0.5 * y[0])


def test_luminosity_is_emissivity_times_volume():
    rho = 1e14  # Msun / Mpc^3 physical
    gas = _gas(1, density=np.array([rho]), temperature=np.array([5e7]),
               metallicity=np.array([0.3 * 0.0134]))
    l_soft, l_bol = observables.xray_luminosities(gas)
    rho_cgs = rho * MSUN_G / MPC_CM**3
    n_h = 0.76 * rho_cgs / (1.00794 * 1.66053907e-24)
    eps_soft, eps_bol = emission.emissivities(n_h, 5e7, 0.3 * 0.0134, 1 + 0.24 / 1.52)
    volume = 1e10 * MSUN_G / rho_cgs
    assert l_bol[0] == pytest.approx(eps_bol * volume, rel=1e-6)
    assert l_soft[0] == pytest.approx(eps_soft * volume, rel=1e-6)
    # order of magnitude: 1e10 Msun of 4 keV gas at n_e ~ 5e-3 cm^-3 radiates ~1e41 erg/s
    assert 1e40 < l_bol[0] < 1e42


def test_cold_and_star_forming_gas_do_not_emit():
    gas = _gas(
        4,
        density=np.full(4, 1e14),
        temperature=np.array([5e5, 2e6, 2e7, 2e7]),
        metallicity=np.full(4, 0.004),
        star_formation_rate=np.array([0.0, 0.0, 0.0, 1.0]),
    )
    l_soft, l_bol = observables.xray_luminosities(gas)
    assert l_bol[0] == 0 and l_bol[3] == 0
    assert l_bol[1] > 0 and l_bol[2] > 0 and np.all(l_soft <= l_bol)
    assert observables.xray_luminosities(gas, t_min=3e6)[1][1] == 0


def test_precomputed_luminosities_are_used():
    gas = _gas(2, luminosity_soft=np.array([1e40, 2e40]), luminosity_bol=np.array([3e40, 4e40]))
    l_soft, l_bol = observables.xray_luminosities(gas)
    assert list(l_soft) == [1e40, 2e40] and list(l_bol) == [3e40, 4e40]
    snap = _snap(gas=gas)
    observables.check_available(snap, ["Fxs", "Fxb"])  # no density/temperature needed


def test_missing_metallicity_warns_and_assumes_03_solar():
    gas = _gas(1, density=np.array([1e14]), temperature=np.array([3e7]))
    with pytest.warns(UserWarning, match="metallicity"):
        l_default = observables.xray_luminosities(gas)[1]
    gas_z = _gas(1, density=np.array([1e14]), temperature=np.array([3e7]),
                 metallicity=np.array([observables.DEFAULT_METALLICITY]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert observables.xray_luminosities(gas_z)[1] == pytest.approx(l_default)


def test_missing_particles_or_fields_are_named():
    gas = _gas(2, temperature=np.full(2, 1e7))
    snap = _snap(gas=gas)
    with pytest.raises(InputError, match="Star needs stars particles"):
        observables.check_available(snap, ["Star"])
    with pytest.raises(InputError, match="Fxs needs gas field.*density"):
        observables.check_available(snap, ["Fxs"])
    observables.check_available(snap, ["Ypar"])
    with pytest.raises(InputError, match="unknown channel"):
        observables.check_channels(["Xray"])


def test_particle_signals_columns():
    gas = _gas(3, density=np.full(3, 1e14), temperature=np.full(3, 2e7), metallicity=np.full(3, 0.004))
    stars = ParticleData(np.zeros((2, 3)), np.array([1e9, 2e9]), {}, name="stars")
    sig = observables.particle_signals(_snap(gas=gas, stars=stars), ["Ypar", "Star", "Fxb"])
    w, names = sig["gas"]
    assert names == ("Ypar", "Fxb") and w.shape == (3, 2)
    assert np.allclose(w[:, 0], observables.upsilon(gas), rtol=1e-14, atol=0)
    assert sig["stars"][1] == ("Star",) and list(sig["stars"][0][:, 0]) == [1e9, 2e9]


def test_pixel_geometry_wmap9():
    # WMAP9 (H0 = 69.32, Om0 = 0.2865, flat): d_A(0.05) = (c/H0) ∫dz/E / 1.05 = 203.7 Mpc,
    # so a 10" pixel is 9.88 kpc
    d_a = WMAP9.angular_diameter_distance(0.05).value
    assert d_a == pytest.approx(203.70, rel=1e-3)
    assert observables.pixel_size_mpc(0.05, 10.0) == pytest.approx(d_a * 10 / 206264.806, rel=1e-8)
    assert observables.pixel_area_kpc2(0.05, 10.0) == pytest.approx((1e3 * d_a * 10 / 206264.806) ** 2, rel=1e-8)
    d_l = WMAP9.luminosity_distance([0.03, 0.07]).to("cm").value
    f = [observables.flux_factor(z) for z in (0.03, 0.07)]
    assert f[0] / f[1] == pytest.approx((d_l[1] / d_l[0]) ** 2, rel=1e-12)
    assert f[0] == pytest.approx(1 / (4 * np.pi * d_l[0] ** 2))
    with pytest.raises(InputError, match="redshift"):
        observables.pixel_size_mpc(0.0, 10.0)


def test_one_precomputed_band_is_enough_for_its_channel():
    gas = _gas(2, luminosity_soft=np.array([1e40, 2e40]))
    snap = _snap(gas=gas)
    w, names = observables.particle_signals(snap, ["Fxs"])["gas"]
    assert names == ("Fxs",) and list(w[:, 0]) == [1e40, 2e40]
    with pytest.raises(InputError, match="Fxb needs gas field"):
        observables.particle_signals(snap, ["Fxs", "Fxb"])


def test_threaded_signals_equal_serial(monkeypatch):
    rng = np.random.default_rng(4)
    n = 1000
    gas = ParticleData(rng.uniform(0, 10, (n, 3)), rng.uniform(1e8, 1e9, n), {
        "density": 10 ** rng.uniform(12, 15, n), "temperature": 10 ** rng.uniform(5, 8.5, n),
        "metallicity": rng.uniform(0, 0.03, n), "star_formation_rate": (rng.random(n) < 0.1) * 1.0,
    })
    snap = _snap(gas=gas)
    whole = observables.particle_signals(snap, ["Fxs", "Fxb", "Ypar"])["gas"][0]
    monkeypatch.setattr(observables, "_SIGNAL_BLOCK", 64)  # 16 blocks
    serial = observables.particle_signals(snap, ["Fxs", "Fxb", "Ypar"])["gas"][0]
    threaded = observables.particle_signals(snap, ["Fxs", "Fxb", "Ypar"], workers=3)["gas"][0]
    assert np.array_equal(whole, serial) and np.array_equal(serial, threaded)
    assert (serial[:, 0] > 0).any() and (serial[:, 0] == 0).any()
    with pytest.raises(InputError, match="workers"):
        observables.particle_signals(snap, ["Ypar"], workers=0)
