"""Cosmology helpers: astropy cosmologies to and from JSON, critical density.

Files written by cmc (halo catalogues, datasets, indexed snapshots) store the
cosmology as the JSON of :func:`cosmology_to_json` in an attribute.
"""
from __future__ import annotations

import json

import astropy.cosmology
import numpy as np
from astropy.cosmology import FLRW

from .errors import FileFormatError


def cosmology_to_json(cosmology: FLRW | None) -> str:
    """Serialise an astropy cosmology to JSON.

    The object holds ``"class"`` (the astropy class name), ``"name"`` and the
    class's parameters as plain numbers: H0 in km s⁻¹ Mpc⁻¹, Tcmb0 in K,
    m_nu in eV (``null`` when absent).  ``None`` gives ``"null"``.
    """
    if cosmology is None:
        return "null"
    out: dict = {"class": type(cosmology).__name__, "name": cosmology.name}
    for key, value in cosmology.parameters.items():
        if hasattr(value, "unit"):
            value = np.atleast_1d(value.value).tolist() if np.ndim(value) else float(value.value)
        out[key] = value
    return json.dumps(out)


def cosmology_from_json(text: str) -> FLRW | None:
    """Rebuild the cosmology written by :func:`cosmology_to_json`."""
    data = json.loads(text)
    if data is None:
        return None
    try:
        cls = getattr(astropy.cosmology, data.pop("class"))
        name = data.pop("name", None)
        return cls(name=name, **data)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise FileFormatError(f"cannot rebuild the cosmology {text!r}: {exc}") from None


def critical_density_comoving(cosmology: FLRW, redshift: float) -> float:
    """Critical density at ``redshift`` per comoving volume [M☉ / comoving Mpc³].

    ρ_crit(z) = 3 H(z)² / (8πG) (physical) times a³ = (1+z)⁻³, the factor
    that turns a physical density into mass per comoving volume.  Use it with
    comoving positions in :func:`spherical_overdensity`; r200 then comes out
    comoving and M200 is the usual (physical) M200c.
    """
    rho = cosmology.critical_density(redshift).to("Msun / Mpc3").value
    return float(rho / (1.0 + redshift) ** 3)
