"""Snapshot readers: HDF5 files of several simulation codes into one :class:`Snapshot`.

Flavours (detected from the file's unit attributes, never guessed):

``eagle``
    EAGLE/BAHAMAS (GADGET-3 HDF5): ``CGSConversionFactor``,
    ``aexp-scale-exponent``, ``h-scale-exponent`` on every dataset.
``gadget4``
    GADGET-4: ``to_cgs``, ``a_scaling``, ``h_scaling`` on every dataset, cosmology
    in ``/Parameters``.
``swift``
    SWIFT: ``Conversion factor to CGS (not including cosmological corrections)``,
    ``a-scale exponent``, ``h-scale exponent``, cosmology in ``/Cosmology``.
``gadget``
    Plain GADGET-2/3 or GIZMO HDF5 without unit attributes: read only when
    the caller names the unit system (``unit_system=``); the standard GADGET
    conventions (comoving lengths, 1/h lengths and masses) then apply.

Region reads (``region=(centre, half_width)``, a periodic box in comoving Mpc):
the coordinates of each requested type are scanned in chunks of
:data:`cmcore.readers.common.CHUNK_ROWS` rows, and every dataset is then read
chunk by chunk keeping only the selected rows, so memory holds the selection
(plus one byte per particle for the mask), not the snapshot.  The whole file
is still read from disk: there is no spatial index on disk (no use of
EAGLE's/SWIFT's hash-table or cell metadata yet).  Without ``region`` each
requested dataset is read whole.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import h5py
import numpy as np

from ..errors import FileFormatError, InputError
from ..snapshot import PARTICLE_TYPES, Snapshot
from .files import open_hdf5, snapshot_files
from .indexed import FORMAT as INDEXED_FORMAT
from .indexed import IndexedSnapshot, read_indexed

#: Flavours :func:`read_snapshot` knows.
FLAVOURS = ("eagle", "gadget4", "swift", "gadget")

def _is_indexed(f: h5py.File) -> bool:
    fmt = f.attrs.get("format", b"")
    return (fmt.decode() if isinstance(fmt, bytes) else str(fmt)) == INDEXED_FORMAT


def particle_counts(path: str | os.PathLike) -> dict[str, int]:
    """Particles of each type (``"gas"``, ``"dm"``, ``"stars"``) in a snapshot, from its headers.

    Sums ``Header/NumPart_ThisFile`` over the files of a multi-file snapshot;
    an indexed snapshot gives its own counts.
    """
    from .common import PART_TYPE

    files = snapshot_files(path)
    with open_hdf5(files[0]) as f:
        if _is_indexed(f):
            return {t: int(f[t]["masses"].shape[0]) for t in PARTICLE_TYPES if t in f}
    total: dict[str, int] = {}
    for p in files:
        with open_hdf5(p) as f:
            if "Header" not in f or "NumPart_ThisFile" not in f["Header"].attrs:
                raise FileFormatError(f"{p}: no Header/NumPart_ThisFile")
            this = np.asarray(f["Header"].attrs["NumPart_ThisFile"], dtype=np.int64)
        for t, i in PART_TYPE.items():
            if i < this.size:
                total[t] = total.get(t, 0) + int(this[i])
    return {t: n for t, n in total.items() if n > 0}


def detect_flavour(f: h5py.File) -> str | None:
    """Flavour of an open snapshot file from its unit attributes; ``None`` when it has none."""
    code = f["Code"].attrs.get("Code", b"") if "Code" in f else b""
    if (code.decode() if isinstance(code, bytes) else str(code)).upper().startswith("SWIFT"):
        return "swift"
    for group in sorted(k for k in f if k.startswith("PartType")):
        for dset in f[group].values():
            if not isinstance(dset, h5py.Dataset):
                continue
            attrs = dset.attrs
            if "CGSConversionFactor" in attrs:
                return "eagle"
            if "to_cgs" in attrs:
                return "gadget4"
            if "a-scale exponent" in attrs:
                return "swift"
    return None


def read_snapshot(
    path: str | os.PathLike,
    *,
    particle_types: Sequence[str] | None = None,
    fields: Sequence[str] | None = None,
    optional_fields: Sequence[str] = (),
    luminosity_datasets: Mapping[str, str] | None = None,
    drop_nonfinite: bool = False,
    flavour: str | None = None,
    unit_system: Mapping[str, float] | None = None,
    region: tuple[Sequence[float], float | Sequence[float]] | None = None,
    rows: tuple[int, int] | None = None,
    single_precision_positions: bool = False,
) -> Snapshot:
    """Read a snapshot file (or multi-file snapshot) into a :class:`Snapshot`.

    Parameters
    ----------
    path : path-like
        The file, any file ``name.K.hdf5`` of a multi-file snapshot, or ``name``.
    particle_types : sequence of str, optional
        Among ``"gas"``, ``"dm"``, ``"stars"``; default all present in the file.
    fields : sequence of str, optional
        Optional fields to read (names of :data:`cmcore.snapshot.FIELD_UNITS`);
        positions and masses are always read.  Default: every field the file
        has.  A requested field is required of gas particles (``"potential"``:
        of every type read) and :class:`InputError` names it when the file lacks
        it; other types get it where the file has it.  ``"temperature"`` may
        come from ``InternalEnergy``.
    optional_fields : sequence of str
        Fields read where the file has them, silently skipped where not (e.g.
        ``["potential"]`` for halo centres).
    luminosity_datasets : mapping, optional
        ``{"luminosity_soft": "<gas dataset>", "luminosity_bol": "<gas dataset>"}``:
        precomputed gas luminosities to read (converted with the file's unit
        attributes to erg/s).
    drop_nonfinite : bool
        Drop particles with NaN/inf in any dataset read (with a warning)
        instead of refusing the file.
    flavour : str, optional
        Force a flavour (one of :data:`FLAVOURS`) instead of detecting it.
    unit_system : mapping, optional
        ``UnitLength_in_cm``, ``UnitMass_in_g``, ``UnitVelocity_in_cm_per_s`` for
        files without unit attributes (flavour ``gadget``).
    region : (centre, half_width), optional
        Read only particles with ``|x − centre| ≤ half_width`` along each axis
        (minimum image, periodic); centre (3,) and half_width (scalar or (3,))
        in comoving Mpc.  Positions stay in box coordinates.  On an indexed
        snapshot (written by :func:`cmcore.indexed.write_indexed`, ``cmc
        index``) only the cells that the box overlaps are read from disk.
    rows : (start, stop), optional
        Read only particles ``start:stop`` of each type read, counted over the
        files of a multi-file snapshot in order (chunked passes over a snapshot
        too large for memory, such as ``cmc index``).  Not with ``region``.
    single_precision_positions : bool
        Positions as float32 whatever the file stores (converted as they are
        read: 12 bytes per particle instead of 24 for a float64 file), e.g. for
        halo finding in a box too large for memory; the rounding is ~6e-8 of
        the box side.

    Returns
    -------
    Snapshot
        In the units of ``docs/internals.md``.

    Raises
    ------
    FileFormatError
        Missing, non-HDF5 or truncated file; unknown flavour or unit convention.
    InputError
        Requested particles or fields absent; non-finite values (unless
        ``drop_nonfinite``).

    Examples
    --------
    A synthetic universe with one cluster in a 43 Mpc box (under a second), read
    whole, then only the gas within 5 Mpc of the cluster:

    >>> import tempfile
    >>> from cmcore.readers import read_snapshot
    >>> from cmcore.synth import generate
    >>> tmp = tempfile.TemporaryDirectory()
    >>> universe = generate("tiny", seed=1, out=tmp.name, box_size_h=30.0, n_bins=1,
    ...                     clusters_per_bin=1, field_min_mass=1e13)
    >>> snap = read_snapshot(universe.snapshot)
    >>> snap.flavour, sorted(snap.particles), round(float(snap.boxsize), 2)
    ('eagle', ['dm', 'gas', 'stars'], 43.28)
    >>> sorted(snap.gas.fields)
    ['density', 'electron_abundance', 'metallicity', 'smoothing_length', 'temperature']
    >>> centre = universe.targets["centre"][0]
    >>> near = read_snapshot(universe.snapshot, particle_types=["gas"], region=(centre, 5.0))
    >>> 0 < len(near.gas.masses) < len(snap.gas.masses)
    True
    >>> tmp.cleanup()
    """
    types = tuple(particle_types) if particle_types is not None else None
    if types is not None:
        bad = [t for t in types if t not in PARTICLE_TYPES]
        if bad:
            raise InputError(f"unknown particle type(s) {bad}; choose among {PARTICLE_TYPES}")
    luminosity_datasets = dict(luminosity_datasets or {})
    bad = [k for k in luminosity_datasets if k not in ("luminosity_soft", "luminosity_bol")]
    if bad:
        raise InputError(f"luminosity_datasets keys must be luminosity_soft/luminosity_bol, got {bad}")
    if region is not None:
        centre, half = region
        centre = np.asarray(centre, dtype=np.float64).reshape(-1)
        half = np.broadcast_to(np.asarray(half, dtype=np.float64), (3,)).copy()
        if centre.shape != (3,) or not np.all(np.isfinite(centre)) or not np.all(half > 0):
            raise InputError(f"region must be (centre (3,), positive half width), got {region!r}")
        region = (centre, half)
    if rows is not None:
        if region is not None:
            raise InputError("rows and region cannot be combined")
        if len(rows) != 2 or not 0 <= int(rows[0]) <= int(rows[1]):
            raise InputError(f"rows must be (start, stop) with 0 <= start <= stop, got {rows!r}")
        rows = (int(rows[0]), int(rows[1]))
    files = snapshot_files(path)
    with open_hdf5(files[0]) as f:
        found = detect_flavour(f)
        indexed = _is_indexed(f)
    if indexed:
        snap = read_indexed(
            files[0], particle_types=types, fields=fields, optional_fields=optional_fields,
            drop_nonfinite=drop_nonfinite, region=region, rows=rows,
        )
        if single_precision_positions:
            for part in snap.particles.values():
                part.positions = part.positions.astype(np.float32, copy=False)
        return snap
    if flavour is None:
        if found is None:
            if unit_system is None:
                raise FileFormatError(
                    f"{files[0]}: unknown snapshot flavour: no EAGLE, GADGET-4 or SWIFT unit "
                    "attributes (a plain GADGET/GIZMO file? name its code units: unit_system=..., cmc --unit-system)"
                )
            found = "gadget"
        flavour = found
    if flavour not in FLAVOURS:
        raise InputError(f"unknown flavour {flavour!r}; choose among {FLAVOURS}")
    options = dict(
        particle_types=types,
        fields=tuple(fields) if fields is not None else None,
        optional_fields=tuple(optional_fields),
        luminosity_datasets=luminosity_datasets,
        drop_nonfinite=drop_nonfinite,
        region=region,
        rows=rows,
        single_precision_positions=single_precision_positions,
    )
    if flavour == "eagle":
        from . import eagle

        return eagle.read(files, **options)
    if flavour == "swift":
        from . import swift

        return swift.read(files, **options)
    from . import gadget4

    if flavour == "gadget" and unit_system is None:
        raise InputError("flavour 'gadget' needs unit_system=... (the file has no unit attributes)")
    return gadget4.read(files, unit_system=unit_system, **options)


def snapshot_contents(path: str | os.PathLike) -> dict[str, frozenset[str]]:
    """Particle types a snapshot holds and the fields each can give, from its layout only.

    No particle data is read: the particle counts come from the headers and
    the fields from the dataset names of each ``PartType`` group, mapped to
    the in-memory names of :data:`cmcore.snapshot.FIELD_UNITS` with the
    flavour's conventions (``temperature`` also where only an internal energy
    is stored).  For checking a request before the long read.

    Returns
    -------
    dict
        ``{particle type: frozenset of field names}`` for the types with particles.
    """
    from . import eagle, gadget4, swift
    from .common import PART_TYPE

    files = snapshot_files(path)
    with open_hdf5(files[0]) as f:
        flavour = detect_flavour(f)
        indexed = _is_indexed(f)
    if indexed:
        src = IndexedSnapshot(files[0])
        return {t: frozenset(src.fields[t]) for t in src.types if src.counts[t]}
    names = {"eagle": eagle.NAMES, "swift": swift.NAMES}.get(flavour, gadget4.NAMES)
    datasets: dict[str, set[str]] = {}
    counts: dict[str, int] = {}
    for path_k in files:
        with open_hdf5(path_k) as f:
            this = np.asarray(f["Header"].attrs.get("NumPart_ThisFile", ()), dtype=np.int64)
            for ptype, itype in PART_TYPE.items():
                n = int(this[itype]) if itype < this.size else 0
                counts[ptype] = counts.get(ptype, 0) + n
                group = f"PartType{itype}"
                if n and group in f:
                    datasets.setdefault(ptype, set()).update(f[group].keys())
    out = {}
    for ptype, n in counts.items():
        if n == 0:
            continue
        have = datasets.get(ptype, set())
        keys = {k for k, cands in names.items() if any(c in have for c in cands)}
        if "internal_energy" in keys:
            keys.add("temperature")
        out[ptype] = frozenset(keys)
    return out

