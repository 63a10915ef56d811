"""Unit conversions shared by the snapshot and halo-catalogue readers.

All three HDF5 conventions store a value ``x`` with per-dataset factors such that
the *physical* CGS value is ``x · c · a^α · h^β`` (EAGLE: ``CGSConversionFactor``,
``aexp-scale-exponent``, ``h-scale-exponent``; GADGET-4: ``to_cgs``, ``a_scaling``,
``h_scaling``; SWIFT: ``Conversion factor to physical CGS (including cosmological
corrections)`` etc., see :mod:`cmcore.readers.swift`).  Comoving quantities
(positions, smoothing lengths, halo radii) are kept comoving in memory by
leaving the ``a^α`` factor out.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..errors import FileFormatError

#: 1 Mpc in cm (IAU 2015: 1 pc = 648000/π au, au = 1.495978707e13 cm).
MPC_CM = 3.0856775814913673e24
#: Solar mass in g (IAU 2015 nominal GM☉ / CODATA 2018 G).
MSUN_G = 1.988409870698051e33
#: One Julian year in s.
YEAR_S = 3.15576e7
#: Proton mass in g (CODATA 2018).
M_PROTON_G = 1.67262192369e-24
#: Boltzmann constant in erg/K (exact, SI 2019).
K_BOLTZMANN_CGS = 1.380649e-16
#: Primordial hydrogen mass fraction assumed when a file gives none.
X_HYDROGEN = 0.76

#: In-memory target unit of each kind of quantity, in CGS.
CGS_PER_UNIT = {
    "length": MPC_CM,               # Mpc
    "mass": MSUN_G,                 # M☉
    "density": MSUN_G / MPC_CM**3,  # M☉ / Mpc³
    "sfr": MSUN_G / YEAR_S,         # M☉ / yr
    "temperature": 1.0,             # K
    "energy_per_mass": 1.0,         # erg / g = (cm/s)²
    "luminosity": 1.0,              # erg / s
    "none": 1.0,
}


def conversion_factor(
    cgs: float, a_exp: float, h_exp: float, *, a: float, h: float, kind: str, comoving: bool
) -> float:
    """Return the factor that takes stored values to the in-memory unit.

    Parameters
    ----------
    cgs, a_exp, h_exp : float
        The dataset's CGS factor and its exponents of a and h.
    a, h : float
        Scale factor and dimensionless Hubble parameter of the file.
    kind : str
        Key of :data:`CGS_PER_UNIT` (target unit).
    comoving : bool
        Keep the quantity comoving (omit ``a^a_exp``), as for positions.

    Returns
    -------
    float
        ``cgs · h^h_exp · (1 if comoving else a^a_exp) / CGS_PER_UNIT[kind]``.
    """
    factor = float(cgs) * float(h) ** float(h_exp)
    if not comoving:
        factor *= float(a) ** float(a_exp)
    return factor / CGS_PER_UNIT[kind]


def attribute(attrs: Mapping, names: tuple[str, ...], where: str) -> float:
    """Return the first attribute among ``names`` as a float.

    Raises
    ------
    FileFormatError
        When none of them is present: the unit convention is unknown and is
        never guessed.
    """
    for name in names:
        if name in attrs:
            value = np.asarray(attrs[name]).ravel()
            return float(value[0])
    raise FileFormatError(
        f"{where} has no unit attribute {' / '.join(names)}: unknown unit convention, "
        "refusing to guess"
    )


def mean_molecular_weight(electron_abundance: np.ndarray | None, x_h: float = X_HYDROGEN):
    """Mean molecular weight μ of hydrogen–helium gas.

    μ = 4 / (1 + 3X + 4X·x_e) with x_e = n_e/n_H (e.g. Springel et al. 2001,
    GADGET's ``convert_u_to_temp``).  Without ``electron_abundance`` the gas is
    taken as fully ionised, x_e = 1 + 2·Y/(4X) = (1 + X)/(2X), which gives
    μ = 4/(3 + 5X) ≈ 0.588 for X = 0.76.

    Parameters
    ----------
    electron_abundance : ndarray or None
        n_e/n_H per particle.
    x_h : float
        Hydrogen mass fraction.
    """
    if electron_abundance is None:
        x_e = (1.0 + x_h) / (2.0 * x_h)
    else:
        x_e = np.asarray(electron_abundance, dtype=np.float64)
    return 4.0 / (1.0 + 3.0 * x_h + 4.0 * x_h * x_e)


def temperature_from_internal_energy(
    u_cgs: np.ndarray, electron_abundance: np.ndarray | None, gamma: float = 5.0 / 3.0
) -> np.ndarray:
    """Gas temperature from the specific internal energy.

    T = (γ − 1) · u · μ m_p / k_B.

    Parameters
    ----------
    u_cgs : ndarray
        Specific internal energy [erg/g], physical.
    electron_abundance : ndarray or None
        n_e/n_H; ``None`` assumes fully ionised primordial gas.
    gamma : float
        Adiabatic index.
    """
    mu = mean_molecular_weight(electron_abundance)
    return (gamma - 1.0) * np.asarray(u_cgs, dtype=np.float64) * mu * M_PROTON_G / K_BOLTZMANN_CGS
