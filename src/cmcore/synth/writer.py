"""Streaming writer of EAGLE-style snapshots (the contract of ``docs/internals.md``).

Particles are appended per batch to resizable, chunked datasets, so memory
does not grow with the box.  The file is written under a temporary name in the
destination folder and moved into place with :func:`os.replace` only when
complete: an interrupted run never leaves a file that looks finished.

Stored units (EAGLE): lengths in cMpc/h, masses in 10¹⁰ M☉/h, densities in
10¹⁰ h² M☉ cMpc⁻³; every dataset carries ``CGSConversionFactor``,
``aexp-scale-exponent`` and ``h-scale-exponent`` with
value_cgs = stored · CGSConversionFactor · a^aexp · h^hexp.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from astropy.cosmology import FLRW

from ..fileio import publish, temporary_path
from ..readers.units import MPC_CM, MSUN_G

#: Rows per HDF5 chunk.
CHUNK_ROWS = 65536
_MASS_UNIT = 1e10  # M☉ (/h)

#: (group, dataset) → (in-memory field, dtype, columns, CGS factor, aexp, hexp).
_DATASETS = {
    ("PartType0", "Coordinates"): ("positions", "f8", 3, MPC_CM, 1.0, -1.0),
    ("PartType0", "Mass"): ("masses", "f8", 0, _MASS_UNIT * MSUN_G, 0.0, -1.0),
    ("PartType0", "Density"): ("density", "f4", 0, _MASS_UNIT * MSUN_G / MPC_CM**3, -3.0, 2.0),
    ("PartType0", "Temperature"): ("temperature", "f4", 0, 1.0, 0.0, 0.0),
    ("PartType0", "SmoothingLength"): ("smoothing_length", "f4", 0, MPC_CM, 1.0, -1.0),
    ("PartType0", "Metallicity"): ("metallicity", "f4", 0, 1.0, 0.0, 0.0),
    ("PartType0", "ElectronAbundance"): ("electron_abundance", "f4", 0, 1.0, 0.0, 0.0),
    ("PartType0", "ParticleIDs"): ("ids", "i8", 0, 1.0, 0.0, 0.0),
    ("PartType1", "Coordinates"): ("positions", "f8", 3, MPC_CM, 1.0, -1.0),
    ("PartType1", "ParticleIDs"): ("ids", "i8", 0, 1.0, 0.0, 0.0),
    ("PartType4", "Coordinates"): ("positions", "f8", 3, MPC_CM, 1.0, -1.0),
    ("PartType4", "Mass"): ("masses", "f8", 0, _MASS_UNIT * MSUN_G, 0.0, -1.0),
    ("PartType4", "ParticleIDs"): ("ids", "i8", 0, 1.0, 0.0, 0.0),
}
#: In-memory particle type → EAGLE group and type number.
GROUPS = {"gas": ("PartType0", 0), "dm": ("PartType1", 1), "stars": ("PartType4", 4)}


class SnapshotWriter:
    """Append particles to an EAGLE-style snapshot; :meth:`close` publishes it.

    Parameters
    ----------
    path : path-like
        Final file name.
    boxsize : float
        Box side [comoving Mpc].
    cosmology : astropy.cosmology.FLRW
    redshift : float
    m_dm : float
        Dark-matter particle mass [M☉] (``MassTable[1]``).

    Notes
    -----
    Use as a context manager: on an exception the temporary file is removed.
    In-memory units follow ``docs/internals.md`` (Mpc, M☉, physical density).
    """

    def __init__(self, path, boxsize: float, cosmology: FLRW, redshift: float, m_dm: float):
        self.path = Path(path)
        self.a = 1.0 / (1.0 + redshift)
        self.h = float(cosmology.h)
        self._tmp = temporary_path(self.path)
        self._file = h5py.File(self._tmp, "w")
        self.counts = {name: 0 for name in GROUPS}
        mass_table = np.zeros(6)
        mass_table[1] = m_dm * self.h / _MASS_UNIT
        header = self._file.create_group("Header")
        for key, value in {
            "BoxSize": boxsize * self.h, "HubbleParam": self.h, "ExpansionFactor": self.a,
            "Time": self.a, "Redshift": float(redshift), "Omega0": float(cosmology.Om0),
            "OmegaLambda": float(cosmology.Ode0), "OmegaBaryon": float(cosmology.Ob0),
            "MassTable": mass_table, "NumFilesPerSnapshot": 1,
        }.items():
            header.attrs[key] = value
        cosmo = self._file.create_group("Cosmology")
        for key in ("HubbleParam", "Omega0", "OmegaLambda", "OmegaBaryon"):
            cosmo.attrs[key] = header.attrs[key]
        for (group, name), (_, dtype, cols, cgs, aexp, hexp) in _DATASETS.items():
            shape, chunks = ((0, cols), (CHUNK_ROWS, cols)) if cols else ((0,), (CHUNK_ROWS,))
            dset = self._file.require_group(group).create_dataset(
                name, shape=shape, maxshape=(None,) + shape[1:], dtype=dtype, chunks=chunks)
            dset.attrs["CGSConversionFactor"] = cgs
            dset.attrs["aexp-scale-exponent"] = aexp
            dset.attrs["h-scale-exponent"] = hexp
        self._write_counts()

    def _factor(self, cgs: float, aexp: float, hexp: float, field: str) -> float:
        """Stored value per in-memory value (comoving fields are kept comoving)."""
        memory_unit = {"positions": MPC_CM, "smoothing_length": MPC_CM, "masses": MSUN_G,
                       "density": MSUN_G / MPC_CM**3}.get(field, 1.0)
        a_part = self.a**aexp if field == "density" else 1.0
        return memory_unit / (cgs * a_part * self.h**hexp)

    def append(self, ptype: str, arrays: dict) -> None:
        """Append particles of ``ptype`` (``"gas"``, ``"dm"``, ``"stars"``).

        ``arrays`` holds ``positions`` (n, 3) [comoving Mpc], ``ids`` and, as the
        type requires, ``masses`` [M☉], ``density`` [physical M☉/Mpc³],
        ``temperature`` [K], ``smoothing_length`` [comoving Mpc],
        ``metallicity``, ``electron_abundance``.
        """
        group, _ = GROUPS[ptype]
        n = len(arrays["positions"])
        if n == 0:
            return
        start = self.counts[ptype]
        for (grp, name), (field, dtype, _, cgs, aexp, hexp) in _DATASETS.items():
            if grp != group:
                continue
            values = np.asarray(arrays[field])
            if field != "ids":
                values = values * self._factor(cgs, aexp, hexp, field)
            dset = self._file[group][name]
            dset.resize(start + n, axis=0)
            dset[start:start + n] = values.astype(dtype, copy=False)
        self.counts[ptype] = start + n

    def _write_counts(self) -> None:
        numpart = np.zeros(6, dtype=np.uint64)
        for ptype, (_, k) in GROUPS.items():
            numpart[k] = self.counts[ptype]
        header = self._file["Header"]
        header.attrs["NumPart_ThisFile"] = numpart.astype(np.int64)
        header.attrs["NumPart_Total"] = (numpart & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        header.attrs["NumPart_Total_HighWord"] = (numpart >> np.uint64(32)).astype(np.uint32)

    def close(self) -> None:
        """Write the particle counts, close and move the file into place."""
        self._write_counts()
        self._file.close()
        publish(self._tmp, self.path)

    def abort(self) -> None:
        """Close and delete the temporary file."""
        try:
            self._file.close()
        finally:
            Path(self._tmp).unlink(missing_ok=True)

    def __enter__(self) -> "SnapshotWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
