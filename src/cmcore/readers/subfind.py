"""SUBFIND / FoF group catalogues (EAGLE/BAHAMAS and GADGET-4): the columns of a halo catalogue.

EAGLE/BAHAMAS: ``FOF/GroupCentreOfPotential``, ``FOF/Group_M_Crit200``,
``FOF/Group_R_Crit200`` (and ``FOF/GroupLength``) with EAGLE unit attributes;
h, a, z and cosmology from ``/Header`` (or ``/Cosmology``).  GADGET-4:
``Group/GroupPos``, ``Group/Group_M_Crit200``, ``Group/Group_R_Crit200`` (and
``Group/GroupLen``) with ``to_cgs``/``h_scaling`` attributes, or else the GADGET
convention (comoving length/h, mass/h) in the unit system of ``/Parameters``.
Positions and radii stay comoving; masses lose their h.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import FileFormatError
from . import common
from .files import open_hdf5
from .units import CGS_PER_UNIT, attribute, conversion_factor

_DATASETS = {
    "eagle": ("FOF", "GroupCentreOfPotential", "Group_M_Crit200", "Group_R_Crit200", "GroupLength"),
    "gadget4": ("Group", "GroupPos", "Group_M_Crit200", "Group_R_Crit200", "GroupLen"),
}


def read_catalogue(files: Sequence[Path], kind: str) -> dict:
    """Read the group catalogue ``files`` of flavour ``kind`` (``"eagle"`` or ``"gadget4"``).

    Returns the keyword arguments of :class:`cmcore.halos.HaloCatalogue`
    (:func:`cmcore.halos.read_halos` builds it).
    """
    group, pos_name, m_name, r_name, len_name = _DATASETS[kind]
    with open_hdf5(files[0]) as f:
        meta = _meta(f, kind)
    h, a = meta["h"], meta["a"]
    columns: dict[str, list] = {"pos": [], "m": [], "r": [], "n": []}
    for path in files:
        with open_hdf5(path) as f:
            if group not in f or pos_name not in f[group]:
                continue  # a file of the set may hold no groups
            g = f[group]
            for key, name, unit in (("pos", pos_name, "length"), ("m", m_name, "mass"), ("r", r_name, "length")):
                if name not in g:
                    raise FileFormatError(f"{path}: {group}/{name} is missing")
                cgs, a_exp, h_exp = _units(g[name], meta, unit)
                factor = conversion_factor(cgs, a_exp, h_exp, a=a, h=h, kind=unit, comoving=unit == "length")
                columns[key].append(np.asarray(g[name][()], dtype=np.float64) * factor)
            n = len(columns["m"][-1])
            columns["n"].append(g[len_name][()].astype(np.int64) if len_name in g else np.full(n, -1))
    if not columns["m"]:
        raise FileFormatError(f"{files[0]}: the catalogue holds no groups")
    pos, m200, r200, npart = (np.concatenate(columns[k]) for k in ("pos", "m", "r", "n"))
    ids = np.arange(m200.size)
    keep = m200 > 0
    return dict(
        halo_id=ids[keep], centre=np.mod(pos[keep], meta["boxsize"]), m200=m200[keep],
        r200=r200[keep], n_particles=npart[keep], boxsize=meta["boxsize"],
        redshift=meta["z"], cosmology=meta["cosmology"], source=f"{kind} group catalogue {files[0]}",
    )


def _meta(f, kind: str) -> dict:
    hdr = dict(f["Header"].attrs) if "Header" in f else {}
    params = dict(f["Parameters"].attrs) if "Parameters" in f else {}
    cosmo = dict(f["Cosmology"].attrs) if "Cosmology" in f else {}
    where = f"{f.filename}: Header"

    def get(name: str) -> float:
        for attrs in (cosmo, params, hdr):
            if name in attrs:
                return float(np.ravel(attrs[name])[0])
        raise FileFormatError(f"{f.filename}: no {name} in Header/Parameters/Cosmology")

    h = get("HubbleParam")
    a = get("ExpansionFactor") if "ExpansionFactor" in hdr else get("Time")
    z = get("Redshift")
    ob = get("OmegaBaryon") if any("OmegaBaryon" in x for x in (cosmo, params, hdr)) else None
    cosmology = common.build_cosmology(h, get("Omega0"), get("OmegaLambda"), ob)
    meta = {"h": h, "a": a, "z": z, "cosmology": cosmology, "params": params}
    if kind == "eagle":
        pos = f["FOF"]["GroupCentreOfPotential"]
        cgs, _, h_exp = _units(pos, meta, "length")
    else:
        cgs, h_exp = get("UnitLength_in_cm"), -1.0
    meta["boxsize"] = common.scalar(hdr, "BoxSize", where) * cgs * h**h_exp / CGS_PER_UNIT["length"]
    return meta


def _units(dset, meta: dict, unit: str) -> tuple[float, float, float]:
    attrs = dset.attrs
    if "CGSConversionFactor" in attrs:
        keys = ("CGSConversionFactor", "aexp-scale-exponent", "h-scale-exponent")
    elif "to_cgs" in attrs:
        keys = ("to_cgs", "a_scaling", "h_scaling")
    else:
        params = meta["params"]
        key = {"length": "UnitLength_in_cm", "mass": "UnitMass_in_g"}[unit]
        if key not in params:
            raise FileFormatError(
                f"dataset {dset.name}: no unit attributes and no /Parameters/{key}; refusing to guess"
            )
        return float(np.ravel(params[key])[0]), (1.0 if unit == "length" else 0.0), -1.0
    return tuple(attribute(attrs, (k,), f"dataset {dset.name}") for k in keys)
