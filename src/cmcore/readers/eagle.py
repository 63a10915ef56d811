"""EAGLE / BAHAMAS snapshots (GADGET-3 HDF5 with EAGLE unit attributes).

Every dataset carries ``CGSConversionFactor``, ``aexp-scale-exponent`` and
``h-scale-exponent``: value_cgs = stored · CGSConversionFactor · a^aexp · h^hexp
(The EAGLE team 2017, arXiv:1706.09899, §2.3).  Dark-matter masses come from
``Header/MassTable`` [10¹⁰ M☉/h, or ``/Units/UnitMass_in_g``/h when the file
has a ``/Units`` group].  ``SmoothingLength`` is the kernel support radius.
Cosmology from ``/Cosmology`` (EAGLE) or ``/Header`` (``HubbleParam``,
``Omega0``, ``OmegaLambda``, ``OmegaBaryon``).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from ..snapshot import Snapshot
from . import common
from .units import CGS_PER_UNIT, MSUN_G, attribute

NAMES = {
    "coordinates": ("Coordinates",),
    "masses": ("Mass", "Masses"),
    "density": ("Density",),
    "temperature": ("Temperature",),
    "internal_energy": ("InternalEnergy",),
    "smoothing_length": ("SmoothingLength",),
    "metallicity": ("SmoothedMetallicity", "Metallicity"),
    "electron_abundance": ("ElectronAbundance",),
    "star_formation_rate": ("StarFormationRate",),
    "potential": ("Potential",),
}


def units(dset) -> tuple[float, float, float]:
    """``(CGSConversionFactor, aexp-scale-exponent, h-scale-exponent)`` of a dataset."""
    where = f"dataset {dset.name}"
    return (
        attribute(dset.attrs, ("CGSConversionFactor",), where),
        attribute(dset.attrs, ("aexp-scale-exponent",), where),
        attribute(dset.attrs, ("h-scale-exponent",), where),
    )


def header(f: h5py.File) -> common.Header:
    """Box, h, a, z, cosmology and mass table of an EAGLE-style file."""
    hdr = f["Header"].attrs
    cosmo = f["Cosmology"].attrs if "Cosmology" in f else hdr
    where = f"{f.filename}: Header"
    h = common.scalar(cosmo, "HubbleParam", where)
    a = common.scalar(hdr, "ExpansionFactor" if "ExpansionFactor" in hdr else "Time", where)
    z = common.scalar(hdr, "Redshift", where)
    ob = float(np.ravel(cosmo["OmegaBaryon"])[0]) if "OmegaBaryon" in cosmo else None
    cosmology = common.build_cosmology(
        h, common.scalar(cosmo, "Omega0", where), common.scalar(cosmo, "OmegaLambda", where), ob
    )
    coords = next(
        (f[g]["Coordinates"] for g in sorted(f) if g.startswith("PartType") and "Coordinates" in f[g]),
        None,
    )
    if coords is not None:
        cgs, _, h_exp = units(coords)
    elif "Units" in f:
        cgs, h_exp = common.scalar(f["Units"].attrs, "UnitLength_in_cm", where), -1.0
    else:
        cgs, h_exp = CGS_PER_UNIT["length"], -1.0
    boxsize = common.scalar(hdr, "BoxSize", where) * cgs * h**h_exp / CGS_PER_UNIT["length"]
    mass_unit = (
        common.scalar(f["Units"].attrs, "UnitMass_in_g", where) if "Units" in f else 1e10 * MSUN_G
    )
    table = np.asarray(hdr.get("MassTable", np.zeros(6)), dtype=np.float64) * mass_unit / h / MSUN_G
    total = np.asarray(hdr.get("NumPart_Total", []), dtype=np.int64)
    high = np.asarray(hdr.get("NumPart_Total_HighWord", np.zeros_like(total)), dtype=np.int64)
    if high.size == total.size:
        total = total + (high << 32)
    return common.Header(boxsize, h, a, z, cosmology, total, table)


FLAVOUR = common.Flavour(name="eagle", header=header, units=units, names=NAMES)


def read(files: Sequence[Path], **options) -> Snapshot:
    """Read an EAGLE/BAHAMAS snapshot; options as :func:`cmcore.readers.read_snapshot`."""
    return common.read(files, FLAVOUR, **options)
