"""Cosmology of the synthetic universe: astropy's WMAP9 and colossus set from it.

WMAP9 is the cosmology of BAHAMAS and of the paper (Hinshaw et al. 2013, as in
``astropy.cosmology.WMAP9``, whose ``meta`` supplies σ8 and n_s).  colossus
(Diemer 2018) is set from the very same parameters with
:func:`colossus.cosmology.cosmology.fromAstropy`, so the mass function,
concentrations and bias use exactly the snapshot's cosmology.
"""
from __future__ import annotations

from astropy.cosmology import WMAP9, FLRW

#: The cosmology of every synthetic snapshot.
COSMOLOGY: FLRW = WMAP9


def colossus_cosmology():
    """Set (once) and return the colossus cosmology built from :data:`COSMOLOGY`.

    colossus works in h-units (M☉/h, Mpc/h, kpc/h); callers convert.
    """
    from colossus.cosmology import cosmology

    name = "cmc-WMAP9"
    current = cosmology.current_cosmo
    if current is not None and current.name == name:
        return current
    return cosmology.fromAstropy(
        COSMOLOGY, sigma8=COSMOLOGY.meta["sigma8"], ns=COSMOLOGY.meta["n"], cosmo_name=name
    )


def rho_crit(redshift: float = 0.0) -> float:
    """Critical density ρ_crit(z) [physical M☉ / Mpc³] (astropy)."""
    return float(COSMOLOGY.critical_density(redshift).to("Msun / Mpc3").value)


def h() -> float:
    """Dimensionless Hubble parameter of :data:`COSMOLOGY`."""
    return float(COSMOLOGY.h)
