"""Particles to images: the Python face of the compiled projection kernels.

:func:`project` takes particles in a (periodic) box to a square image of summed
weights seen along a line of sight; :func:`los_basis` gives the image axes.  The geometry
(minimum image, slab, rotation, pixels) and the NGP, CIC and SPH schemes are specified in
``docs/internals.md`` ("cmcore.projection").
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Union

import numpy as np
import numpy.typing as npt

from . import _kernels
from .errors import InputError
from .validation import as_positions, finite_float, real_array, thread_count, wrapped_centre

if TYPE_CHECKING:
    from .cellindex import CellIndex

__all__ = ["project", "los_basis", "projected_wendland_c2", "NAMED_LOS", "SCHEMES"]

#: Named lines of sight and their unit vectors.
NAMED_LOS: dict[str, tuple[float, float, float]] = {
    "x": (1.0, 0.0, 0.0),
    "y": (0.0, 1.0, 0.0),
    "z": (0.0, 0.0, 1.0),
    "diag": (math.sqrt(0.5), -math.sqrt(0.5), 0.0),
}

#: Deposition schemes, with the number the compiled kernel knows them by.
SCHEMES: dict[str, int] = {"ngp": 0, "cic": 1, "sph": 2}

#: Particles per chunk handed to one thread at a time (NGP/CIC; SPH, whose cost is
#: in the deposit, uses smaller chunks for balance).
CHUNK = 1 << 15
CHUNK_SPH = 1 << 9

#: With ``nthreads=None``, NGP/CIC use one thread per this many particles scanned
#: (waking threads costs more than it saves on small scans) -- or per
#: ``INDEXED_PER_THREAD`` candidates of an indexed scan, whose scattered memory
#: accesses make each particle dearer.
SCAN_PER_THREAD = 1 << 18
INDEXED_PER_THREAD = 1 << 14

#: The compiled projected kernel: ``_NSEG`` equal segments in ``q``, each a
#: polynomial of degree ``_DEG`` (see :func:`_kernel_coefficients`).
_NSEG = 8
_DEG = 6

LosLike = Union[str, npt.ArrayLike]


def los_basis(los: LosLike = "z",
              azimuth: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the image axes ``(u, v)`` and the line of sight ``n``.

    Parameters
    ----------
    los : {"x", "y", "z", "diag"} or array_like of 3 floats
        Line of sight; ``"diag"`` is ``(sqrt(2)/2, -sqrt(2)/2, 0)``.  A vector is
        normalised.
    azimuth : float, optional
        Rotation of the image axes about ``n``, in radians (right-handed).

    Returns
    -------
    u, v, n : ndarray
        Orthonormal float64 3-vectors with ``u x v = n``.

    Notes
    -----
    Before the azimuthal rotation, ``v`` is the part of ``z`` perpendicular to
    ``n`` (the box's z axis is "up" on the image) and ``u = v x n``; when ``n`` is
    within about 2.6 degrees of the z axis (``|n_z| > 0.999``) ``y`` is used
    instead of ``z``.  Hence

    ========  ==================  =================
    los       u                   v
    ========  ==================  =================
    ``"x"``   (0, 1, 0)           (0, 0, 1)
    ``"y"``   (-1, 0, 0)          (0, 0, 1)
    ``"z"``   (1, 0, 0)           (0, 1, 0)
    ``"diag"``  (√2/2, √2/2, 0)   (0, 0, 1)
    ========  ==================  =================

    The azimuth then turns the axes by ``+azimuth`` about ``n``:
    ``u' = cos(a) u + sin(a) v``, ``v' = -sin(a) u + cos(a) v``.

    Raises
    ------
    InputError
        When ``los`` is an unknown name, not 3 finite numbers, or zero, or when
        ``azimuth`` is not finite.
    """
    if isinstance(los, str):
        if los not in NAMED_LOS:
            raise InputError(f"los must be one of {sorted(NAMED_LOS)} or a 3-vector, got {los!r}")
        n = np.array(NAMED_LOS[los], dtype=np.float64)
    else:
        try:
            n = np.asarray(los, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputError(f"los must be a name or a 3-vector of numbers: {exc}") from None
        if n.shape != (3,) or not np.all(np.isfinite(n)):
            raise InputError(f"los must be a name or 3 finite numbers, got {los!r}")
        norm = math.sqrt(float(n @ n))
        if norm == 0.0:
            raise InputError("los must not be the zero vector")
        n = n / norm
    try:
        azimuth = float(azimuth)
    except (TypeError, ValueError):
        raise InputError(f"azimuth must be a number (radians), got {azimuth!r}") from None
    if not math.isfinite(azimuth):
        raise InputError(f"azimuth must be finite, got {azimuth}")
    up = np.array([0.0, 0.0, 1.0]) if abs(n[2]) <= 0.999 else np.array([0.0, 1.0, 0.0])
    v = up - (up @ n) * n
    v /= math.sqrt(float(v @ v))
    u = np.array([v[1] * n[2] - v[2] * n[1], v[2] * n[0] - v[0] * n[2],
                  v[0] * n[1] - v[1] * n[0]])                     # v x n
    if azimuth != 0.0:
        ca, sa = math.cos(azimuth), math.sin(azimuth)
        u, v = ca * u + sa * v, -sa * u + ca * v
    return u, v, n


def projected_wendland_c2(q: npt.ArrayLike) -> np.ndarray:
    """2D projection of the Wendland C2 kernel of unit support, normalised to 1.

    ``W(r) = 21 / (2 pi) (1 - r)^4 (1 + 4 r)`` for ``r < 1`` (unit support
    radius, ``∫ W d^3r = 1``), integrated along a line at projected radius ``q``:
    ``f(q) = ∫ W(sqrt(q^2 + z^2)) dz``, so ``∫ f(q) 2 pi q dq = 1``.  For a kernel of
    support ``H`` the surface density is ``f(R / H) / H^2``.  Evaluated by 64-point
    Gauss-Legendre quadrature (the integrand is a polynomial in ``z`` at ``q = 0``
    and smooth elsewhere; relative accuracy better than 1e-12).

    Parameters
    ----------
    q : array_like
        Projected radius in units of the support radius; ``f = 0`` for ``q >= 1``.

    Returns
    -------
    ndarray
        ``f(q)``, float64, same shape as ``q``.
    """
    q = np.asarray(q, dtype=np.float64)
    qc = np.clip(q, 0.0, 1.0)
    zmax = np.sqrt(1.0 - qc * qc)
    x, wq = np.polynomial.legendre.leggauss(64)
    t = 0.5 * (x + 1.0)                                    # nodes on [0, 1]
    z = zmax[..., None] * t
    r = np.sqrt(qc[..., None] ** 2 + z * z)
    integrand = (1.0 - r) ** 4 * (1.0 + 4.0 * r)
    half = 0.5 * zmax * np.sum(wq * integrand, axis=-1)   # ∫_0^zmax
    return np.where(q < 1.0, 21.0 / (2.0 * np.pi) * 2.0 * half, 0.0)


def _kernel_coefficients() -> np.ndarray:
    """The projected kernel as the compiled code evaluates it: ``(_DEG + 1, _NSEG)`` float32.

    Segment ``s`` covers ``s / _NSEG <= q < (s + 1) / _NSEG`` and holds the
    least-squares polynomial (256 Chebyshev nodes) of degree ``_DEG`` in
    ``t = q - s / _NSEG``: ``K(q) = sum_k C[k, s] t^k``, clamped to >= 0, and 0 for
    ``q >= 1``.  Largest deviation from :func:`projected_wendland_c2`: 1.3e-7 of the
    peak ``f(0)`` (float32 coefficients included).
    """
    coef = np.empty((_DEG + 1, _NSEG))
    nodes = 0.5 * (1.0 - np.cos(np.pi * (np.arange(256) + 0.5) / 256))
    for s in range(_NSEG):
        t = nodes / _NSEG
        coef[:, s] = np.polynomial.polynomial.polyfit(t, projected_wendland_c2(s / _NSEG + t), _DEG)
    return np.ascontiguousarray(coef, dtype=np.float32)


def _kernel_integral(coef: np.ndarray) -> float:
    """``2 pi ∫_0^1 K(q) q dq`` of the piecewise polynomial (exact, in float64)."""
    total = 0.0
    for s in range(_NSEG):
        a, h = s / _NSEG, 1.0 / _NSEG
        for k in range(_DEG + 1):
            # ∫_0^h t^k (a + t) dt
            total += float(coef[k, s]) * (a * h ** (k + 1) / (k + 1) + h ** (k + 2) / (k + 2))
    return 2.0 * math.pi * total


#: What the kernel reads: the piecewise-polynomial coefficients, degree-major.
_KERNEL_COEF = _kernel_coefficients()
#: Integral of that kernel over the unit disk (1 up to its 1e-7 deviation).
_KERNEL_INTEGRAL = _kernel_integral(_KERNEL_COEF)


def _chunks(n: int, length: int) -> np.ndarray:
    starts = np.arange(0, n, length, dtype=np.int64)
    return np.ascontiguousarray(np.stack([starts, np.minimum(starts + length, n)], axis=1))


def _aabb_half_extent(u: np.ndarray, v: np.ndarray, n: np.ndarray, depth: float,
                     half_width: float) -> np.ndarray:
    """Half extents of the axis-aligned box around the slab x square footprint.

    The region ``|d.n| <= depth, |d.u| <= half_width, |d.v| <= half_width`` lies
    within ``|d_a| <= depth |n_a| + half_width (|u_a| + |v_a|)`` for each axis ``a``.
    """
    return depth * np.abs(n) + half_width * (np.abs(u) + np.abs(v))


def _slab_segments(c: np.ndarray, u: np.ndarray, v: np.ndarray, n: np.ndarray, depth: float,
                   reach: float, cell_size: float, boxsize: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes whose union covers the slab x footprint, for the cell index.

    Along an axis-aligned line of sight one axis-aligned box is tight.  Along an
    oblique one, a single box around the whole slab is mostly empty, so the slab is
    cut into segments along ``n`` about as long as the footprint (or two cells) is
    wide, each with its own box.  ``reach`` is the half width of the footprint plus
    any kernel reach; a relative margin keeps the boxes supersets under rounding.
    """
    grow = np.abs(u) + np.abs(v)
    nseg = 1
    if np.count_nonzero(n) > 1:
        nseg = max(1, math.ceil(2.0 * depth / max(2.0 * reach, 2.0 * cell_size)))
    half_len = depth / nseg
    t = -depth + (np.arange(nseg) + 0.5) * (2.0 * depth / nseg)
    centres = c + t[:, None] * n[None, :]      # left unwrapped: the index wraps cells
    half = half_len * np.abs(n) + reach * grow
    half = half + 1e-6 * (2.0 * boxsize + half)
    return centres, np.broadcast_to(half, centres.shape)


def project(
    positions: npt.ArrayLike,
    weights: npt.ArrayLike,
    centre: npt.ArrayLike,
    boxsize: float | None,
    *,
    los: LosLike = "z",
    azimuth: float = 0.0,
    depth: float = 50.0,
    width: float,
    npix: int = 120,
    scheme: str = "ngp",
    smoothing_lengths: npt.ArrayLike | None = None,
    index: CellIndex | None = None,
    nthreads: int | None = None,
) -> np.ndarray:
    """Project particles along a line of sight and sum their weights per pixel.

    See the module docstring for the geometry and the schemes.

    Parameters
    ----------
    positions : (N, 3) ndarray, float32 or float64
        Positions [Mpc].  Used in place when C-contiguous (an array that is not
        is copied once).  Finite positions outside ``[0, boxsize)`` are wrapped.
    weights : (N,) or (N, k) array_like, real
        Quantity to sum per pixel; ``k`` channels (at most 64) share one
        selection pass.  float32/float64 are used in place (any strides), integer
        weights are converted to float64.
    centre : (3,) array_like
        Image centre [Mpc]; wrapped into the box when periodic.
    boxsize : float or None
        Side of the periodic cube [Mpc], or None for no wrapping.
    los : {"x", "y", "z", "diag"} or (3,) array_like, optional
        Line of sight, see :func:`los_basis`.
    azimuth : float, optional
        Rotation of the image about the line of sight [rad].
    depth : float, optional
        Half thickness of the slab: particles with ``|distance along los| <= depth``
        contribute [Mpc].  At most ``boxsize / 2`` in a periodic box.
    width : float
        Full side of the square image [Mpc].
    npix : int, optional
        Pixels per side.
    scheme : {"ngp", "cic", "sph"}, optional
        Deposition scheme.
    smoothing_lengths : (N,) array_like, optional
        Kernel support radii ``H`` [Mpc], finite and positive; required (and only
        used) for ``scheme="sph"``.
    index : CellIndex, optional
        Cell index built over these very ``positions`` (same array) and this
        ``boxsize``: only particles in the cells that the slab x footprint (plus
        kernel reach) touches are visited.  The image is the same as without it.
        For ``"sph"`` the index must have been built with ``smoothing_lengths``.
    nthreads : int, optional
        OpenMP threads.  Default: OpenMP's default (e.g. ``OMP_NUM_THREADS``), but
        no more than one per ``SCAN_PER_THREAD`` particles scanned for NGP/CIC
        (``INDEXED_PER_THREAD`` with an index; ``CHUNK_SPH`` for SPH).

    Returns
    -------
    ndarray
        ``(npix, npix)`` float64 for 1-D weights, ``(k, npix, npix)`` for
        ``(N, k)`` weights; ``image[..., i, j]`` is row ``i`` along ``v``, column
        ``j`` along ``u``.

    Raises
    ------
    InputError
        (a ``ValueError``) naming the argument: wrong shapes or dtypes, ``npix < 1``,
        ``width <= 0``, ``depth <= 0`` or ``> boxsize / 2``, non-finite or non-positive
        smoothing lengths (``"sph"``), NaN/inf positions, NaN/inf weights of the
        particles that reach the image, or an index that does not belong to
        ``positions``.  Weights are read only for particles inside the slab whose
        kernel reaches the image; positions are all checked (by the index build
        when ``index`` is given); smoothing lengths are checked for every particle
        scanned (with an index: those in the visited cells).
    """
    pos = as_positions(positions)
    npart = pos.shape[0]
    w = real_array("weights", weights)
    if w.ndim == 1:
        single = True
        w = w.reshape(-1, 1)
    elif w.ndim == 2:
        single = False
    else:
        raise InputError(f"weights must have shape (N,) or (N, k), got {w.shape}")
    if w.shape[0] != npart:
        raise InputError(f"weights must have one row per particle ({npart}), got {w.shape[0]}")
    if not 1 <= w.shape[1] <= _kernels.MAX_CHANNELS:
        raise InputError(f"weights must have 1 to {_kernels.MAX_CHANNELS} channels, got {w.shape[1]}")
    if boxsize is not None:
        boxsize = finite_float("boxsize", boxsize)
    c = wrapped_centre(centre, boxsize)
    u, v, n = los_basis(los, azimuth)
    depth = finite_float("depth", depth)
    if boxsize is not None and depth > 0.5 * boxsize:
        raise InputError(f"depth ({depth}) must not exceed boxsize / 2 ({0.5 * boxsize}) "
                         "in a periodic box: a particle would be counted twice")
    width = finite_float("width", width)
    if isinstance(npix, bool) or not isinstance(npix, (int, np.integer)) or npix < 1:
        raise InputError(f"npix must be an integer >= 1, got {npix!r}")
    npix = int(npix)
    if scheme not in SCHEMES:
        raise InputError(f"scheme must be one of {sorted(SCHEMES)}, got {scheme!r}")
    if scheme == "sph":
        if smoothing_lengths is None:
            raise InputError('smoothing_lengths are required for scheme="sph"')
        hs = real_array("smoothing_lengths", smoothing_lengths)
        if hs.shape != (npart,):
            raise InputError(f"smoothing_lengths must have shape ({npart},), got {hs.shape}")
    else:
        hs = np.empty(0, dtype=np.float32)

    pix = width / npix
    half_width = 0.5 * width + (0.5 * pix if scheme == "cic" else 0.0)
    e = _aabb_half_extent(u, v, n, depth, half_width)
    grow = np.abs(u) + np.abs(v)
    big = float(np.finfo(pos.dtype).max)
    if boxsize is not None:
        margin = 1e-6 * (2.0 * boxsize + e)
        e_pre = e + margin
        f_pre = boxsize - e_pre
    else:
        margin = 1e-6 * (2.0 * np.abs(c).max() + 2.0 * e) + 1e-30
        e_pre = e + margin
        f_pre = np.full(3, np.inf)
    prefilter = np.concatenate([e_pre, f_pre, grow * (1.0 + 1e-6), [big]]).astype(np.float64)

    hmax = math.inf
    chunk = CHUNK_SPH if scheme == "sph" else CHUNK
    if index is not None:
        index._check_compatible(pos, boxsize)
        reach = half_width
        if scheme == "sph":
            if index.max_smoothing_length is None:
                raise InputError('index was built without smoothing_lengths; build CellIndex(..., '
                                 'smoothing_lengths=h) to use it with scheme="sph"')
            hmax = index.max_smoothing_length
            reach += hmax
        seg_centres, seg_half = _slab_segments(c, u, v, n, depth, reach, index.cell_size, boxsize)
        chunks = index.cell_ranges(seg_centres, seg_half, max_length=chunk)
        perm = index.permutation
        use_perm = True
    else:
        chunks = _chunks(npart, chunk)
        perm = np.empty(0, dtype=np.int32)
        use_perm = False

    nt = thread_count(nthreads)
    if nthreads is None:
        work = int((chunks[:, 1] - chunks[:, 0]).sum())
        if scheme == "sph":
            per_thread = CHUNK_SPH
        else:
            per_thread = SCAN_PER_THREAD if index is None else INDEXED_PER_THREAD
        nt = max(1, min(nt, -(-work // per_thread)))
    image, flags = _kernels.project_particles(
        pos, w, hs, perm, use_perm, chunks, c, 0.0 if boxsize is None else boxsize,
        u, v, n, depth, width, npix, SCHEMES[scheme], prefilter, _KERNEL_COEF.ravel(), _KERNEL_INTEGRAL,
        hmax, nt,
    )
    if flags & _kernels.FLAG_POSITION:
        raise InputError("positions contain NaN or infinite values")
    if flags & _kernels.FLAG_SMOOTHING:
        raise InputError("smoothing_lengths must be finite and positive")
    if flags & _kernels.FLAG_ABOVE_INDEX_HMAX:
        raise InputError("smoothing_lengths exceed the largest one the index was built with; "
                         "rebuild the CellIndex with these smoothing_lengths")
    if flags & _kernels.FLAG_WEIGHT:
        raise InputError("weights contain NaN or infinite values")
    return image[0] if single else image
