"""Halo catalogues: the cmc-halos file format, SUBFIND/FoF readers, spherical
overdensity masses and a friends-of-friends halo finder.

Units follow ``docs/internals.md``: centres and r200 in comoving Mpc (no h),
m200 in M☉ (no h).

Spherical overdensity (exact to the particle)
---------------------------------------------
Around a centre, sort all particles (every type) by periodic distance r_i and
let M_i be the mass with r ≤ r_i (particles at equal distance enter
together).  The mean enclosed density ρ̄_i = M_i / (4π r_i³/3) is infinite
for a particle at the centre and falls outwards.  Let k be the last particle
before the *first* one, going outwards, at which ρ̄ < Δ·ρ_crit.  Then

    M200 = M_k,   r200 = (3 M200 / (4π Δ ρ_crit))^(1/3),

which satisfies r_k ≤ r200 < r_{k+1}: M200 is exactly the mass of the
particles within r200 and the mean density within r200 is exactly Δ·ρ_crit.
Taking the first crossing (rather than the last) keeps a neighbouring halo
outside r200 from being absorbed.  When even the particles nearest the centre
fall below the threshold, M200 = r200 = 0.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import h5py
import numpy as np
from astropy.cosmology import FLRW
from .progress import progress_bar

from ._version import __version__
from .cellindex import CellIndex
from .cosmology import cosmology_from_json, cosmology_to_json, critical_density_comoving
from .fileio import atomic_write
from .errors import FileFormatError, InputError
from .snapshot import Snapshot

FORMAT_NAME = "cmc-halos"
FORMAT_VERSION = 1

_UNITS = {
    "halo_id": "",
    "centre": "Mpc (comoving)",
    "m200": "Msun",
    "r200": "Mpc (comoving)",
    "n_particles": "",
}


# ----------------------------------------------------------------- catalogue
@dataclass
class HaloCatalogue:
    """A table of haloes, sorted by ``m200`` descending.

    Parameters
    ----------
    halo_id : ndarray of int64, shape (N,)
    centre : ndarray of float64, shape (N, 3)
        Comoving Mpc.
    m200 : ndarray of float64, shape (N,)
        M☉; mass within r200 where the mean density is 200 ρ_crit(z).
    r200 : ndarray of float64, shape (N,)
        Comoving Mpc.
    n_particles : ndarray of int64, shape (N,)
        For catalogues found by cmc, the number of particles (all types)
        within r200; for SUBFIND/FoF catalogues, the FoF group length
        (−1 when the file does not give it).
    boxsize : float
        Comoving Mpc.
    redshift : float
    cosmology : astropy.cosmology.FLRW or None
    source : str
        Where the catalogue came from (snapshot path and method).
    code_version : str
    """

    halo_id: np.ndarray
    centre: np.ndarray
    m200: np.ndarray
    r200: np.ndarray
    n_particles: np.ndarray
    boxsize: float
    redshift: float
    cosmology: FLRW | None = None
    source: str = ""
    code_version: str = field(default=__version__)

    def __post_init__(self) -> None:
        self.halo_id = np.asarray(self.halo_id, dtype=np.int64).reshape(-1)
        n = self.halo_id.size
        self.centre = np.asarray(self.centre, dtype=np.float64).reshape(n, 3)
        self.m200 = np.asarray(self.m200, dtype=np.float64).reshape(n)
        self.r200 = np.asarray(self.r200, dtype=np.float64).reshape(n)
        self.n_particles = np.asarray(self.n_particles, dtype=np.int64).reshape(n)
        if np.unique(self.halo_id).size != n:
            raise InputError("halo ids in a catalogue must be unique")
        order = np.argsort(-self.m200, kind="stable")
        if np.any(order != np.arange(n)):
            for name in ("halo_id", "centre", "m200", "r200", "n_particles"):
                setattr(self, name, getattr(self, name)[order])

    def __len__(self) -> int:
        return int(self.halo_id.size)

    def check_snapshot(self, boxsize: float) -> None:
        """Refuse a snapshot whose periodic box is not this catalogue's (another simulation's)."""
        if not np.isclose(self.boxsize, boxsize, rtol=1e-4):
            raise InputError(f"catalogue box {self.boxsize:.6g} Mpc differs from the snapshot's {boxsize:.6g} Mpc: "
                             "not the catalogue of this snapshot")

    def index(self, halo_id: int) -> int:
        """Row of ``halo_id``; :class:`InputError` when it is not in the catalogue."""
        rows = np.flatnonzero(self.halo_id == int(halo_id))
        if rows.size == 0:
            lo, hi = (self.halo_id.min(), self.halo_id.max()) if len(self) else (None, None)
            raise InputError(
                f"halo id {halo_id} is not in the catalogue ({len(self)} haloes, ids {lo}..{hi})"
            )
        return int(rows[0])


def write_halos(path: str | os.PathLike, cat: HaloCatalogue) -> None:
    """Write ``cat`` as a cmc-halos v1 HDF5 file, atomically.

    The file is written to a temporary name in the same folder and moved into
    place with :func:`os.replace`, so readers never see a partial file; it gets
    the permissions of a newly created file (0666 less the umask).
    """
    with atomic_write(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for name, unit in _UNITS.items():
                dset = f.create_dataset(name, data=getattr(cat, name))
                dset.attrs["units"] = unit
            f.attrs["format"] = FORMAT_NAME
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["boxsize"] = float(cat.boxsize)
            f.attrs["redshift"] = float(cat.redshift)
            f.attrs["cosmology"] = cosmology_to_json(cat.cosmology)
            f.attrs["source"] = str(cat.source)
            f.attrs["code_version"] = str(cat.code_version)


def read_halos(path: str | os.PathLike) -> HaloCatalogue:
    """Read a halo catalogue.

    Supported: cmc-halos v1 (written by :func:`write_halos`); EAGLE/BAHAMAS
    SUBFIND group files (``FOF/GroupCentreOfPotential``, ``FOF/Group_M_Crit200``,
    ``FOF/Group_R_Crit200`` with ``CGSConversionFactor`` / ``h-scale-exponent``
    attributes); GADGET-4 ``fof_subhalo_tab`` files (``Group/GroupPos``,
    ``Group/Group_M_Crit200``, ``Group/Group_R_Crit200`` with ``to_cgs`` /
    ``h_scaling`` attributes, or the unit system in ``/Parameters``).  Multi-file
    SUBFIND catalogues (``name.0.hdf5``, ``name.1.hdf5``, …) are concatenated.
    Haloes with M200 = 0 are dropped from SUBFIND catalogues; halo ids are the
    FoF group indices (0-based, in file order).

    Raises
    ------
    FileFormatError
        Missing, unreadable or unknown file.
    """
    from .readers.files import open_hdf5, snapshot_files

    with open_hdf5(path) as f:
        if f.attrs.get("format") is not None:
            fmt = _as_str(f.attrs["format"])
            if fmt != FORMAT_NAME:
                raise FileFormatError(f"{path}: unknown catalogue format {fmt!r}")
            return _read_cmc_halos(f, path)
        if "FOF" in f and "GroupCentreOfPotential" in f["FOF"]:
            kind = "eagle"
        elif "Group" in f and "GroupPos" in f["Group"]:
            kind = "gadget4"
        else:
            raise FileFormatError(
                f"{path} is not a halo catalogue cmc knows (expected a cmc-halos file, "
                "FOF/GroupCentreOfPotential or Group/GroupPos)"
            )
    files = snapshot_files(path)
    from .readers import subfind

    return HaloCatalogue(**subfind.read_catalogue(files, kind))


def _as_str(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _read_cmc_halos(f: h5py.File, path) -> HaloCatalogue:
    version = int(f.attrs.get("format_version", -1))
    if version != FORMAT_VERSION:
        raise FileFormatError(f"{path}: cmc-halos format version {version} is not supported")
    missing = [name for name in _UNITS if name not in f]
    if missing:
        raise FileFormatError(f"{path}: cmc-halos file lacks dataset(s) {', '.join(missing)}")
    try:
        return HaloCatalogue(
            **{name: f[name][()] for name in _UNITS},
            boxsize=float(f.attrs["boxsize"]),
            redshift=float(f.attrs["redshift"]),
            cosmology=cosmology_from_json(_as_str(f.attrs.get("cosmology", "null"))),
            source=_as_str(f.attrs.get("source", "")),
            code_version=_as_str(f.attrs.get("code_version", "")),
        )
    except KeyError as exc:
        raise FileFormatError(f"{path}: cmc-halos file lacks attribute {exc}") from None


# -------------------------------------------------------- spherical overdensity
def _wrap(positions: np.ndarray, boxsize: float) -> np.ndarray:
    """Positions as float64 in [0, boxsize)."""
    pos = np.mod(np.asarray(positions, dtype=np.float64), boxsize)
    pos[pos >= boxsize] = 0.0  # np.mod(-tiny, L) rounds to L
    return pos


class _PeriodicParticles:
    """Periodic cell indices (:class:`cmcore.cellindex.CellIndex`) over several particle sets."""

    def __init__(self, positions_list, masses_list, boxsize: float):
        if len(positions_list) != len(masses_list):
            raise InputError("positions_list and masses_list must have the same length")
        self.boxsize = float(boxsize)
        self.sets = []
        self._inputs: list[int | None] = []
        for pos, mass in zip(positions_list, masses_list):
            pos = np.ascontiguousarray(pos)
            if pos.ndim != 2 or pos.shape[1] != 3:
                raise InputError(f"positions must have shape (N, 3), got {pos.shape}")
            mass = np.broadcast_to(np.asarray(mass, dtype=np.float64), pos.shape[:1])
            self._inputs.append(len(self.sets) if pos.shape[0] else None)
            if pos.shape[0]:
                self.sets.append((CellIndex(pos, self.boxsize), mass))

    def index_of(self, i: int) -> CellIndex:
        """The cell index of the ``i``-th particle set given (which must not be empty)."""
        return self.sets[self._inputs[i]][0]

    def gather(self, centre: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
        """Distances and masses of all particles within ``radius``, sorted by distance.

        Distances are computed here in float64; the cell-index selection is
        padded by 1e-5 so that float32 rounding there cannot drop a particle.
        """
        radii, masses = [], []
        for index, mass in self.sets:
            idx = index.select_sphere(centre, radius * (1.0 + 1e-5))
            d = index.positions[idx].astype(np.float64) - centre
            d -= self.boxsize * np.round(d / self.boxsize)
            r = np.sqrt(np.einsum("ij,ij->i", d, d))
            inside = r <= radius
            radii.append(r[inside])
            masses.append(mass[idx[inside]])
        r = np.concatenate(radii) if radii else np.zeros(0)
        m = np.concatenate(masses) if masses else np.zeros(0)
        order = np.argsort(r, kind="stable")
        return r[order], m[order]


def _so_from_sorted(r, m, target: float, search_radius: float):
    """SO solution from sorted (r, m); ``None`` when ``search_radius`` is too small."""
    if r.size == 0:
        return 0.0, 0.0, 0
    cum = np.cumsum(m)
    last = np.r_[r[1:] > r[:-1], True]  # last particle of each group of equal radii
    rr, mm, nn = r[last], cum[last], np.flatnonzero(last) + 1
    with np.errstate(divide="ignore"):
        dens = mm / (4.0 / 3.0 * np.pi * rr**3)
    below = np.flatnonzero(dens < target)
    if below.size:
        j = below[0]
        if j == 0:
            return 0.0, 0.0, 0
        k = j - 1
    else:
        k = rr.size - 1
        if mm[k] / (4.0 / 3.0 * np.pi * search_radius**3) >= target:
            return None
    m200 = float(mm[k])
    return m200, float((3.0 * m200 / (4.0 * np.pi * target)) ** (1.0 / 3.0)), int(nn[k])


def spherical_overdensity(
    positions_list,
    masses_list,
    centres,
    boxsize: float,
    rho_crit: float,
    delta: float = 200.0,
    *,
    return_counts: bool = False,
    start_radius: float | None = None,
    progress: bool = False,
):
    """M_Δ and R_Δ about given centres, exact to the particle, periodic.

    See the module docstring for how r200 is chosen between particle radii.

    Parameters
    ----------
    positions_list : sequence of ndarray, each (N_i, 3)
        Positions of every particle type [comoving Mpc].
    masses_list : sequence of ndarray, each (N_i,) or scalar
        Masses [M☉].
    centres : ndarray, (M, 3) or (3,)
        Halo centres [comoving Mpc].
    boxsize : float
        Periodic box side [comoving Mpc].
    rho_crit : float
        Critical density in the units of the positions: M☉ per *comoving*
        Mpc³, i.e. ρ_crit(z)·a³ (:func:`critical_density_comoving`).
    delta : float
        Overdensity Δ with respect to ρ_crit.
    return_counts : bool
        Also return the number of particles within r200.
    start_radius : float, optional
        First search radius [Mpc]; doubled until the solution is enclosed.
        Default: the R_Δ of a 10¹³ M☉ halo.
    progress : bool
        Show a progress bar over the centres (on standard error: a bar on a terminal, a line every few seconds otherwise).

    Returns
    -------
    m200 : ndarray (M,)
        Mass within r200 [M☉].
    r200 : ndarray (M,)
        Radius [comoving Mpc] where the mean enclosed density is Δ·rho_crit.
    n : ndarray of int64 (M,), only with ``return_counts``
        Number of particles within r200.

    Raises
    ------
    InputError
        Bad arguments, or a centre about which the mean density stays above
        Δ·rho_crit out to half the box (no solution in a periodic box).
    """
    boxsize = float(boxsize)
    if not (boxsize > 0 and np.isfinite(boxsize)):
        raise InputError(f"boxsize must be positive, got {boxsize}")
    if not (rho_crit > 0 and delta > 0):
        raise InputError(f"rho_crit and delta must be positive, got {rho_crit}, {delta}")
    centres = np.atleast_2d(np.asarray(centres, dtype=np.float64))
    if centres.shape[1] != 3:
        raise InputError(f"centres must have shape (M, 3), got {centres.shape}")
    particles = _PeriodicParticles(positions_list, masses_list, boxsize)
    m200, r200, counts = _spherical_overdensity(particles, centres, rho_crit, delta,
                                                start_radius=start_radius, progress=progress)
    if return_counts:
        return m200, r200, counts
    return m200, r200


def _spherical_overdensity(particles: _PeriodicParticles, centres: np.ndarray, rho_crit: float,
                           delta: float, *, start_radius: float | None = None, progress: bool = False):
    """:func:`spherical_overdensity` over prepared cell indexes; returns (m200, r200, counts)."""
    boxsize = particles.boxsize
    target = float(delta) * float(rho_crit)
    r0 = start_radius or (3.0 * 1e13 / (4.0 * np.pi * target)) ** (1.0 / 3.0)
    m200 = np.zeros(len(centres))
    r200 = np.zeros(len(centres))
    counts = np.zeros(len(centres), dtype=np.int64)
    bar = progress_bar(_wrap(centres, boxsize), desc="M200 (SO)", unit="halo", disable=not progress)
    for i, centre in enumerate(bar):
        radius = min(r0, 0.5 * boxsize)
        while True:
            r, m = particles.gather(centre, radius)
            sol = _so_from_sorted(r, m, target, radius)
            if sol is not None:
                m200[i], r200[i], counts[i] = sol
                break
            if radius >= 0.5 * boxsize:
                raise InputError(
                    f"mean density about centre {centres[i].tolist()} stays above "
                    f"{delta:g} rho_crit out to half the box: no R{delta:g}"
                )
            radius = min(2.0 * radius, 0.5 * boxsize)
    return m200, r200, counts


# ------------------------------------------------------------- halo finding
def friends_of_friends(
    positions: np.ndarray,
    boxsize: float,
    linking_length: float,
    min_members: int = 32,
    *,
    particles_per_cell: float = 16.0,
) -> list[np.ndarray]:
    """Periodic friends-of-friends groups (Davis et al. 1985).

    Two particles at most ``linking_length`` apart (periodic minimum image,
    float64) are friends; groups are the connected components of the
    friendship graph.  They are found by union-find over a periodic cell grid
    in the compiled core (:mod:`cmcore._fof`): no list of pairs is ever held,
    so memory is one parent index and one cell-permutation entry per particle
    (4 bytes each below 2**31 particles) plus 8 bytes per coarse cell, besides
    the positions themselves (and, while the cells are sorted, 8 bytes per
    particle more).

    Parameters
    ----------
    positions : ndarray (N, 3)
        Comoving Mpc, float32 or float64 (used in place when C-contiguous).
    boxsize : float
        Periodic box side [Mpc].
    linking_length : float
        [Mpc], comoving; at most ``boxsize / 3``.
    min_members : int
        Smallest group kept.
    particles_per_cell : float
        Mean occupation of the coarse cells (speed only, never the result).

    Returns
    -------
    list of ndarray
        Member indices (int64, ascending) of each group, largest group first;
        groups of equal size in the order of their smallest member.
    """
    members, starts = _fof_groups(positions, boxsize, linking_length, min_members, particles_per_cell)
    return [members[starts[g]: starts[g + 1]] for g in range(len(starts) - 1)]


def _fof_groups(positions, boxsize: float, linking_length: float, min_members: int,
                particles_per_cell: float = 16.0) -> tuple[np.ndarray, np.ndarray]:
    """:func:`friends_of_friends` as ``(members, starts)``: group ``g`` is
    ``members[starts[g]:starts[g+1]]`` (one int64 array for all groups)."""
    from . import _fof

    pos = np.ascontiguousarray(positions)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise InputError(f"positions must have shape (N, 3), got {pos.shape}")
    if pos.dtype not in (np.float32, np.float64):
        pos = pos.astype(np.float64)
    boxsize, linking_length = float(boxsize), float(linking_length)
    if not (np.isfinite(boxsize) and boxsize > 0):
        raise InputError(f"boxsize must be positive, got {boxsize}")
    if not (np.isfinite(linking_length) and 0 < 3.0 * linking_length <= boxsize):
        raise InputError(f"linking length must be in (0, boxsize/3], got {linking_length}")
    for start in range(0, pos.shape[0], 1 << 22):
        if not np.isfinite(pos[start:start + (1 << 22)]).all():
            raise InputError("positions contain NaN or infinite values")
    n = pos.shape[0]
    nc = int(round((max(n, 1) / float(particles_per_cell)) ** (1.0 / 3.0)))
    nc = max(3, min(nc, 1024, int(boxsize // linking_length)))
    m = int(np.ceil(boxsize / nc * np.sqrt(3.0) / linking_length * (1.0 + 1e-6)))
    idx = np.int32 if n < 2**31 else np.int64
    perm = np.empty(n, dtype=idx)
    offsets = np.empty(nc**3 + 1, dtype=np.int64)
    _fof.coarse_sort(pos, boxsize, nc, m, perm, offsets)
    roots = np.empty(n, dtype=idx)
    _fof.link(pos, boxsize, linking_length, nc, m, perm, offsets, roots, _FOF_DENSE_CELL)
    del offsets
    _, members, starts = _fof.group_members(roots, perm, int(min_members))
    return members, starts


#: Coarse cells with more particles than this are linked through their fine cells
#: (one set per fine cell) instead of testing every pair.
_FOF_DENSE_CELL = 1536

#: Shrinking-sphere parameters (Power et al. 2003): the radius shrinks by this factor
#: per step ...
SHRINK_FACTOR = 0.975
#: ... until the sphere would hold fewer than 1 per cent of the group's members or
#: 1000 members, whichever is smaller, but never fewer than 20.
SHRINK_FINAL_FRACTION = 0.01
SHRINK_FINAL_MAX = 1000
SHRINK_FINAL_MIN = 20


def shrinking_sphere_centres(positions: np.ndarray, boxsize: float, members: np.ndarray,
                             starts: np.ndarray) -> np.ndarray:
    """Shrinking-sphere centre of each group (Power et al. 2003, §2.2), periodic.

    Start from the centre of mass of the group's members and the smallest sphere
    about it that holds them all; shrink the radius by :data:`SHRINK_FACTOR`
    (2.5 per cent), recentre on the centre of mass of the members inside, and
    repeat while the sphere still holds at least
    ``max(SHRINK_FINAL_MIN, min(SHRINK_FINAL_MAX, SHRINK_FINAL_FRACTION·N))``
    members; the centre is that of the last such sphere.  Equal particle masses
    (the dark matter of one snapshot) are assumed.  The centre follows the most
    massive concentration of the group — the main halo rather than the densest
    cusp of a subhalo or of a smaller neighbour linked into the group.  Compiled
    (:mod:`cmcore._centres`): each step selects exactly the members within the
    sphere, at a cost close to the sphere's population; the whole pass is
    O(N_group) per group in practice, with 48 bytes per member of the largest
    group as workspace.

    Parameters
    ----------
    positions : ndarray (N, 3)
        Comoving Mpc, float32 or float64.
    boxsize : float
        Periodic box side [Mpc]; each group must span less than half of it.
    members, starts : ndarray of int64
        Group ``g`` is ``positions[members[starts[g]:starts[g+1]]]``.

    Returns
    -------
    ndarray (G, 3)
        Centres [Mpc] in ``[0, boxsize)``.
    """
    from . import _centres

    pos = np.ascontiguousarray(positions)
    if pos.dtype not in (np.float32, np.float64):
        pos = pos.astype(np.float64)
    members = np.ascontiguousarray(members, dtype=np.int64)
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    if starts.ndim != 1 or starts.size < 1 or starts[0] != 0 or starts[-1] != members.size \
            or np.any(np.diff(starts) < 0):
        raise InputError("starts must rise from 0 to len(members)")
    if members.size and (members.min() < 0 or members.max() >= len(pos)):
        raise InputError("members must index positions")
    return _centres.shrinking_sphere(pos, float(boxsize), members, starts, SHRINK_FACTOR,
                                     SHRINK_FINAL_FRACTION, SHRINK_FINAL_MAX, SHRINK_FINAL_MIN)


def find_halos(
    snapshot: Snapshot,
    *,
    b: float = 0.2,
    linking_length: float | None = None,
    min_members: int = 32,
    delta: float = 200.0,
    progress: bool = False,
) -> HaloCatalogue:
    """Find haloes: FoF on dark matter, a centre, then M200c/R200c by SO over all particles.

    1. Friends-of-friends on the dark matter with linking length
       b × (mean inter-particle separation of the dark matter) = b·L/N_dm^(1/3),
       periodic; groups with at least ``min_members`` particles.  When the
       dark matter does not fill the box (a region read, a zoom), pass
       ``linking_length`` instead, e.g. b·(m_dm/ρ̄_dm)^(1/3) of the parent box.
    2. Centre: the member with the minimum gravitational ``potential`` when the
       dark matter has one; otherwise the shrinking-sphere centre of the
       group's members (Power et al. 2003; :func:`shrinking_sphere_centres`),
       which follows the group's most massive concentration — the main halo,
       not the cusp of a subhalo or of a smaller neighbour linked into the
       group.
    3. M200c, R200c: :func:`spherical_overdensity` over every particle type of
       the snapshot, periodic, with Δ = ``delta`` and ρ_crit(z) of the
       snapshot's cosmology at its redshift, expressed per comoving Mpc³
       (:func:`critical_density_comoving`), so r200 is comoving.

    Groups whose SO mass is zero (the density about the centre never reaches
    Δ ρ_crit) are left out.  ``halo_id`` is the rank of the FoF group by size
    (0 = largest); ``n_particles`` counts all particles within r200.

    Memory beyond the particles: 8 bytes per dark-matter particle while the
    groups are linked (16 while its cells are sorted), then 8 bytes per grouped
    particle for the centres, then the cell indexes of the SO step (about 4.5
    bytes per particle, :class:`cmcore.cellindex.CellIndex`).

    Parameters
    ----------
    snapshot : Snapshot
        Must hold dark matter.
    b : float
        Linking parameter.
    linking_length : float, optional
        Comoving linking length [Mpc]; overrides ``b``.
    min_members : int
        Smallest FoF group (dark-matter particles).
    delta : float
        Overdensity with respect to the critical density.
    progress : bool
        Show progress bars (and a line per stage on standard error).

    Returns
    -------
    HaloCatalogue

    Examples
    --------
    The haloes of a small synthetic universe (one target cluster among field
    haloes); the largest one found is the generator's cluster, with the same
    M200:

    >>> import tempfile
    >>> from cmcore.halos import find_halos, read_halos
    >>> from cmcore.readers import read_snapshot
    >>> from cmcore.synth import generate
    >>> tmp = tempfile.TemporaryDirectory()
    >>> universe = generate("tiny", seed=1, out=tmp.name, box_size_h=30.0, n_bins=1,
    ...                     clusters_per_bin=1, field_min_mass=1e13)
    >>> found = find_halos(read_snapshot(universe.snapshot, fields=[]))
    >>> truth = read_halos(universe.halos)
    >>> len(truth.halo_id), len(found.halo_id) > 1  # the target; it and field haloes
    (1, True)
    >>> print(f"M200 {found.m200[0]:.3g} Msun found, {truth.m200[0]:.3g} Msun generated")
    M200 2.37e+14 Msun found, 2.37e+14 Msun generated
    >>> tmp.cleanup()
    """
    import sys
    import time

    if not 0 < b < 1:
        raise InputError(f"linking parameter b must be in (0, 1), got {b}")
    if linking_length is not None and not 0 < 3.0 * linking_length <= snapshot.boxsize:
        raise InputError(f"linking length must be in (0, boxsize/3], got {linking_length}")
    if min_members < 2:
        raise InputError(f"min_members must be at least 2, got {min_members}")
    dm = snapshot.dm
    box = float(snapshot.boxsize)
    n_dm = len(dm)
    linking = linking_length or b * box / n_dm ** (1.0 / 3.0)
    t0 = time.perf_counter()

    def stage(text: str) -> None:
        if progress:
            print(f"[{time.perf_counter() - t0:7.1f} s] {text}", file=sys.stderr, flush=True)

    stage(f"friends-of-friends on {n_dm} dark-matter particles (linking length {linking:.4g} Mpc)")
    members, starts = _fof_groups(dm.positions, box, linking, min_members)
    n_groups = len(starts) - 1
    if n_groups == 0:
        raise InputError(
            f"no friends-of-friends group with at least {min_members} dark-matter particles "
            f"(b = {b}, linking length {linking:.4g} Mpc)"
        )
    stage(f"{n_groups} groups of >= {min_members} particles ({members.size} particles); centres")
    if "potential" in dm:
        potential = np.asarray(dm["potential"])[members]
        first = np.repeat(starts[:-1], np.diff(starts))
        order = np.lexsort((potential, first))  # within each group, lowest potential first
        centres = _wrap(dm.positions[members[order[starts[:-1]]]], box)
    else:
        centres = shrinking_sphere_centres(dm.positions, box, members, starts)
    del members, starts
    stage("cell indexes of all particle types")
    rho_crit = critical_density_comoving(snapshot.cosmology, snapshot.redshift)
    kinds = list(snapshot.particles.values())
    particles = _PeriodicParticles([p.positions for p in kinds], [p.masses for p in kinds], box)
    stage(f"spherical overdensity about {n_groups} centres")
    m200, r200, counts = _spherical_overdensity(particles, centres, rho_crit, delta, progress=progress)
    stage("done")
    keep = m200 > 0
    return HaloCatalogue(
        halo_id=np.arange(n_groups)[keep], centre=centres[keep], m200=m200[keep],
        r200=r200[keep], n_particles=counts[keep], boxsize=box, redshift=snapshot.redshift,
        cosmology=snapshot.cosmology,
        source=(f"{snapshot.path}: FoF(linking length {linking:.5g} Mpc, min {min_members}) on dark matter"
                f" + shrinking-sphere centre + SO(Delta={delta:g} crit)"),
    )
