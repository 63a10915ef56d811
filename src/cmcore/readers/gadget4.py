"""GADGET-4 snapshots, and plain GADGET-2/3 / GIZMO HDF5 with a named unit system.

GADGET-4 (Springel et al. 2021, §8) writes ``to_cgs``, ``a_scaling`` and
``h_scaling`` on each dataset: value_cgs = stored · to_cgs · a^a_scaling ·
h^h_scaling.  The cosmology and the unit system are in ``/Parameters``
(``HubbleParam``, ``Omega0``, ``OmegaLambda``, ``OmegaBaryon``,
``UnitLength_in_cm``, ``UnitMass_in_g``, ``UnitVelocity_in_cm_per_s``); the
header may hold any number of particle types.  Masses come from
``Header/MassTable`` (code mass / h) when a type has no ``Masses`` dataset.
The temperature is derived from ``InternalEnergy`` (physical, per unit mass)
with μ from ``ElectronAbundance`` when present, else for fully ionised
primordial gas (X = 0.76) with a warning; γ = 5/3.

Files without unit attributes (GADGET-2/3, GIZMO) are read only with an
explicit ``unit_system``; the standard GADGET conventions of
:data:`GADGET_CONVENTIONS` (a and h exponents per dataset) then apply and
unlisted datasets are refused.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np

from ..errors import FileFormatError, InputError
from ..snapshot import Snapshot
from . import common
from .units import CGS_PER_UNIT, MSUN_G, attribute

NAMES = {
    "coordinates": ("Coordinates",),
    "masses": ("Masses", "Mass"),
    "density": ("Density",),
    "temperature": ("Temperature",),
    "internal_energy": ("InternalEnergy",),
    "smoothing_length": ("SmoothingLength",),
    "metallicity": ("Metallicity",),
    "electron_abundance": ("ElectronAbundance",),
    "star_formation_rate": ("StarFormationRate",),
    "potential": ("Potential",),
}

#: Plain GADGET/GIZMO conventions: dataset → (length, mass, velocity exponents
#: of the code units, a exponent, h exponent).  SFR is in M☉/yr, metallicity
#: and electron abundance are dimensionless, the potential is kept as stored.
GADGET_CONVENTIONS = {
    "Coordinates": (1, 0, 0, 1.0, -1.0),
    "Masses": (0, 1, 0, 0.0, -1.0),
    "Density": (-3, 1, 0, -3.0, 2.0),
    "InternalEnergy": (0, 0, 2, 0.0, 0.0),
    "SmoothingLength": (1, 0, 0, 1.0, -1.0),
    "Metallicity": (0, 0, 0, 0.0, 0.0),
    "ElectronAbundance": (0, 0, 0, 0.0, 0.0),
    "Potential": (0, 0, 2, -1.0, 0.0),
}
_UNIT_KEYS = ("UnitLength_in_cm", "UnitMass_in_g", "UnitVelocity_in_cm_per_s")


def units(dset) -> tuple[float, float, float]:
    """``(to_cgs, a_scaling, h_scaling)`` of a GADGET-4 dataset."""
    where = f"dataset {dset.name}"
    return (
        attribute(dset.attrs, ("to_cgs",), where),
        attribute(dset.attrs, ("a_scaling",), where),
        attribute(dset.attrs, ("h_scaling",), where),
    )


def _plain_units(unit_system: Mapping[str, float]):
    missing = [k for k in _UNIT_KEYS if k not in unit_system]
    if missing:
        raise InputError(f"unit_system lacks {', '.join(missing)}")
    length, mass, velocity = (float(unit_system[k]) for k in _UNIT_KEYS)

    def plain(dset) -> tuple[float, float, float]:
        name = dset.name.rsplit("/", 1)[-1]
        if name == "StarFormationRate":
            return MSUN_G / (365.25 * 86400.0), 0.0, 0.0
        if name not in GADGET_CONVENTIONS:
            raise FileFormatError(
                f"dataset {dset.name}: no unit attributes and no known GADGET convention; refusing to guess"
            )
        el, em, ev, a_exp, h_exp = GADGET_CONVENTIONS[name]
        return length**el * mass**em * velocity**ev, a_exp, h_exp

    return plain


def _header(f: h5py.File, unit_system: Mapping[str, float] | None) -> common.Header:
    hdr = f["Header"].attrs
    params = f["Parameters"].attrs if "Parameters" in f else {}
    where = f"{f.filename}: Header/Parameters"

    def get(name: str) -> float:
        return common.scalar(params if name in params else hdr, name, where)

    if "ComovingIntegrationOn" in params and int(np.ravel(params["ComovingIntegrationOn"])[0]) == 0:
        raise FileFormatError(f"{f.filename}: not a cosmological run (ComovingIntegrationOn = 0)")
    h = get("HubbleParam")
    a = common.scalar(hdr, "Time", where)
    z = common.scalar(hdr, "Redshift", where) if "Redshift" in hdr else 1.0 / a - 1.0
    if abs(a * (1.0 + z) - 1.0) > 1e-5:
        raise FileFormatError(f"{f.filename}: Time = {a} is not 1/(1+z) for Redshift = {z}")
    ob = get("OmegaBaryon") if ("OmegaBaryon" in params or "OmegaBaryon" in hdr) else None
    cosmology = common.build_cosmology(h, get("Omega0"), get("OmegaLambda"), ob)
    if unit_system is None:
        unit_system = {k: get(k) for k in _UNIT_KEYS}
    length, mass = float(unit_system["UnitLength_in_cm"]), float(unit_system["UnitMass_in_g"])
    boxsize = common.scalar(hdr, "BoxSize", where) * length / h / CGS_PER_UNIT["length"]
    table = np.asarray(hdr.get("MassTable", []), dtype=np.float64) * mass / h / MSUN_G
    total = np.asarray(hdr.get("NumPart_Total", []), dtype=np.int64)
    high = np.asarray(hdr.get("NumPart_Total_HighWord", np.zeros_like(total)), dtype=np.int64)
    if high.size == total.size:
        total = total + (high << 32)
    return common.Header(boxsize, h, a, z, cosmology, total, table)


def read(files: Sequence[Path], *, unit_system: Mapping[str, float] | None = None, **options) -> Snapshot:
    """Read a GADGET-4 snapshot, or a plain GADGET/GIZMO one when ``unit_system`` is given.

    Options as :func:`cmcore.readers.read_snapshot`.
    """
    flavour = common.Flavour(
        name="gadget4" if unit_system is None else "gadget",
        header=lambda f: _header(f, unit_system),
        units=units if unit_system is None else _plain_units(unit_system),
        names=NAMES,
    )
    return common.read(files, flavour, **options)
