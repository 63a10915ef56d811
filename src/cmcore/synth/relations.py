"""Scaling relations of the synthetic universe, each with its source and scatter.

All masses are M200c or M500c in M☉ (no h); colossus is called in its h-units
and converted here.  Every relation returns the *mean* (median in log) value;
the scatter is a separate constant, drawn per halo by :mod:`cmcore.synth.universe`.

=====================  ==============================================  ===========================
quantity               relation                                         scatter
=====================  ==============================================  ===========================
concentration c200c    Diemer & Joyce 2019 (colossus ``diemer19``)      0.16 dex log-normal
axis ratios s, q       Jing & Suto 2002: ⟨s⟩ = 0.54 (M/M_nl)^-0.05      σ_s = 0.113; q ~ U(s, 1)
hot-gas fraction       Vikhlinin et al. 2009: f_gas,500 = 0.125 +           0.06 dex
                       0.037 log(M500/10¹⁵ h⁻¹ M☉) at h = 0.72 (∝ h^-3/2)
X-ray temperature      Arnaud, Pointecouteau & Pratt 2005:              0.04 dex
                       M500 = 3.84e14 h70⁻¹ M☉ (kT/5 keV)^1.71
temperature profile    Vikhlinin et al. 2006, eq. 8 (cool cores);       —
                       without the central dip for non-cool cores
gas density profile    Vikhlinin et al. 2006 eq. 3 (single β-model      r_c: 0.1 dex, β: ±0.04
                       with cusp α and steepening at r_s); core
                       r_c/R500 ∝ M500^−0.25 (larger in groups)
cool-core fraction     0.4 (Andrade-Santos et al. 2017)                 Bernoulli
metallicity            0.3 Z☉ + central excess in cool cores            —
                       (Leccardi & Molendi 2008)
stellar mass           Moster, Naab & White 2013, z = 0, M200c          0.15 dex
galaxy size            Shen et al. 2003 (early types) R50 ∝ M*^0.56     0.1 dex
subhalo mass function  dN/dlnψ ∝ ψ^-0.9 exp(-12.27 ψ³), ψ = m/M200      Poisson
                       (Giocoli et al. 2010 shape), 10 % of the mass
                       in 10⁻⁵ < ψ < 1 (Gao et al. 2004)
subhalo positions      Einasto α = 0.678, r₋₂ = 0.81 R200               —
                       (Springel et al. 2008)
halo bias              Tinker et al. 2010 (colossus)                    —
=====================  ==============================================  ===========================
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..readers.units import K_BOLTZMANN_CGS, M_PROTON_G, MPC_CM, MSUN_G, X_HYDROGEN
from .cosmo import COSMOLOGY, colossus_cosmology, h, rho_crit

#: log-normal scatter of c200c at fixed mass (Diemer & Joyce 2019) [dex].
CONCENTRATION_SCATTER_DEX = 0.16
#: Jing & Suto 2002 minor-to-major axis ratio: mean at M_nl, mass slope, dispersion.
SHAPE_S_MEAN, SHAPE_S_SLOPE, SHAPE_S_SIGMA = 0.54, -0.05, 0.113
#: Hot-gas fraction within R500 (Vikhlinin et al. 2009): value at M500 = 10¹⁵ h⁻¹ M☉, change per
#: decade of mass, their h; the lowest mass of the form (a power law continues it below); scatter [dex].
FGAS_V09_NORM, FGAS_V09_PER_DEX, FGAS_V09_H, FGAS_V09_M_MIN, FGAS_SCATTER_DEX = (
    0.125, 0.037, 0.72, 1e13, 0.06)
#: Arnaud et al. 2005 M500–T: normalisation [h70⁻¹ M☉] at 5 keV, slope; T scatter [dex].
MT_NORM, MT_SLOPE, T_SCATTER_DEX = 3.84e14, 1.71, 0.04
#: Fraction of cool-core clusters.
COOL_CORE_FRACTION = 0.4
#: Gas density shape (V06 eq. 3 parameters) of cool-core and non-cool-core haloes:
#: cusp α, core radius x_c = r_c/R500, β, r_s/R500, ε.
GAS_SHAPE = {
    True: dict(alpha=1.0, x_c=0.10, beta=0.60, x_s=1.0, epsilon=3.0),
    False: dict(alpha=0.0, x_c=0.25, beta=0.65, x_s=1.0, epsilon=3.0),
}
#: Scatter of log10 x_c [dex] and of β.
GAS_XC_SCATTER_DEX, GAS_BETA_SIGMA = 0.1, 0.04
#: Mass dependence of the gas core: x_c ∝ (M500 / pivot)^slope [M☉], at most ``GAS_XC_MAX``.
GAS_XC_PIVOT, GAS_XC_SLOPE, GAS_XC_MAX = 2e14, -0.25, 0.5
#: Solar metal mass fraction (Asplund et al. 2009) and the outer ICM metallicity.
Z_SUN, Z_ICM = 0.0134, 0.3
#: Moster et al. 2013 z = 0 parameters: log10 M1, N, β, γ; scatter [dex].
MOSTER_LOG_M1, MOSTER_N, MOSTER_BETA, MOSTER_GAMMA = 11.590, 0.0351, 1.376, 0.608
SHMR_SCATTER_DEX = 0.15
#: Shen et al. 2003 early-type size relation R50 = b M*^a [kpc]; scatter [dex].
SIZE_A, SIZE_B, SIZE_SCATTER_DEX = 0.56, 2.88e-6, 0.1
#: Subhalo mass function: slope, cutoff, mass fraction in subhaloes, ψ range of that fraction.
SHMF_ALPHA, SHMF_BETA, SHMF_FRACTION, SHMF_PSI_MIN = 0.9, 12.2715, 0.10, 1e-5
#: Present subhalo mass / mass at infall (tidal stripping), for satellite stellar masses.
SUBHALO_STRIPPED_FRACTION = 0.5
#: Einasto number-density profile of subhaloes (Springel et al. 2008).
SUBHALO_EINASTO_ALPHA, SUBHALO_EINASTO_X2 = 0.678, 0.81
#: Mean mass per electron and per ion [m_p] of fully ionised H + He (X = 0.76).
MU_E = 2.0 / (1.0 + X_HYDROGEN)
MU_I = 1.0 / (X_HYDROGEN + (1.0 - X_HYDROGEN) / 4.0)
#: n_e / n_H of fully ionised H + He.
ELECTRON_ABUNDANCE = 1.0 + (1.0 - X_HYDROGEN) / (2.0 * X_HYDROGEN)
#: σ_T k_B / (m_e c²) [cm² K⁻¹].
_SIGMA_T_KB_MEC2 = 6.6524587321e-25 * K_BOLTZMANN_CGS / (9.1093837015e-28 * 2.99792458e10**2)
#: 1 keV in K.
KEV_K = 1.160451812e7


def r_delta(mass, delta: float = 200.0, redshift: float = 0.0):
    """Radius [Mpc] within which the mean density is Δ ρ_crit(z) for ``mass`` [M☉]."""
    return (3.0 * np.asarray(mass, dtype=float) / (4.0 * np.pi * delta * rho_crit(redshift))) ** (1 / 3)


@lru_cache(maxsize=1)
def _concentration_table() -> tuple[np.ndarray, np.ndarray]:
    from colossus.halo import concentration

    colossus_cosmology()
    logm = np.linspace(8.0, 16.5, 426)
    c = concentration.concentration(10**logm * h(), "200c", 0.0, model="diemer19")
    return logm, np.log10(c)


def concentration_mean(m200):
    """Median c200c at z = 0 (Diemer & Joyce 2019, ApJ 871, 168; colossus ``diemer19``).

    Tabulated from colossus once on a 0.02-dex grid over 10⁸–10^16.5 M☉ and
    interpolated in log–log (far below the 0.16-dex scatter).
    """
    logm, logc = _concentration_table()
    return 10 ** np.interp(np.log10(np.asarray(m200, dtype=float)), logm, logc)


def nfw_mu(x):
    """NFW enclosed-mass shape μ(x) = ln(1+x) − x/(1+x) (colossus ``NFWProfile.mu``)."""
    from colossus.halo.profile_nfw import NFWProfile

    return NFWProfile.mu(np.asarray(x, dtype=float))


def nfw_r500_over_r200(c200):
    """R500c/R200c of an NFW halo of concentration ``c200`` (vectorised bisection).

    Solves μ(c x)/μ(c) / x³ = 500/200 for x in (0, 1).
    """
    c = np.atleast_1d(np.asarray(c200, dtype=float))
    lo, hi = np.full_like(c, 0.05), np.ones_like(c)
    mu_c = nfw_mu(c)
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        dense = nfw_mu(c * mid) / mu_c / mid**3 > 2.5
        lo, hi = np.where(dense, mid, lo), np.where(dense, hi, mid)
    return 0.5 * (lo + hi)


def nonlinear_mass() -> float:
    """M_nl(z = 0) where σ(M) = δ_c [M☉] (colossus ``peaks.nonLinearMass``)."""
    from colossus.lss import peaks

    colossus_cosmology()
    return float(peaks.nonLinearMass(0.0)) / h()


def shape_s_mean(m200):
    """Mean minor-to-major axis ratio (Jing & Suto 2002, ApJ 574, 538, eq. 17)."""
    return SHAPE_S_MEAN * (np.asarray(m200, dtype=float) / nonlinear_mass()) ** SHAPE_S_SLOPE


def hot_gas_fraction_500(m500):
    """Median hot-gas fraction within R500 (Vikhlinin et al. 2009, ApJ 692, 1033, eq. 3).

    f = (0.125 + 0.037 log₁₀ M₁₅)(h/0.72)^−3/2 with M₁₅ = M500/(10¹⁵ h⁻¹ M☉):
    4.8 % at 10¹³, 8.7 % at 10¹⁴, 12.6 % at 10¹⁵ M☉ for WMAP9 (X-ray gas
    fractions scale as h^−3/2).  Below 10¹³ M☉, where the linear form would
    reach zero, it continues as the power law tangent to it at 10¹³ M☉; capped
    at 90 % of the cosmic baryon fraction.
    """
    m = np.asarray(m500, dtype=float)
    h_scale = (h() / FGAS_V09_H) ** -1.5

    def v09(mass):
        return (FGAS_V09_NORM + FGAS_V09_PER_DEX * np.log10(mass * h() / 1e15)) * h_scale

    f_min = v09(FGAS_V09_M_MIN)
    slope = FGAS_V09_PER_DEX * h_scale / (np.log(10.0) * f_min)
    f = np.where(m >= FGAS_V09_M_MIN, v09(np.maximum(m, FGAS_V09_M_MIN)),
                 f_min * (m / FGAS_V09_M_MIN) ** slope)
    return np.minimum(f, 0.9 * COSMOLOGY.Ob0 / COSMOLOGY.Om0)


def temperature_x(m500):
    """Median X-ray temperature [K] from Arnaud, Pointecouteau & Pratt 2005 (A&A 441, 893).

    M500 = 3.84 × 10¹⁴ h70⁻¹ M☉ (kT/5 keV)^1.71, inverted; h70 = H0/70.
    """
    h70 = COSMOLOGY.H0.value / 70.0
    kt = 5.0 * (np.asarray(m500, dtype=float) * h70 / MT_NORM) ** (1.0 / MT_SLOPE)
    return kt * KEV_K


def temperature_profile(x, cool_core):
    """T(r)/T_X with x = r/R500 (Vikhlinin et al. 2006, ApJ 640, 691, eq. 8).

    Cool cores have the published central dip; non-cool cores the same
    profile without it (the core factor set to its outer value 1).
    """
    x = np.asarray(x, dtype=float)
    outer = 1.35 / (1.0 + (x / 0.6) ** 2) ** 0.45
    if not cool_core:
        return outer
    y = (x / 0.045) ** 1.9
    return outer * (y + 0.45) / (y + 1.0)


def gas_density_shape(x, alpha, x_c, beta, x_s, epsilon):
    """Unnormalised gas density (Vikhlinin et al. 2006, eq. 3, one β component).

    ρ ∝ (x/x_c)^(−α/2) (1 + x²/x_c²)^(−3β/2 + α/4) (1 + (x/x_s)³)^(−ε/6),
    the square root of V06's n_p n_e with γ = 3; x = r/R500.
    """
    x = np.asarray(x, dtype=float)
    u = x / x_c
    return u ** (-alpha / 2) * (1.0 + u**2) ** (-1.5 * beta + alpha / 4) * (1.0 + (x / x_s) ** 3) ** (
        -epsilon / 6
    )


def gas_core_radius(x_c, m500):
    """Core radius x_c = r_c/R500 of a halo of ``m500`` [M☉] whose shape has ``x_c`` at the pivot.

    Groups hold their gas less centrally concentrated than clusters: the
    entropy excess of non-gravitational heating grows towards low mass
    (Ponman, Sanderson & Finoguenov 2003; Sun et al. 2009; Pratt et al. 2010),
    which is what steepens the observed L_X–M500 relation beyond the f_gas
    trend.  x_c ∝ (M500 / 2 × 10¹⁴ M☉)^−0.25, capped at 0.5: the slope is
    calibrated so that the soft-band L_X–M500 of the ``paper`` preset has the
    REXCESS slope (Pratt et al. 2009: 1.53; it was 1.27 with a mass-independent
    core), the pivot keeps the clusters' REXCESS-calibrated shapes.
    """
    scaled = np.asarray(x_c, dtype=float) * (np.asarray(m500, dtype=float) / GAS_XC_PIVOT) ** GAS_XC_SLOPE
    return np.minimum(scaled, GAS_XC_MAX)


def metallicity_profile(x, cool_core):
    """Metal mass fraction at x = r/R500: 0.3 Z☉ plus a central excess in cool cores.

    Leccardi & Molendi 2008 (A&A 487, 461): ~0.3 Z☉ beyond 0.2 R500, rising to
    ~0.6 Z☉ in cool cores and ~0.4 Z☉ in non-cool cores at the centre.
    """
    excess = 0.3 if cool_core else 0.1
    return Z_SUN * (Z_ICM + excess * np.exp(-np.asarray(x, dtype=float) / 0.1))


def stellar_mass_central(m200):
    """Median central stellar mass [M☉] (Moster, Naab & White 2013, MNRAS 428, 3121, z = 0)."""
    m = np.asarray(m200, dtype=float)
    ratio = m / 10**MOSTER_LOG_M1
    return m * 2.0 * MOSTER_N / (ratio ** (-MOSTER_BETA) + ratio**MOSTER_GAMMA)


def galaxy_half_mass_radius(mstar):
    """Median 3D half-mass radius [Mpc] (Shen et al. 2003 R50, × 4/3 for 3D)."""
    r50_kpc = SIZE_B * np.asarray(mstar, dtype=float) ** SIZE_A
    return 4.0 / 3.0 * r50_kpc * 1e-3


def subhalo_mass_function(psi):
    """dN/dlnψ per host, ψ = m_sub/M200; normalised to :data:`SHMF_FRACTION` of the mass.

    Shape of Giocoli et al. 2010 (MNRAS 404, 502), ψ^−α exp(−β ψ³), with the mass
    in subhaloes of 10⁻⁵ < ψ < 1 set to 10 % (Gao et al. 2004, MNRAS 355, 819).
    """
    grid = np.logspace(np.log10(SHMF_PSI_MIN), 0.0, 2000)
    shape = grid ** (1 - SHMF_ALPHA) * np.exp(-SHMF_BETA * grid**3)
    norm = SHMF_FRACTION / np.trapezoid(shape, np.log(grid))
    psi = np.asarray(psi, dtype=float)
    return norm * psi ** (-SHMF_ALPHA) * np.exp(-SHMF_BETA * psi**3)


def subhalo_number_density(x):
    """Unnormalised number density of subhaloes at x = r/R200 (Einasto, Springel et al. 2008)."""
    a = SUBHALO_EINASTO_ALPHA
    return np.exp(-2.0 / a * ((np.asarray(x, dtype=float) / SUBHALO_EINASTO_X2) ** a - 1.0))


def halo_bias(m200):
    """Linear halo bias (Tinker et al. 2010, colossus ``tinker10``) of M200c [M☉]."""
    from colossus.lss import bias

    colossus_cosmology()
    return bias.haloBias(np.atleast_1d(np.asarray(m200, dtype=float)) * h(), 0.0, mdef="200c")


def xi_linear(r):
    """Linear matter correlation function at z = 0, r in Mpc (colossus)."""
    cosmo = colossus_cosmology()
    return cosmo.correlationFunction(np.asarray(r, dtype=float) * h(), 0.0)


def compton_y_per_particle(mass, temperature):
    """σ_T k T/(m_e c²) · m/(μ_e m_p) [Mpc²]: eq. 1 of the paper, one gas particle."""
    n_e = np.asarray(mass, dtype=float) * MSUN_G / (MU_E * M_PROTON_G)
    return _SIGMA_T_KB_MEC2 * np.asarray(temperature, dtype=float) * n_e / MPC_CM**2


def bremsstrahlung_proxy(mass, density, temperature):
    """L_X proxy Σ m ρ T^½ [M☉² Mpc⁻³ K^½]: the volume integral of ρ² T^½ (bremsstrahlung)."""
    return np.asarray(mass, dtype=float) * np.asarray(density) * np.sqrt(np.asarray(temperature))


def relations_table() -> dict:
    """Every relation and constant above, for ``synth.json``."""
    return {
        "concentration": {"model": "Diemer & Joyce 2019 (colossus diemer19), c200c",
                          "scatter_dex": CONCENTRATION_SCATTER_DEX},
        "shape": {"model": "Jing & Suto 2002: <s> = 0.54 (M/M_nl)^-0.05, q ~ U(s,1)",
                  "s_mean": SHAPE_S_MEAN, "s_slope": SHAPE_S_SLOPE, "s_sigma": SHAPE_S_SIGMA,
                  "gas_axis_ratios": "square root of the dark-matter ones (rounder gas)"},
        "hot_gas_fraction_500": {"model": "Vikhlinin et al. 2009: f = (0.125 + 0.037 log10 "
                                          "(M500 h/1e15)) (h/0.72)^-1.5; tangent power law "
                                          "below 1e13 Msun",
                                 "norm": FGAS_V09_NORM, "per_dex": FGAS_V09_PER_DEX,
                                 "h_ref": FGAS_V09_H, "m_min": FGAS_V09_M_MIN,
                                 "scatter_dex": FGAS_SCATTER_DEX, "cap": "0.9 Ob/Om"},
        "temperature": {"model": "Arnaud, Pointecouteau & Pratt 2005 M500-T",
                        "norm_h70_msun": MT_NORM, "slope": MT_SLOPE,
                        "scatter_dex": T_SCATTER_DEX,
                        "profile": "Vikhlinin et al. 2006 eq. 8 (no central dip if non-cool-core)"},
        "gas_density": {"model": "Vikhlinin et al. 2006 eq. 3, one beta component",
                        "cool_core": GAS_SHAPE[True], "non_cool_core": GAS_SHAPE[False],
                        "x_c_scatter_dex": GAS_XC_SCATTER_DEX, "beta_sigma": GAS_BETA_SIGMA,
                        "x_c_mass_scaling": {"pivot_msun": GAS_XC_PIVOT, "slope": GAS_XC_SLOPE,
                                             "max": GAS_XC_MAX},
                        "drawn_at": "the halo's realised spherical M500 (DM and star particles + "
                                    "the gas model), not the NFW M500",
                        "cool_core_fraction": COOL_CORE_FRACTION},
        "metallicity": {"model": "0.3 Zsun + central excess 0.3 (CC) / 0.1 (NCC) Zsun exp(-r/0.1R500)",
                        "z_sun": Z_SUN},
        "stellar_mass": {"model": "Moster, Naab & White 2013 z=0, M200c",
                         "log_m1": MOSTER_LOG_M1, "n": MOSTER_N, "beta": MOSTER_BETA,
                         "gamma": MOSTER_GAMMA, "scatter_dex": SHMR_SCATTER_DEX,
                         "satellites": "same relation at infall mass = m_sub / "
                                       f"{SUBHALO_STRIPPED_FRACTION}"},
        "galaxy_size": {"model": "Shen et al. 2003 early types, R50 = b M*^a kpc, 3D = 4/3 R50, "
                                 "Hernquist truncated at 10 a",
                        "a": SIZE_A, "b": SIZE_B, "scatter_dex": SIZE_SCATTER_DEX},
        "subhalo_mass_function": {"model": "psi^-alpha exp(-beta psi^3) (Giocoli et al. 2010)",
                                  "alpha": SHMF_ALPHA, "beta": SHMF_BETA,
                                  "mass_fraction": SHMF_FRACTION, "psi_min": SHMF_PSI_MIN},
        "subhalo_positions": {"model": "Einasto (Springel et al. 2008)",
                              "alpha": SUBHALO_EINASTO_ALPHA, "r_minus2_over_r200": SUBHALO_EINASTO_X2},
        "mass_function": {"model": "Tinker et al. 2008 (colossus tinker08), M200c"},
        "halo_bias": {"model": "Tinker et al. 2010 (colossus tinker10)"},
        "gas_composition": {"X": X_HYDROGEN, "mu_e": MU_E, "mu_i": MU_I,
                            "electron_abundance": ELECTRON_ABUNDANCE},
    }
