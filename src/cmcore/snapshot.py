"""The one in-memory form of a simulation snapshot.

Every reader in :mod:`cmcore.readers` returns a :class:`Snapshot`; everything
downstream (halo finding, observables, rendering) reads particles only from it.

Units (``docs/internals.md``): positions, smoothing lengths and the box size in
comoving Mpc (no h); masses in M☉ (no h); gas ``density`` in *physical*
M☉ Mpc⁻³; temperature in K; luminosities in erg s⁻¹; star formation rate in
M☉ yr⁻¹; metallicity as a metal mass fraction; electron abundance as n_e/n_H.
``smoothing_length`` is the kernel support radius H (the kernel vanishes
beyond H).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from astropy.cosmology import FLRW

from .errors import InputError

#: Particle-type keys a :class:`Snapshot` may hold.
PARTICLE_TYPES = ("gas", "dm", "stars")

#: Optional per-particle fields and their units (in-memory convention).
FIELD_UNITS = {
    "density": "Msun / Mpc^3 (physical)",
    "temperature": "K",
    "smoothing_length": "Mpc (comoving, kernel support radius H)",
    "metallicity": "metal mass fraction",
    "electron_abundance": "n_e / n_H",
    "star_formation_rate": "Msun / yr",
    "luminosity_soft": "erg / s",
    "luminosity_bol": "erg / s",
    "potential": "as stored (only its minimum is used)",
}


@dataclass
class ParticleData:
    """Particles of one type.

    Parameters
    ----------
    positions : ndarray, shape (N, 3)
        Comoving positions [Mpc], float32 or float64 as stored.
    masses : ndarray, shape (N,)
        Particle masses [M☉]; stored as float64.
    fields : dict of str to ndarray
        Optional per-particle fields, each with first dimension N; names and
        units in :data:`FIELD_UNITS`.
    name : str
        Type name used in error messages (``"gas"``, ``"dm"``, ``"stars"``).
    """

    positions: np.ndarray
    masses: np.ndarray
    fields: dict[str, np.ndarray] = field(default_factory=dict)
    name: str = "particles"

    def __post_init__(self) -> None:
        self.positions = np.asarray(self.positions)
        if self.positions.ndim != 2 or self.positions.shape[1] != 3:
            raise InputError(
                f"{self.name} positions must have shape (N, 3), got {self.positions.shape}"
            )
        if self.positions.dtype not in (np.float32, np.float64):
            self.positions = self.positions.astype(np.float64)
        n = self.positions.shape[0]
        self.masses = np.asarray(self.masses, dtype=np.float64)
        if self.masses.shape != (n,):
            raise InputError(
                f"{self.name} masses must have shape ({n},), got {self.masses.shape}"
            )
        for key, values in self.fields.items():
            values = np.asarray(values)
            if values.shape[:1] != (n,):
                raise InputError(
                    f"{self.name} field {key!r} has {values.shape[:1]} rows, expected {n}"
                )
            self.fields[key] = values

    def __len__(self) -> int:
        return int(self.positions.shape[0])

    def __contains__(self, key: object) -> bool:
        return key in self.fields

    def __getitem__(self, key: str) -> np.ndarray:
        """Return the field ``key``; :class:`InputError` naming it when absent."""
        try:
            return self.fields[key]
        except KeyError:
            have = ", ".join(sorted(self.fields)) or "none"
            raise InputError(
                f"{self.name} particles have no {key!r} field (available: {have})"
            ) from None


@dataclass
class Snapshot:
    """A periodic simulation box at one time.

    Parameters
    ----------
    particles : dict of str to ParticleData
        Keys among ``"gas"``, ``"dm"``, ``"stars"``.
    boxsize : float
        Side of the periodic box [comoving Mpc].
    h : float
        Dimensionless Hubble parameter, H0 = 100 h km s⁻¹ Mpc⁻¹.
    scale_factor : float
        Expansion factor a = 1/(1+z).
    redshift : float
        Redshift z.
    cosmology : astropy.cosmology.FLRW
        Built from the file's own parameters.
    flavour : str
        ``"eagle"``, ``"gadget4"``, ``"swift"`` (or ``"synthetic"``).
    path : str
        File the snapshot was read from (the first file of a multi-file one).
    """

    particles: dict[str, ParticleData]
    boxsize: float
    h: float
    scale_factor: float
    redshift: float
    cosmology: FLRW
    flavour: str
    path: str

    def __post_init__(self) -> None:
        unknown = set(self.particles) - set(PARTICLE_TYPES)
        if unknown:
            raise InputError(
                f"unknown particle type(s) {sorted(unknown)}; expected among {PARTICLE_TYPES}"
            )
        for name, pdata in self.particles.items():
            pdata.name = name
        if not (np.isfinite(self.boxsize) and self.boxsize > 0):
            raise InputError(f"box size must be positive and finite, got {self.boxsize}")
        if not 0 < self.scale_factor <= 1.0 + 1e-9:
            raise InputError(f"scale factor must be in (0, 1], got {self.scale_factor}")

    def _get(self, name: str) -> ParticleData:
        try:
            return self.particles[name]
        except KeyError:
            have = ", ".join(sorted(self.particles)) or "none"
            raise InputError(
                f"snapshot {self.path or '<memory>'} has no {name} particles "
                f"(particle types read: {have})"
            ) from None

    @property
    def gas(self) -> ParticleData:
        """Gas particles; :class:`InputError` when the snapshot has none."""
        return self._get("gas")

    @property
    def dm(self) -> ParticleData:
        """Dark-matter particles; :class:`InputError` when the snapshot has none."""
        return self._get("dm")

    @property
    def stars(self) -> ParticleData:
        """Star particles; :class:`InputError` when the snapshot has none."""
        return self._get("stars")

    @property
    def total_mass(self) -> float:
        """Total mass of all particles read [M☉]."""
        return float(sum(p.masses.sum() for p in self.particles.values()))
