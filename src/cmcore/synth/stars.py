"""Stellar content of haloes: central galaxy, intracluster light and satellites.

Clusters and groups follow the observed cluster relations (Kravtsov, Vikhlinin &
Meshcheryakov 2018), field haloes the Moster et al. 2013 stellar-to-halo mass relation,
with a smooth transition between; the relations, their sources and scatters are tabulated
in ``docs/synth.md`` ("Stars").
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .cosmo import h, rho_crit
from .haloes import running_integral
from .relations import SHMR_SCATTER_DEX, SIZE_SCATTER_DEX, nfw_mu, stellar_mass_central
from .relations import galaxy_half_mass_radius as shen_half_mass_radius

#: KVM18 pivot mass [M☉ M500c].
KVM18_PIVOT = 10**14.5
#: KVM18 BCG (+ envelope) fit: log10 norm at the pivot, slope, scatter [dex].
BCG_ICL_NORM, BCG_ICL_SLOPE, BCG_ICL_SCATTER_DEX = 12.15, 0.39, 0.21
#: Total stellar mass within R500: fit to KVM18's nine clusters (norm, slope, rms [dex]).
TOTAL_NORM, TOTAL_SLOPE, TOTAL_SCATTER_DEX = 12.70, 0.60, 0.09
#: Satellites within R500: KVM18 slope and scatter [dex]; the norm makes BCG + satellites
#: equal the total fit at the pivot.
SAT_SLOPE, SAT_SCATTER_DEX = 0.87, 0.10
SAT_NORM = float(np.log10(10**TOTAL_NORM - 10**BCG_ICL_NORM))
#: Fraction of BCG + ICL in the diffuse intracluster light.
ICL_FRACTION = 0.45
#: Yang, Mo & van den Bosch 2008 satellite CSMF: faint-end slope α, log10 M_s [M☉].
CSMF_ALPHA, CSMF_LOG_MS = -1.118, 10.9
#: NFW concentration of the satellite number density (Lin, Mohr & Stanford 2004).
SAT_CONCENTRATION = 2.9
#: log10 M500 range of the field → cluster transition.
TRANSITION_LOG_M500 = (12.0, 13.0)
#: Aperture of "the central galaxy" stellar mass [Mpc] (KVM18, Gonzalez et al. 2013).
BCG_APERTURE = 0.05
#: Galaxies above this stellar mass count towards the richness [M☉].
RICHNESS_MIN_MASS = 1e10
#: BAHAMAS gravitational softening, 4 kpc/h (McCarthy et al. 2017), in Mpc.
BAHAMAS_SOFTENING = 4e-3 / h()
#: Star-particle index layout: galaxy << GALAXY_SHIFT | particle (0 BCG, 1 ICL, 2… satellites).
GALAXY_SHIFT = 16
BCG_GALAXY, ICL_GALAXY, FIRST_SATELLITE = 0, 1, 2


def transition_weight(m500):
    """Weight w of the cluster relations (0 field, 1 cluster), smooth in log M500."""
    lo, hi = TRANSITION_LOG_M500
    t = np.clip((np.log10(np.asarray(m500, dtype=float)) - lo) / (hi - lo), 0.0, 1.0)
    return 3 * t**2 - 2 * t**3


def bcg_icl_mass(m500):
    """Median BCG + ICL stellar mass [M☉] at M500 [M☉] (KVM18)."""
    return 10 ** (BCG_ICL_NORM + BCG_ICL_SLOPE * np.log10(np.asarray(m500, dtype=float) / KVM18_PIVOT))


def total_stellar_mass_500(m500):
    """Median BCG + ICL + satellites within R500 [M☉] (fit to the KVM18 clusters)."""
    return 10 ** (TOTAL_NORM + TOTAL_SLOPE * np.log10(np.asarray(m500, dtype=float) / KVM18_PIVOT))


def satellite_mass_500(m500):
    """Median stellar mass in satellites within R500 [M☉] (KVM18 slope and scatter)."""
    return 10 ** (SAT_NORM + SAT_SLOPE * np.log10(np.asarray(m500, dtype=float) / KVM18_PIVOT))


def csmf_shape(mstar):
    """Unnormalised satellite CSMF dN/dlog10 M* (Yang, Mo & van den Bosch 2008 form)."""
    x = np.asarray(mstar, dtype=float) / 10**CSMF_LOG_MS
    return x ** (CSMF_ALPHA + 1) * np.exp(-(x**2))


def _csmf_table(m_min: float):
    """log10 M grid and running integrals of number and mass above ``m_min``."""
    logm = np.linspace(np.log10(m_min), CSMF_LOG_MS + 1.2, 400)
    phi = csmf_shape(10**logm)
    return logm, running_integral(phi, logm), running_integral(phi * 10**logm, logm)


def mean_satellite_mass(m_min: float) -> float:
    """Mean stellar mass [M☉] of a CSMF satellite above ``m_min``."""
    _, n, m = _csmf_table(m_min)
    return float(m[-1] / n[-1])


def fraction_above(m_cut: float, m_min: float) -> float:
    """Fraction of CSMF satellites above ``m_min`` that exceed ``m_cut``."""
    logm, n, _ = _csmf_table(m_min)
    return float(1.0 - np.interp(np.log10(m_cut), logm, n) / n[-1])


def nfw_enclosed_fraction(x, c):
    """μ(c x)/μ(c): NFW mass fraction within x = r/R200 (of the mass within R200)."""
    return nfw_mu(c * np.asarray(x, dtype=float)) / nfw_mu(c)


def richness_mean(m500, x500, m_min: float = 1e8):
    """Mean number of satellites above :data:`RICHNESS_MIN_MASS` within R200.

    ``x500`` = R500/R200 of the halo; the CSMF normalisation puts
    :func:`satellite_mass_500` within R500 and the NFW (c = 2.9) profile
    carries it to R200.
    """
    n500 = satellite_mass_500(m500) / mean_satellite_mass(m_min)
    n200 = n500 / nfw_enclosed_fraction(x500, SAT_CONCENTRATION)
    return n200 * fraction_above(RICHNESS_MIN_MASS, m_min)


def galaxy_half_mass_radius(mstar, floor: float = 0.0):
    """Median 3D half-mass radius [Mpc] (Shen et al. 2003 R50 × 4/3), at least ``floor``."""
    return np.maximum(shen_half_mass_radius(mstar), floor)


def hernquist_fraction(r, r_half):
    """Mass fraction of a Hernquist sphere (truncated at 10 a) within radius ``r``."""
    a = np.asarray(r_half, dtype=float) / (1.0 + np.sqrt(2.0))
    inside = (np.asarray(r, dtype=float) / (np.asarray(r, dtype=float) + a)) ** 2
    return np.minimum(inside / (10.0 / 11.0) ** 2, 1.0)


@dataclass
class StellarContent:
    """What one halo's stars are: masses, sizes and satellite draws.

    Attributes
    ----------
    weight : float
        Transition weight w (1 cluster, 0 field).
    m_bcg, m_icl : float
        Stellar mass of the galaxy proper and of the ICL [M☉].
    r_half_bcg : float
        3D half-mass radius of the galaxy proper [Mpc].
    m_sat500_intended : float
        Drawn stellar mass of CSMF satellites within R500 (before Poisson) [M☉].
    sat_masses : ndarray
        CSMF satellite stellar masses [M☉].
    sat_radii : ndarray
        Their distances from the centre [Mpc].
    """

    weight: float
    m_bcg: float
    m_icl: float
    r_half_bcg: float
    m_sat500_intended: float
    sat_masses: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sat_radii: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def central_within(self, r, r500: float, c200: float, r200: float):
        """Expected BCG + ICL stellar mass within spheres of radius ``r`` [M☉] (float or array)."""
        icl = nfw_enclosed_fraction(np.minimum(r, r500) / r200, c200) / nfw_enclosed_fraction(
            r500 / r200, c200)
        out = self.m_bcg * hernquist_fraction(r, self.r_half_bcg) + self.m_icl * icl
        return float(out) if np.ndim(out) == 0 else out


def draw_stellar_content(rng: np.random.Generator, m200: float, m500: float, r200: float,
                         r500: float, r_max: float, m_min: float, size_floor: float) -> StellarContent:
    """Draw the central, ICL and CSMF satellites of one halo.

    Parameters
    ----------
    m200, m500 : float
        Halo masses [M☉].
    r200, r500, r_max : float
        Radii [Mpc]; satellites are placed out to ``r_max``.
    m_min : float
        Smallest satellite realised [M☉].
    size_floor : float
        Smallest half-mass radius [Mpc].
    """
    w = float(transition_weight(m500))
    z_sat, z_bcg, z_field = rng.normal(size=3)
    bcg_icl = float(bcg_icl_mass(m500)) * 10 ** (BCG_ICL_SCATTER_DEX * z_bcg)
    field_central = float(stellar_mass_central(m200)) * 10 ** (SHMR_SCATTER_DEX * z_field)
    m_central = float(10 ** (w * np.log10(bcg_icl) + (1 - w) * np.log10(field_central)))
    m_icl = w * ICL_FRACTION * m_central
    m_bcg = m_central - m_icl
    r_half = float(shen_half_mass_radius(m_bcg)) * 10 ** (SIZE_SCATTER_DEX * rng.normal())
    m_sat500 = float(satellite_mass_500(m500)) * 10 ** (SAT_SCATTER_DEX * z_sat)
    content = StellarContent(w, m_bcg, m_icl, max(r_half, size_floor), m_sat500)
    if w <= 0:
        return content
    logm, cum_n, _ = _csmf_table(m_min)
    n500 = m_sat500 / mean_satellite_mass(m_min)
    x = np.geomspace(1e-3, r_max / r200, 400)
    cum_r = nfw_enclosed_fraction(x, SAT_CONCENTRATION)
    n_all = w * n500 * cum_r[-1] / float(nfw_enclosed_fraction(r500 / r200, SAT_CONCENTRATION))
    n = rng.poisson(n_all)
    content.sat_masses = 10 ** np.interp(rng.uniform(0, cum_n[-1], n), cum_n, logm)
    u = rng.uniform(0, cum_r[-1], n)
    inner = u < cum_r[0]
    radii = np.interp(u, cum_r, x)
    radii[inner] = x[0] * (u[inner] / cum_r[0]) ** (1 / 3)
    content.sat_radii = radii * r200
    return content


def relations_table() -> dict:
    """The stellar relations above, for ``synth.json``."""
    return {
        "bcg_icl": {"model": "Kravtsov, Vikhlinin & Meshcheryakov 2018: log M* = norm + slope "
                             "log10(M500/10^14.5)", "norm": BCG_ICL_NORM, "slope": BCG_ICL_SLOPE,
                    "scatter_dex": BCG_ICL_SCATTER_DEX, "icl_fraction": ICL_FRACTION,
                    "icl_profile": "NFW of the halo's concentration, truncated at R500"},
        "total_500": {"model": "comparison only (the sum of BCG + ICL and satellites): fit to "
                               "the 9 clusters of KVM18: log M* = norm + slope log10(M500/10^14.5)",
                      "norm": TOTAL_NORM, "slope": TOTAL_SLOPE, "scatter_dex": TOTAL_SCATTER_DEX},
        "satellites": {"model": "log M* within R500 = norm + slope log10(M500/10^14.5), independent "
                                "of the BCG; KVM18 slope and scatter, norm = log10(10^total_norm - "
                                "10^bcg_norm)", "norm": SAT_NORM, "slope": SAT_SLOPE,
                       "scatter_dex": SAT_SCATTER_DEX,
                       "csmf": "Yang, Mo & van den Bosch 2008 form", "alpha": CSMF_ALPHA,
                       "log_ms": CSMF_LOG_MS, "number": "Poisson",
                       "profile": f"NFW c = {SAT_CONCENTRATION} (Lin, Mohr & Stanford 2004)"},
        "transition": {"log_m500": list(TRANSITION_LOG_M500),
                       "rule": "w = smoothstep in log M500; log M*_c = w KVM18 + (1-w) Moster 2013; "
                               "CSMF satellites x w; subhalo satellites kept with probability 1-w"},
        "galaxy_ids": f"star index = galaxy << {GALAXY_SHIFT} | particle; galaxy 0 BCG, 1 ICL, "
                      ">= 2 satellites",
    }


def median_central_within(m500, aperture: float = BCG_APERTURE, size_floor: float = BAHAMAS_SOFTENING):
    """Median BCG + ICL stellar mass within ``aperture`` [M☉] of cluster haloes of M500.

    The cluster regime (w = 1), median concentration, median galaxy size: the
    line the measured M*(<50 kpc) scatter about.
    """
    from .relations import concentration_mean, nfw_r500_over_r200

    m500 = np.atleast_1d(np.asarray(m500, dtype=float))
    out = np.empty(m500.size)
    for i, m in enumerate(m500):
        m200 = m
        for _ in range(20):  # M200 from M500 at the median concentration
            c = float(concentration_mean(m200))
            x500 = float(nfw_r500_over_r200(c)[0])
            m200 = m * float(nfw_mu(c) / nfw_mu(c * x500))
        r200 = (3 * m200 / (4 * np.pi * 200 * rho_crit(0.0))) ** (1 / 3)
        total = float(bcg_icl_mass(m))
        m_bcg, m_icl = (1 - ICL_FRACTION) * total, ICL_FRACTION * total
        r_half = float(galaxy_half_mass_radius(m_bcg, size_floor))
        icl = nfw_enclosed_fraction(min(aperture, x500 * r200) / r200, c) / nfw_enclosed_fraction(x500, c)
        out[i] = m_bcg * hernquist_fraction(aperture, r_half) + m_icl * icl
    return out

