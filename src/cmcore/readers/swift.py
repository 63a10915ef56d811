"""SWIFT snapshots.

Each dataset carries ``Conversion factor to CGS (not including cosmological
corrections)``, ``a-scale exponent`` and ``h-scale exponent`` (zero in SWIFT:
its units contain no h): value_cgs,physical = stored · factor · a^(a-scale
exponent) (SWIFT documentation, "Snapshots"; swiftsimio).  ``Header/BoxSize``
is comoving, in the snapshot length unit ``Units/Unit length in cgs (U_L)``;
``Header/Scale-factor`` and ``Header/Redshift`` give a and z; ``/Cosmology``
gives ``h`` (else ``H0 [internal units]`` with ``Units/Unit time in cgs (U_t)``),
``Omega_m``, ``Omega_lambda``, ``Omega_b`` (radiation is ignored in the astropy
cosmology).  ``SmoothingLengths`` stores the kernel smoothing
length h; the support radius is H = γ_K h with ``HydroScheme/Kernel gamma``.
Negative ``StarFormationRates`` (SWIFT's flag for the last star-forming time)
read as zero.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from ..errors import FileFormatError
from ..snapshot import Snapshot
from . import common
from .files import open_hdf5
from .units import CGS_PER_UNIT, MPC_CM, attribute

_CGS = "Conversion factor to CGS (not including cosmological corrections)"

NAMES = {
    "coordinates": ("Coordinates",),
    "masses": ("Masses",),
    "density": ("Densities",),
    "temperature": ("Temperatures",),
    "smoothing_length": ("SmoothingLengths",),
    "metallicity": ("MetalMassFractions", "SmoothedMetalMassFractions"),
    "star_formation_rate": ("StarFormationRates",),
    "potential": ("Potentials",),
}


def units(dset) -> tuple[float, float, float]:
    """``(CGS factor, a-scale exponent, h-scale exponent)`` of a SWIFT dataset."""
    where = f"dataset {dset.name}"
    return (
        attribute(dset.attrs, (_CGS,), where),
        attribute(dset.attrs, ("a-scale exponent",), where),
        attribute(dset.attrs, ("h-scale exponent",), where),
    )


def header(f: h5py.File) -> common.Header:
    """Box, h, a, z and cosmology of a SWIFT file (masses are always per particle)."""
    where = f"{f.filename}: Header/Cosmology/Units"
    if "Cosmology" not in f or "Units" not in f:
        raise FileFormatError(f"{f.filename}: SWIFT file without /Cosmology or /Units group")
    hdr, cosmo = f["Header"].attrs, f["Cosmology"].attrs
    box = np.ravel(np.asarray(hdr["BoxSize"], dtype=np.float64))
    if np.ptp(box) > 1e-6 * box.max():
        raise FileFormatError(f"{f.filename}: non-cubic box {box.tolist()} is not supported")
    length = common.scalar(f["Units"].attrs, "Unit length in cgs (U_L)", where)
    if "h" in cosmo:
        h = common.scalar(cosmo, "h", where)
    else:  # H0 [1/U_t] -> km/s/Mpc
        h0 = common.scalar(cosmo, "H0 [internal units]", where) / common.scalar(
            f["Units"].attrs, "Unit time in cgs (U_t)", where)
        h = h0 * MPC_CM / 1e5 / 100.0
    a = common.scalar(hdr, "Scale-factor", where)
    z = common.scalar(hdr, "Redshift", where)
    ob = common.scalar(cosmo, "Omega_b", where) if "Omega_b" in cosmo else None
    cosmology = common.build_cosmology(
        h, common.scalar(cosmo, "Omega_m", where), common.scalar(cosmo, "Omega_lambda", where), ob
    )
    total = np.asarray(hdr.get("NumPart_Total", []), dtype=np.int64)
    high = np.asarray(hdr.get("NumPart_Total_HighWord", np.zeros_like(total)), dtype=np.int64)
    if high.size == total.size:
        total = total + (high << 32)
    return common.Header(box[0] * length / CGS_PER_UNIT["length"], h, a, z, cosmology, total, np.zeros(0))


def read(files: Sequence[Path], **options) -> Snapshot:
    """Read a SWIFT snapshot; options as :func:`cmcore.readers.read_snapshot`."""
    with open_hdf5(files[0]) as f:
        scheme = f["HydroScheme"].attrs if "HydroScheme" in f else {}
        gamma = float(np.ravel(scheme["Kernel gamma"])[0]) if "Kernel gamma" in scheme else None
    names = dict(NAMES)
    if gamma is None:
        if options.get("fields") is not None and "smoothing_length" in options["fields"]:
            raise FileFormatError(
                f"{files[0]}: no HydroScheme/'Kernel gamma': cannot turn SmoothingLengths into "
                "the kernel support radius"
            )
        names.pop("smoothing_length")
    flavour = common.Flavour(
        name="swift", header=header, units=units, names=names,
        smoothing_scale=gamma or 1.0,
    )
    return common.read(files, flavour, **options)
