"""The X-ray emission model against textbook values and physical limits."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from cmcore import emission

KEV_K = 1.160452e7  # K per keV


def test_bremsstrahlung_constant_is_rybicki_lightman():
    # R&L eq. 5.15b: 1.4e-27 T^1/2 n_e n_i Z^2 g_B erg/s/cm^3
    assert emission.bremsstrahlung_constant() == pytest.approx(1.4255e-27, rel=1e-3)


def test_free_free_emissivity_textbook_value():
    # pure hydrogen plasma, n_e = n_i = 1 cm^-3, T = 1e8 K:
    # 1.4e-27 * 1e4 * g_B with g_B = 2 sqrt(3)/pi
    n_h = 1.0
    _, eps_bol = emission.emissivities(n_h, 1e8, 0.0, 1.0, x_hydrogen=1.0)
    expected = 1.4255e-27 * 1e4 * 2 * np.sqrt(3) / np.pi
    assert eps_bol == pytest.approx(expected, rel=1e-3)
    assert 1.1 <= emission.GAUNT_BORN_MEAN <= 1.5  # R&L: "g_B in the range 1.1 to 1.5"


def test_band_fraction_closed_form_matches_quadrature():
    for t in (3e6, 2e7, 1e8):
        kt = t / KEV_K
        num = quad(lambda x: emission.gaunt_born(x) * np.exp(-x), 0.5 / kt, 2.0 / kt)[0]
        den = quad(lambda x: emission.gaunt_born(x) * np.exp(-x), 0, np.inf)[0]
        assert emission.bremsstrahlung_band_fraction(t, 0.5, 2.0) == pytest.approx(num / den, rel=1e-6)
    assert emission.bremsstrahlung_band_fraction(1e7, 0.0, np.inf) == pytest.approx(1.0)


def test_soft_to_bolometric_ratio_is_physical():
    t = np.array([5e6, 1.16e7, 3e7, 6e7, 1.2e8])
    soft, bol = emission.emissivities(1e-3, t, 0.3 * emission.Z_SOLAR, emission.electron_abundance_ionised())
    ratio = soft / bol
    assert np.all((ratio > 0) & (ratio < 1))
    # hotter gas puts more of its power above 2 keV: ratio falls from 1 keV up
    assert np.all(np.diff(ratio[1:]) < 0)
    # APEC-like values for Z = 0.3 Zsun: ~0.6 at 1 keV, ~0.3 at 5 keV, ~0.2 at 10 keV
    assert 0.5 < ratio[1] < 0.75
    assert 0.22 < ratio[3] < 0.38
    assert 0.14 < ratio[4] < 0.28


def test_lines_scale_with_metallicity_and_dominate_cool_gas():
    t = np.array([3e6, 1e8])
    ne = emission.electron_abundance_ionised()
    _, b0 = emission.emissivities(1e-3, t, 0.0, ne)
    _, b1 = emission.emissivities(1e-3, t, emission.Z_SOLAR, ne)
    _, b2 = emission.emissivities(1e-3, t, 2 * emission.Z_SOLAR, ne)
    assert np.allclose(b2 - b0, 2 * (b1 - b0), rtol=1e-12, atol=0)
    assert (b1[0] - b0[0]) / b0[0] > 3      # line cooling dominates at 0.26 keV
    _, b03 = emission.emissivities(1e-3, t, 0.3 * emission.Z_SOLAR, ne)
    assert (b03[1] - b0[1]) / b0[1] < 0.5   # bremsstrahlung dominates hot ICM at 8.6 keV


def test_cooling_function_close_to_sutherland_dopita():
    # Lambda_N = eps / (n_e n_i); SD93 for [Fe/H] = -0.5 at 1e7 K and 1e8 K is
    # ~1.5e-23 and ~2.5e-23 erg cm^3/s; allow 40 %
    y = (1 - emission.X_HYDROGEN) / (4 * emission.X_HYDROGEN)
    ne = emission.electron_abundance_ionised()
    _, b = emission.emissivities(1.0, np.array([1e7, 1e8]), 0.3 * emission.Z_SOLAR, ne)
    lam = b / (ne * (1 + y))
    assert lam[0] == pytest.approx(1.5e-23, rel=0.4)
    assert lam[1] == pytest.approx(2.5e-23, rel=0.4)
