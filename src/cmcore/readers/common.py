"""The reading engine shared by every flavour.

A flavour module supplies a :class:`Flavour`: the header (box, h, a, z,
cosmology), the dataset names of each in-memory field and how to turn a
dataset's attributes into ``(cgs, a_exp, h_exp)``.  :func:`read` then reads
only the requested datasets of the requested particle types from every file,
converts them to the units of ``docs/internals.md`` and checks them for
non-finite values.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from astropy.cosmology import FLRW, FlatLambdaCDM, LambdaCDM

from ..errors import FileFormatError, InputError
from ..snapshot import PARTICLE_TYPES, ParticleData, Snapshot
from .files import open_hdf5
from .units import conversion_factor, temperature_from_internal_energy

#: HDF5 group of each in-memory particle type (GADGET numbering).
PART_TYPE = {"gas": 0, "dm": 1, "stars": 4}

#: In-memory field → (unit kind, comoving).  ``potential`` is kept as stored.
FIELD_KIND = {
    "density": ("density", False),
    "temperature": ("temperature", False),
    "smoothing_length": ("length", True),
    "metallicity": ("none", False),
    "electron_abundance": ("none", False),
    "star_formation_rate": ("sfr", False),
    "luminosity_soft": ("luminosity", False),
    "luminosity_bol": ("luminosity", False),
    "potential": ("none", False),
}

#: Particle types of which a requested field is required; other types read it where present.
FIELD_OWNERS = {key: ("gas",) for key in FIELD_KIND} | {"potential": tuple(PART_TYPE)}


@dataclass
class Header:
    """What a flavour reads from the first file's metadata."""

    boxsize: float  # comoving Mpc
    h: float
    scale_factor: float
    redshift: float
    cosmology: FLRW
    num_part_total: np.ndarray  # per GADGET type, any length
    mass_table: np.ndarray  # per GADGET type [M☉]; 0 where masses are stored per particle


@dataclass
class Flavour:
    """How one file convention is read.

    Attributes
    ----------
    name : str
        Flavour name stored in :attr:`Snapshot.flavour`.
    header : callable
        ``header(f) -> Header`` from the first open file.
    units : callable
        ``units(dset) -> (cgs, a_exp, h_exp)``; raises :class:`FileFormatError`
        when the dataset has no unit information.
    names : mapping
        In-memory name (``"coordinates"``, ``"masses"`` and the keys of
        :data:`FIELD_KIND`) → candidate dataset names, first found wins.
        ``"internal_energy"`` lets the temperature be derived.
    smoothing_scale : float
        Factor from the stored smoothing length to the kernel support radius H.
    """

    name: str
    header: Callable[[h5py.File], Header]
    units: Callable[[h5py.Dataset], tuple[float, float, float]]
    names: Mapping[str, Sequence[str]]
    smoothing_scale: float = 1.0


def build_cosmology(h: float, omega_m: float, omega_lambda: float, omega_b: float | None) -> FLRW:
    """Astropy ΛCDM from a file's parameters (no radiation, Tcmb0 = 0).

    ``FlatLambdaCDM`` when Ω_m + Ω_Λ = 1 to 1e-6, otherwise ``LambdaCDM``.
    """
    if not (h > 0 and omega_m > 0):
        raise FileFormatError(f"unphysical cosmology in file: h = {h}, Omega_m = {omega_m}")
    ob = float(omega_b) if omega_b else 0.0
    if abs(omega_m + omega_lambda - 1.0) < 1e-6:
        return FlatLambdaCDM(H0=100.0 * h, Om0=omega_m, Ob0=ob)
    return LambdaCDM(H0=100.0 * h, Om0=omega_m, Ode0=omega_lambda, Ob0=ob)


def scalar(attrs: Mapping, name: str, where: str) -> float:
    """Attribute ``name`` as a float (first element of an array attribute)."""
    if name not in attrs:
        raise FileFormatError(f"{where} lacks attribute {name!r}")
    return float(np.asarray(attrs[name]).ravel()[0])


#: Rows read at a time when a region is selected (bounds the memory of a region read).
CHUNK_ROWS = 1 << 22


def _datasets(files: Sequence[Path], group: str, name: str, counts: Sequence[int]):
    """Yield ``(file index, path, dataset)`` for each file holding particles of ``group``."""
    for i, (path, n) in enumerate(zip(files, counts)):
        if n == 0:
            continue
        with open_hdf5(path) as f:
            if group not in f or name not in f[group]:
                raise FileFormatError(f"{path}: {group}/{name} is missing in this file of the snapshot")
            dset = f[group][name]
            if dset.shape[:1] != (n,):
                raise FileFormatError(f"{path}: {group}/{name} has {dset.shape[:1]} rows, header says {n}")
            yield i, path, dset


def _rows(path: Path, dset: h5py.Dataset, start: int, stop: int, dtype=None) -> np.ndarray:
    try:
        if dtype is not None and dset.dtype != dtype:
            return dset.astype(dtype)[start:stop]  # converted by HDF5 chunk by chunk: no full-size copy
        return dset[start:stop]
    except OSError as exc:
        raise FileFormatError(f"{path}: cannot read {dset.name} (truncated?): {exc}") from None


def _read_concat(files: Sequence[Path], group: str, name: str, counts: Sequence[int], masks=None, dtype=None):
    """Concatenate ``group/name`` over files, keeping only the rows of ``masks`` when given.

    Returns ``(array, attributes of the first file's dataset)``.  With masks (one
    boolean array per file) the dataset is read :data:`CHUNK_ROWS` rows at a
    time, so that only the selection is held in memory.  With ``dtype`` the
    values are converted to it as they are read.
    """
    parts, attrs, empty = [], None, None
    for i, path, dset in _datasets(files, group, name, counts):
        if attrs is None:
            attrs, empty = dict(dset.attrs), np.zeros((0, *dset.shape[1:]), dtype or dset.dtype)
        if masks is None:
            parts.append(_rows(path, dset, 0, dset.shape[0], dtype))
            continue
        if isinstance(masks[i], slice):
            if masks[i].stop > masks[i].start:
                parts.append(_rows(path, dset, masks[i].start, masks[i].stop, dtype))
            continue
        for start in range(0, dset.shape[0], CHUNK_ROWS):
            keep = masks[i][start: start + CHUNK_ROWS]
            if keep.any():
                parts.append(_rows(path, dset, start, start + CHUNK_ROWS, dtype)[keep])
    if attrs is None:
        raise FileFormatError(f"{files[0]}: no {group}/{name} in any file")
    if len(parts) == 1:
        return parts[0], attrs
    return (np.concatenate(parts) if parts else empty), attrs


def _first_attrs(files, group, name, counts) -> dict:
    for _, _, dset in _datasets(files, group, name, counts):
        return dict(dset.attrs)
    raise FileFormatError(f"{files[0]}: no {group}/{name} in any file")


def _row_slices(counts: Sequence[int], rows: tuple[int, int]) -> list[slice]:
    """Per-file slices of the particles ``rows[0]:rows[1]`` counted over the files in order."""
    slices, first = [], 0
    for n in counts:
        lo, hi = max(rows[0] - first, 0), min(rows[1] - first, n)
        slices.append(slice(lo, hi) if hi > lo else slice(0, 0))
        first += n
    return slices


def _selected(mask) -> int:
    return mask.stop - mask.start if isinstance(mask, slice) else int(mask.sum())


def _region_masks(files, group, name, counts, factor, region, boxsize) -> list[np.ndarray]:
    """Per-file masks of the particles inside the periodic box ``region`` = (centre, half widths)."""
    centre, half = region
    masks = [np.zeros(n, dtype=bool) for n in counts]
    for i, path, dset in _datasets(files, group, name, counts):
        for start in range(0, dset.shape[0], CHUNK_ROWS):
            d = _rows(path, dset, start, start + CHUNK_ROWS).astype(np.float64) * factor - centre
            d -= boxsize * np.round(d / boxsize)
            masks[i][start: start + len(d)] = np.all(np.abs(d) <= half, axis=1)
    return masks


class _Attrs:
    """Stand-in for an h5py dataset in ``Flavour.units`` (name + attributes)."""

    def __init__(self, name: str, attrs: Mapping):
        self.name, self.attrs = name, attrs


def read(
    files: Sequence[Path],
    flavour: Flavour,
    *,
    particle_types: Sequence[str] | None,
    fields: Sequence[str] | None,
    optional_fields: Sequence[str],
    luminosity_datasets: Mapping[str, str],
    drop_nonfinite: bool,
    region: tuple[np.ndarray, np.ndarray] | None,
    rows: tuple[int, int] | None = None,
    single_precision_positions: bool = False,
) -> Snapshot:
    """Read ``files`` with ``flavour``'s conventions (see :func:`cmcore.readers.read_snapshot`)."""
    bad = [k for k in (*(fields or ()), *optional_fields) if k not in FIELD_KIND]
    if bad:
        raise InputError(f"unknown field(s) {bad}; choose among {sorted(FIELD_KIND)}")
    with open_hdf5(files[0]) as f:
        header = flavour.header(f)
    counts = []
    for path in files:
        with open_hdf5(path) as f:
            if "Header" not in f or "NumPart_ThisFile" not in f["Header"].attrs:
                raise FileFormatError(f"{path}: no Header/NumPart_ThisFile")
            counts.append(np.asarray(f["Header"].attrs["NumPart_ThisFile"], dtype=np.int64))
    total = np.zeros(max(len(c) for c in counts), dtype=np.int64)
    for c in counts:
        total[: len(c)] += c
    if header.num_part_total.size and np.any(header.num_part_total[: total.size] != total[: header.num_part_total.size]):
        raise FileFormatError(
            f"{files[0]}: NumPart_Total {header.num_part_total.tolist()} does not match the files' "
            f"NumPart_ThisFile sum {total.tolist()} (missing or truncated files?)"
        )
    available = [t for t in PARTICLE_TYPES if PART_TYPE[t] < total.size and total[PART_TYPE[t]] > 0]
    if particle_types is None:
        types = available
        ignored = [
            f"{total[i]} of PartType{i}" for i in range(total.size)
            if total[i] > 0 and i not in PART_TYPE.values()
        ]
        if ignored:
            warnings.warn(f"{files[0]}: ignoring particles the in-memory form has no place for: {', '.join(ignored)}", stacklevel=4)
    else:
        missing = [t for t in particle_types if t not in available]
        if missing:
            raise InputError(
                f"{files[0]} has no {' or '.join(missing)} particles "
                f"(it has: {', '.join(available) or 'none'})"
            )
        types = list(particle_types)
    if not types:
        raise InputError(f"{files[0]} holds no gas, dark-matter or star particles")

    particles: dict[str, ParticleData] = {}
    for ptype in types:
        itype = PART_TYPE[ptype]
        particles[ptype] = _read_type(
            files, flavour, header, ptype, itype,
            [int(c[itype]) if itype < len(c) else 0 for c in counts],
            fields, optional_fields, luminosity_datasets if ptype == "gas" else {}, drop_nonfinite,
            region, rows, single_precision_positions,
        )
    return Snapshot(
        particles=particles,
        boxsize=header.boxsize,
        h=header.h,
        scale_factor=header.scale_factor,
        redshift=header.redshift,
        cosmology=header.cosmology,
        flavour=flavour.name,
        path=str(files[0]),
    )


def _read_type(files, flavour, header, ptype, itype, counts, fields, optional, lum, drop_nonfinite, region,
               rows=None, single_precision_positions=False):
    group = f"PartType{itype}"
    with open_hdf5(files[int(np.argmax(counts))]) as f:
        names_in_file = set(f[group].keys()) if group in f else set()

    def candidates(key):
        return [n for n in flavour.names.get(key, ()) if n in names_in_file]

    def factor_of(dataset: str, attrs: Mapping, kind: str, comoving: bool) -> float:
        cgs, a_exp, h_exp = flavour.units(_Attrs(f"{group}/{dataset}", attrs))
        return conversion_factor(cgs, a_exp, h_exp, a=header.scale_factor, h=header.h, kind=kind, comoving=comoving)

    def load(dataset: str, kind: str, comoving: bool, dtype=None):
        raw, attrs = _read_concat(files, group, dataset, counts, masks, dtype)
        factor = factor_of(dataset, attrs, kind, comoving)
        # in place on the freshly read array: one copy of a large dataset in memory, not three
        if kind == "length" and raw.dtype == np.float32:
            raw *= np.float32(factor)
            return raw, f"{group}/{dataset}"
        values = raw if raw.dtype == np.float64 else raw.astype(np.float64)
        values *= factor
        return values, f"{group}/{dataset}"

    arrays: dict[str, tuple[np.ndarray, str]] = {}
    coord = candidates("coordinates")
    if not coord:
        raise FileFormatError(f"{files[0]}: {group} has no Coordinates")
    masks = None
    if region is not None:
        to_mpc = factor_of(coord[0], _first_attrs(files, group, coord[0], counts), "length", True)
        masks = _region_masks(files, group, coord[0], counts, to_mpc, region, header.boxsize)
    elif rows is not None:
        masks = _row_slices(counts, rows)
    n = sum(counts) if masks is None else sum(_selected(m) for m in masks)
    arrays["positions"] = load(coord[0], "length", True, np.float32 if single_precision_positions else None)
    mass = candidates("masses")
    if mass:
        arrays["masses"] = load(mass[0], "mass", False)
    elif itype < header.mass_table.size and header.mass_table[itype] > 0:
        # one mass for all: a read-only broadcast view, not n copies of it
        arrays["masses"] = (np.broadcast_to(np.float64(header.mass_table[itype]), (n,)), "Header/MassTable")
    else:
        raise FileFormatError(f"{files[0]}: {group} has no Mass(es) dataset and MassTable[{itype}] is 0")

    required = [k for k in fields if ptype in FIELD_OWNERS[k]] if fields is not None else []
    wanted = list(dict.fromkeys([*fields, *optional])) if fields is not None else list(FIELD_KIND)
    for key in wanted:
        if key.startswith("luminosity"):
            continue
        kind, comoving = FIELD_KIND[key]
        found = candidates(key)
        if found:
            arr, where = load(found[0], kind, comoving)
            if key == "metallicity" and arr.ndim == 2:
                arr = arr[:, 0]  # GIZMO/FIRE: column 0 is the total metal mass fraction
            if key == "smoothing_length":
                arr = arr * flavour.smoothing_scale
            if key == "star_formation_rate":
                arr = np.maximum(arr, 0.0)  # negative values flag past star formation
            arrays[key] = (arr, where)
        elif key == "temperature" and candidates("internal_energy"):
            u, where = load(candidates("internal_energy")[0], "energy_per_mass", False)
            ne = None
            if candidates("electron_abundance"):
                ne = load(candidates("electron_abundance")[0], "none", False)[0]
            else:
                warnings.warn(
                    f"{files[0]}: no ElectronAbundance; temperature assumes fully ionised "
                    "primordial gas (X = 0.76, mu = 0.588)",
                    stacklevel=5,
                )
            arrays[key] = (temperature_from_internal_energy(u, ne), where)
        elif key in required:
            raise InputError(f"{files[0]}: {ptype} particles ({group}) have no {key!r} dataset")
    for key, dataset in lum.items():
        if dataset not in names_in_file:
            raise InputError(f"{files[0]}: luminosity dataset {group}/{dataset} not found")
        arrays[key] = load(dataset, "luminosity", False)

    bad = np.zeros(n, dtype=bool)
    for key, (arr, where) in arrays.items():
        finite = np.isfinite(arr) if arr.ndim == 1 else np.isfinite(arr).all(axis=1)
        nbad = int(n - finite.sum())
        if nbad:
            if not drop_nonfinite:
                raise InputError(
                    f"{files[0]}: {nbad} non-finite (NaN/inf) value(s) in {where}; "
                    "pass drop_nonfinite=True to drop those particles"
                )
            warnings.warn(f"{files[0]}: dropping {nbad} {ptype} particle(s) with NaN/inf in {where}", stacklevel=5)
            bad |= ~finite
    keep = ~bad if bad.any() else slice(None)
    out = {k: v[0][keep] for k, v in arrays.items()}
    positions, masses = out.pop("positions"), out.pop("masses")
    return ParticleData(positions, masses, out, name=ptype)
