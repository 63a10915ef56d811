"""A periodic cell index over one particle set.

Build it once per particle set (one counting sort in the compiled core), then
select particles near many centres at a cost proportional to the particles near
each centre rather than to the whole box::

    idx = CellIndex(positions, boxsize)
    members = idx.select_sphere(centre, r200)          # int64 particle ids
    region = idx.select_box(centre, half_extent)        # int64 particle ids
    image = project(positions, masses, centre, boxsize, width=2.0, index=idx)

Memory: the permutation (int32 below 2**31 particles, else int64) plus one
int64 offset per cell; with the default of about 16 particles per cell that is
4.5 bytes per particle (8.5 above 2**31 particles); the build needs another
4 bytes per particle temporarily.  The index keeps a reference
to ``positions``, not a copy (give it C-contiguous positions: anything else is
copied once, and ``project`` must then be given ``idx.positions``); do not modify
them while the index is in use.
"""
from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from . import _kernels
from .errors import InputError
from .validation import as_positions, finite_float, real_array, thread_count, wrapped_centre

__all__ = ["CellIndex", "default_ncell"]


def default_ncell(npart: int, particles_per_cell: float = 16.0) -> int:
    """Cells per side of a :class:`CellIndex` over ``npart`` particles: about
    ``particles_per_cell`` per cell, between 1 and 1024."""
    return int(min(1024, max(1, round((npart / particles_per_cell) ** (1.0 / 3.0)))))


class CellIndex:
    """Periodic cell index: particles counting-sorted into a cubic grid of cells.

    Parameters
    ----------
    positions : (N, 3) ndarray, float32 or float64
        Positions [Mpc]; finite.  Positions outside ``[0, boxsize)`` are wrapped.
        Used in place when C-contiguous (else copied once).
    boxsize : float
        Side of the periodic cube [Mpc].
    smoothing_lengths : (N,) array_like, optional
        Kernel support radii; their maximum is stored (``max_smoothing_length``) so
        that ``project(..., scheme="sph", index=idx)`` visits every cell a kernel
        can reach from.  Required for that use only.
    particles_per_cell : float, optional
        Target mean occupation; sets ``ncell = round((N / particles_per_cell)**(1/3))``
        per side (between 1 and 1024).
    nthreads : int, optional
        OpenMP threads for the build.
    ncell : int, optional
        Cells per side, overriding ``particles_per_cell`` (e.g. the grid of the
        whole snapshot for an index over a region of it read from an indexed
        copy: the same cells then hold the same particles in the same order).

    Attributes
    ----------
    positions : ndarray
        The indexed positions (the very array :func:`~cmcore.projection.project` must get).
    boxsize : float
    ncell : int
        Cells per side; cell ``(ix, iy, iz)`` has id ``(ix*ncell + iy)*ncell + iz``.
    cell_size : float
    permutation : ndarray
        Particle ids in cell order (int32 or int64).
    offsets : ndarray
        ``ncell**3 + 1`` int64: cell ``c`` holds ``permutation[offsets[c]:offsets[c+1]]``.
    max_smoothing_length : float or None

    Raises
    ------
    InputError
        For bad shapes or dtypes, NaN/inf positions, a non-positive ``boxsize`` or
        bad smoothing lengths.
    """

    def __init__(
        self,
        positions: npt.ArrayLike,
        boxsize: float,
        *,
        smoothing_lengths: npt.ArrayLike | None = None,
        particles_per_cell: float = 16.0,
        nthreads: int | None = None,
        ncell: int | None = None,
    ) -> None:
        pos = as_positions(positions)
        self.boxsize = finite_float("boxsize", boxsize)
        ppc = finite_float("particles_per_cell", particles_per_cell)
        nt = thread_count(nthreads)
        npart = pos.shape[0]
        if ncell is None:
            ncell = default_ncell(npart, ppc)
        elif isinstance(ncell, bool) or not isinstance(ncell, (int, np.integer)) or not 1 <= ncell <= 1024:
            raise InputError(f"ncell must be an integer in [1, 1024], got {ncell!r}")
        self.ncell = int(ncell)
        self.cell_size = self.boxsize / self.ncell
        idx_dtype = np.int32 if npart < 2**31 else np.int64
        self.permutation = np.empty(npart, dtype=idx_dtype)
        self.offsets = np.zeros(self.ncell**3 + 1, dtype=np.int64)
        flags = _kernels.build_cell_index(pos, self.boxsize, self.ncell, self.permutation,
                                          self.offsets, nt)
        if flags & _kernels.FLAG_POSITION:
            raise InputError("positions contain NaN or infinite values")
        self.positions = pos
        self.max_smoothing_length: float | None = None
        if smoothing_lengths is not None:
            hs = real_array("smoothing_lengths", smoothing_lengths)
            if hs.shape != (npart,):
                raise InputError(f"smoothing_lengths must have shape ({npart},), got {hs.shape}")
            hmax = _kernels.smoothing_length_max(hs) if npart else 0.0
            if hmax < 0:
                raise InputError("smoothing_lengths must be finite and positive")
            self.max_smoothing_length = float(hmax)

    def __repr__(self) -> str:
        return (f"CellIndex(N={self.positions.shape[0]}, boxsize={self.boxsize}, "
                f"ncell={self.ncell}, nbytes={self.nbytes})")

    @property
    def nbytes(self) -> int:
        """Memory held by the index itself (permutation and offsets), in bytes."""
        return int(self.permutation.nbytes + self.offsets.nbytes)

    def _check_compatible(self, positions: np.ndarray, boxsize: float | None) -> None:
        """Raise unless ``positions`` and ``boxsize`` are the ones indexed."""
        same = (positions.shape == self.positions.shape
                and positions.dtype == self.positions.dtype
                and positions.__array_interface__["data"][0]
                == self.positions.__array_interface__["data"][0])
        if not same:
            raise InputError("index was built over a different positions array")
        if boxsize is None or boxsize != self.boxsize:
            raise InputError(f"index was built for boxsize={self.boxsize}, got boxsize={boxsize}")

    def _axis_spans(self, centres: np.ndarray, half_extents: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
        """First cell index (unwrapped) and number of cells each box covers, per axis.

        Both ``(m, 3)``; a box reaching across the whole axis covers its ``ncell``
        cells once.
        """
        nc = self.ncell
        margin = 1e-9 * self.boxsize
        lo = np.floor((centres - half_extents - margin) / self.cell_size).astype(np.int64)
        hi = np.floor((centres + half_extents + margin) / self.cell_size).astype(np.int64)
        count = hi - lo + 1
        full = count >= nc
        lo[full] = 0
        count[full] = nc
        return lo, count

    def _runs(self, mask: np.ndarray, window_lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Permutation ranges of the cells marked in ``mask`` (a window of cells from
        ``window_lo``, at most ``ncell`` per axis): one range per run of marked cells
        along z, split where z wraps around the box."""
        nc = self.ncell
        wz = (nc - window_lo[2]) % nc        # local z where the global z index wraps to 0
        pieces = [(0, mask.shape[2])]
        if 0 < wz < mask.shape[2]:
            pieces = [(0, wz), (wz, mask.shape[2])]
        starts, ends = [], []
        for z0, z1 in pieces:
            sub = mask[:, :, z0:z1].view(np.int8)
            # edge[..., k] = sub[..., k] - sub[..., k - 1], zero outside: +1 starts a run
            edge = np.zeros(sub.shape[:2] + (sub.shape[2] + 1,), dtype=np.int8)
            edge[:, :, :-1] = sub
            edge[:, :, 1:] -= sub
            x, y, zs = np.nonzero(edge == 1)
            ze = np.nonzero(edge == -1)[2]
            base = (((window_lo[0] + x) % nc) * nc + (window_lo[1] + y) % nc) * nc
            gz = (window_lo[2] + z0 + zs) % nc
            starts.append(self.offsets[base + gz])
            ends.append(self.offsets[base + gz + (ze - zs)])
        return np.concatenate(starts), np.concatenate(ends)

    def cell_ranges(self, centres: np.ndarray, half_extents: np.ndarray,
                    max_length: int | None = None) -> np.ndarray:
        """Ranges of :attr:`permutation` covering every cell that any of the periodic
        boxes ``centres[b] ± half_extents[b]`` overlaps (each cell once).

        Parameters
        ----------
        centres : (3,) or (m, 3) ndarray
            Box centres (any real coordinates; cells are wrapped periodically).
        half_extents : (3,) or (m, 3) ndarray
            Non-negative half extents; ``>= boxsize / 2`` covers the whole axis.
        max_length : int, optional
            Split ranges longer than this (for load balancing).

        Returns
        -------
        ndarray
            ``(r, 2)`` int64 half-open ranges of positions in :attr:`permutation`.
        """
        nc = self.ncell
        centres = np.atleast_2d(np.asarray(centres, dtype=np.float64))
        half_extents = np.broadcast_to(np.atleast_2d(half_extents), centres.shape)
        lo, count = self._axis_spans(centres, half_extents)
        if len(centres) > 1:
            window_lo = lo.min(axis=0)
            window = (lo + count).max(axis=0) - window_lo
            if np.any(window > nc) or np.prod(window) > 4_000_000:
                # the boxes span whole axes: one box around them all
                span_lo = window_lo * self.cell_size
                span_hi = (window_lo + window) * self.cell_size
                centres = (0.5 * (span_lo + span_hi))[None, :]
                half_extents = (0.5 * (span_hi - span_lo))[None, :]
                lo, count = self._axis_spans(centres, half_extents)
        if len(centres) == 1:
            ix, iy, iz = [(lo[0, a] + np.arange(count[0, a])) % nc for a in range(3)]
            # runs of consecutive z cells are contiguous in the permutation
            breaks = np.flatnonzero(np.diff(iz) != 1) + 1
            z_starts = iz[np.concatenate([[0], breaks])]
            z_ends = iz[np.concatenate([breaks - 1, [iz.size - 1]])] + 1
            base = ((ix[:, None] * nc + iy[None, :]) * nc).reshape(-1, 1)
            starts = self.offsets[(base + z_starts).ravel()]
            ends = self.offsets[(base + z_ends).ravel()]
        else:
            # union of the boxes, marked in the window of cells they span
            mask = np.zeros(tuple(window), dtype=bool)
            for l0, cnt in zip(lo - window_lo, count):
                mask[l0[0]:l0[0] + cnt[0], l0[1]:l0[1] + cnt[1], l0[2]:l0[2] + cnt[2]] = True
            starts, ends = self._runs(mask, window_lo)
        keep = ends > starts
        starts, ends = starts[keep], ends[keep]
        if max_length is not None and starts.size:
            pieces = (ends - starts + max_length - 1) // max_length
            if np.any(pieces > 1):
                first = np.repeat(np.cumsum(pieces) - pieces, pieces)
                new_starts = np.repeat(starts, pieces) + (np.arange(first.size) - first) * max_length
                ends = np.minimum(new_starts + max_length, np.repeat(ends, pieces))
                starts = new_starts
        return np.ascontiguousarray(np.stack([starts, ends], axis=1).astype(np.int64))

    def select_box(self, centre: npt.ArrayLike,
                   half_extent: float | npt.ArrayLike) -> np.ndarray:
        """Particles within a periodic axis-aligned box.

        Selects every particle with ``|d_a| <= half_extent_a`` on all three axes,
        where ``d = x - centre`` taken at its minimum image
        (``d -= boxsize * floor(d / boxsize + 0.5)``, float64) -- exactly what a
        brute-force scan with that arithmetic selects.

        Parameters
        ----------
        centre : (3,) array_like
            Box centre [Mpc]; wrapped into the box.
        half_extent : float or (3,) array_like
            Half side(s) of the box [Mpc], finite and non-negative.

        Returns
        -------
        ndarray
            Sorted int64 particle ids.
        """
        c = wrapped_centre(centre, self.boxsize)
        try:
            half = np.broadcast_to(np.asarray(half_extent, dtype=np.float64), (3,)).copy()
        except (TypeError, ValueError):
            raise InputError(f"half_extent must be a number or 3 numbers, got {half_extent!r}") from None
        if not np.all(np.isfinite(half)) or np.any(half < 0):
            raise InputError(f"half_extent must be finite and non-negative, got {half_extent!r}")
        ranges = self.cell_ranges(c, half)
        return _kernels.select_particles(self.positions, self.permutation, ranges, c,
                                         self.boxsize, half, 0.0, False)

    def select_sphere(self, centre: npt.ArrayLike, radius: float) -> np.ndarray:
        """Particles within a periodic sphere.

        Selects every particle with ``d_x*d_x + d_y*d_y + d_z*d_z <= radius*radius``,
        ``d`` the minimum-image offset from ``centre`` as in :meth:`select_box`.
        Used for spherical-overdensity masses.

        Parameters
        ----------
        centre : (3,) array_like
            Sphere centre [Mpc]; wrapped into the box.
        radius : float
            Radius [Mpc], finite and non-negative.

        Returns
        -------
        ndarray
            Sorted int64 particle ids.
        """
        c = wrapped_centre(centre, self.boxsize)
        try:
            r = float(radius)
        except (TypeError, ValueError):
            raise InputError(f"radius must be a number, got {radius!r}") from None
        if not math.isfinite(r) or r < 0:
            raise InputError(f"radius must be finite and non-negative, got {radius!r}")
        half = np.full(3, r)
        ranges = self.cell_ranges(c, half)
        return _kernels.select_particles(self.positions, self.permutation, ranges, c,
                                         self.boxsize, half, r, True)
