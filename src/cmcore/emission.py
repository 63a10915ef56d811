"""X-ray emission of hot, optically thin, collisionally ionised gas.

The model used when a snapshot carries no precomputed luminosities:

* **Thermal bremsstrahlung** of fully ionised H + He (Rybicki & Lightman 1979,
  eq. 5.14–5.15) with the non-relativistic Born-approximation Gaunt factor

  .. math:: g_{ff}(x) = \\frac{\\sqrt3}{\\pi}\\, e^{x/2} K_0(x/2),\\qquad x = h\\nu/k_BT

  (R&L eq. 5.17b, valid for k_BT ≫ Z² Ry, i.e. T ≫ 1.6 × 10⁵ K for helium).
  Its frequency average is exactly ḡ_B = 2√3/π ≈ 1.10 (within R&L's "1.1–1.5"),
  because ∫₀^∞ e^{-s} K₀(s) ds = 1.  The band fraction has the closed form
  ∫ e^{-s}K₀(s) ds = s e^{-s} [K₀(s) − K₁(s)], so no quadrature is needed.

* **Everything else, fitted to Sutherland & Dopita (1993, ApJS 88, 253)**: their
  collisional-ionisation-equilibrium cooling functions Λ_N (normalised to
  n_e n_t, n_t all ions; tables ``mzero``, ``m-10``, ``m-05``, ``m-00`` of
  [Fe/H] = −∞, −1, −0.5, 0) are reproduced over 0.27–11 keV to better than
  5 % by

  .. math:: Λ_N = Λ_{ff}(T) [1 + G (kT)^{-γ}] + (Z/Z_{SD})^{p} Λ_Z(T),

  .. math:: Λ_Z = [C_1 (kT)^{-a} + C_3 + C_{L} e^{-\\ln^2(kT/0.9\\,{\\rm keV})/(2 \\cdot 0.3^2)}] × 10^{-22}

  (kT in keV; G = 0.207, γ = 0.775: the H/He free–bound emission and the
  Gaunt factor beyond Born; C₁ = 0.058, a = 1.18, C₃ = 0.0546, C_L = 0.0612:
  the metal lines and continuum, C_L the Fe L bump; p = 0.78).  Z_SD = 0.0189
  is the metal mass fraction of the Anders & Grevesse (1989) solar mix the
  tables use (Asplund et al. 2009, Table 4), so a mass fraction Z maps onto
  their [Fe/H] = log(Z/Z_SD).  This replaces the Tozzi & Norman (2001) fit,
  whose metal term, scaled linearly with Z, came out 1.5–1.7× the tabulated
  cooling of solar-metallicity gas above 1.5 keV.  ``tests/test_emission.py``
  checks the model against the published tables.

* **Soft-band (0.5–2 keV) share of the line emission**: below k_BT ≈ 2–3 keV
  the line emission of cluster gas is dominated by the Fe L complex
  (0.7–1.4 keV) and the K lines of O, Ne, Mg and Si (0.57–2.0 keV), all inside
  0.5–2 keV; above it iron is mostly He-/H-like and its emission moves to the
  Fe K lines at 6.7–6.97 keV; below k_BT ≈ 0.25 keV the strong lines (C, N,
  O VI–VII, Fe M and low Fe L ions) lie mostly below 0.5 keV.  We model the
  soft share as the window
  s(T) = 1/[(1 + (k_BT / 3 keV)²)(1 + (0.25 keV / k_BT)²)].  This is an
  approximation at the tens of per cent level for the soft-band *metal*
  luminosity only; the H/He continuum correction takes the bremsstrahlung
  band fraction.

Bolometric means the total radiated power (all photon energies).  For precise
work supply precomputed per-particle luminosities (BAHAMAS ships them).  All constants come
from :mod:`astropy.constants`; all quantities here are CGS.
"""
from __future__ import annotations

import numpy as np
from astropy import constants as const
from astropy import units as u
from scipy.special import k0e, k1e

#: Hydrogen mass fraction assumed throughout (primordial, as BAHAMAS/EAGLE).
X_HYDROGEN = 0.76
#: Solar metal mass fraction (Asplund et al. 2009), the project's convention.
Z_SOLAR = 0.0134
#: Metal mass fraction of the Anders & Grevesse (1989) solar mix of Sutherland & Dopita (1993).
Z_SOLAR_SD93 = 0.0189
#: Soft X-ray band [keV] (Yan et al. 2020, Fxs).
SOFT_BAND_KEV = (0.5, 2.0)

#: Frequency-averaged Born Gaunt factor, 2√3/π.
GAUNT_BORN_MEAN = 2.0 * np.sqrt(3.0) / np.pi

#: Mass of the hydrogen atom [g] (IUPAC 1.00794 u).
M_H_CGS = float((1.00794 * const.u).cgs.value)
_K_B_KEV = float(const.k_B.to(u.keV / u.K).value)

# Fit to Sutherland & Dopita (1993) (module docstring): H/He continuum correction
# G (kT)^-gamma; metal term [1e-22 erg cm^3 s^-1] C1 (kT)^-a + C3 + Fe L bump; Z exponent.
_SD_G, _SD_GAMMA = 0.207, 0.775
_SD_C1, _SD_A, _SD_C3, _SD_CL, _SD_KT_L, _SD_WIDTH_L = 0.058, 1.18, 0.0546, 0.0612, 0.9, 0.3
_SD_Z_POWER = 0.78
#: Temperatures [keV] below / above which the soft share of the line emission falls.
LINE_SOFT_KT_LO_KEV = 0.25
LINE_SOFT_KT_HI_KEV = 3.0


def bremsstrahlung_constant() -> float:
    """Prefactor of the thermal bremsstrahlung emissivity [erg cm³ s⁻¹ K^-½].

    C = 2⁵ π e⁶ / (3 h m_e c³) · (2π k_B / (3 m_e))^½ (Rybicki & Lightman 1979,
    eq. 5.15b), ≈ 1.4 × 10⁻²⁷ in CGS-Gaussian units.
    """
    e = const.e.gauss.value
    h = const.h.cgs.value
    m_e = const.m_e.cgs.value
    c = const.c.cgs.value
    k_b = const.k_B.cgs.value
    return float(
        2**5 * np.pi * e**6 / (3.0 * h * m_e * c**3) * np.sqrt(2.0 * np.pi * k_b / (3.0 * m_e))
    )


def gaunt_born(x: np.ndarray) -> np.ndarray:
    """Born-approximation free–free Gaunt factor g(x), x = hν/k_BT (R&L eq. 5.17b)."""
    s = 0.5 * np.asarray(x, dtype=np.float64)
    return np.sqrt(3.0) / np.pi * k0e(s)


def _tail(s: np.ndarray) -> np.ndarray:
    """∫_s^∞ e^{-t} K₀(t) dt = −s e^{-s}[K₀(s) − K₁(s)] (so ∫₀^∞ = 1)."""
    s = np.asarray(s, dtype=np.float64)
    finite = (s > 0) & np.isfinite(s)
    sf = np.where(finite, s, 1.0)
    out = -sf * np.exp(-2.0 * sf) * (k0e(sf) - k1e(sf))
    return np.where(finite, out, np.where(s > 0, 0.0, 1.0))


def bremsstrahlung_band_fraction(
    temperature: np.ndarray, e_lo_kev: float, e_hi_kev: float
) -> np.ndarray:
    """Fraction of the bremsstrahlung power emitted between two photon energies.

    Parameters
    ----------
    temperature : array_like
        Gas temperature [K].
    e_lo_kev, e_hi_kev : float
        Band edges [keV]; ``e_hi_kev`` may be ``np.inf``.

    Returns
    -------
    ndarray
        ∫ g(x) e^{-x} dx over the band divided by ∫₀^∞ g(x) e^{-x} dx, with the
        Born Gaunt factor; exact (closed form).
    """
    kt = _K_B_KEV * np.asarray(temperature, dtype=np.float64)
    s_lo = 0.5 * e_lo_kev / kt
    s_hi = 0.5 * e_hi_kev / kt
    return _tail(s_lo) - _tail(s_hi)


def electron_abundance_ionised(x_hydrogen: float = X_HYDROGEN) -> float:
    """n_e/n_H of fully ionised H + He (metals neglected): 1 + (1 − X)/(2X)."""
    return 1.0 + (1.0 - x_hydrogen) / (2.0 * x_hydrogen)


def continuum_correction(temperature: np.ndarray) -> np.ndarray:
    """Factor 1 + G (kT)^−γ on the Born bremsstrahlung of H and He.

    H/He free–bound emission and the Gaunt factor beyond the Born
    approximation, fitted to Sutherland & Dopita's (1993) primordial cooling
    function (module docstring): 1.26 at 1 keV, 1.06 at 5 keV.
    """
    kt = _K_B_KEV * np.asarray(temperature, dtype=np.float64)
    return 1.0 + _SD_G * kt**-_SD_GAMMA


def line_cooling(temperature: np.ndarray, metallicity: np.ndarray) -> np.ndarray:
    """Metal part of the cooling function Λ_Z(T, Z) [erg cm³ s⁻¹] (lines and continuum).

    (Z/Z_SD)^p [C₁ (kT)^−a + C₃ + Fe L bump] × 10⁻²², fitted to Sutherland &
    Dopita (1993) (module docstring); multiply by n_e n_i for an emissivity.
    """
    kt = _K_B_KEV * np.asarray(temperature, dtype=np.float64)
    zrel = np.clip(np.asarray(metallicity, dtype=np.float64), 0.0, None) / Z_SOLAR_SD93
    fe_l = _SD_CL * np.exp(-np.log(kt / _SD_KT_L) ** 2 / (2.0 * _SD_WIDTH_L**2))
    return zrel**_SD_Z_POWER * (_SD_C1 * kt**-_SD_A + _SD_C3 + fe_l) * 1e-22


def line_soft_share(temperature: np.ndarray) -> np.ndarray:
    """Share of the line emission inside 0.5–2 keV.

    s = 1/[(1 + (kT/3 keV)²)(1 + (0.25 keV/kT)²)]: Fe L and O–Si K lines in the
    band for 0.25 ≲ kT ≲ 3 keV, Fe K above and sub-0.5 keV lines below (module
    docstring).
    """
    kt = _K_B_KEV * np.asarray(temperature, dtype=np.float64)
    return 1.0 / ((1.0 + (kt / LINE_SOFT_KT_HI_KEV) ** 2) * (1.0 + (LINE_SOFT_KT_LO_KEV / kt) ** 2))


def emissivities(
    n_h: np.ndarray,
    temperature: np.ndarray,
    metallicity: np.ndarray,
    electron_abundance: np.ndarray | float,
    x_hydrogen: float = X_HYDROGEN,
) -> tuple[np.ndarray, np.ndarray]:
    """Soft-band (0.5–2 keV) and bolometric emissivities [erg s⁻¹ cm⁻³].

    Parameters
    ----------
    n_h : array_like
        Hydrogen number density [cm⁻³].
    temperature : array_like
        Temperature [K].
    metallicity : array_like
        Metal mass fraction.
    electron_abundance : array_like or float
        n_e/n_H.
    x_hydrogen : float
        Hydrogen mass fraction X; helium n_He/n_H = (1 − X)/(4X).

    Returns
    -------
    (eps_soft, eps_bol) : tuple of ndarray
        ε_ff = C ḡ_B T^½ n_e Σ Z_i² n_i (R&L 5.15b, ions H⁺, He²⁺) times
        :func:`continuum_correction`, plus ε_line = n_e n_i Λ_Z(T, Z)
        (:func:`line_cooling`); the soft one uses the exact bremsstrahlung
        band fraction and :func:`line_soft_share`.
    """
    n_h = np.asarray(n_h, dtype=np.float64)
    t = np.asarray(temperature, dtype=np.float64)
    y_he = (1.0 - x_hydrogen) / (4.0 * x_hydrogen)
    n_e = np.asarray(electron_abundance, dtype=np.float64) * n_h
    n_ions = n_h * (1.0 + y_he)
    z2_n = n_h * (1.0 + 4.0 * y_he)
    eps_ff = (bremsstrahlung_constant() * GAUNT_BORN_MEAN * np.sqrt(t) * n_e * z2_n
              * continuum_correction(t))
    eps_line = n_e * n_ions * line_cooling(t, metallicity)
    eps_soft = eps_ff * bremsstrahlung_band_fraction(t, *SOFT_BAND_KEV) + eps_line * line_soft_share(t)
    return eps_soft, eps_ff + eps_line
