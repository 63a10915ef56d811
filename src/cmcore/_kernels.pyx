# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled loops of cmc: particle selection, projection and deposition, cell index.

Nothing here validates its arguments: :mod:`cmcore.projection` and
:mod:`cmcore.cellindex` do that and are the only callers.

Projection design (select, then deposit)
----------------------------------------
The particles are visited in *chunks* (ranges of particle ids, or of positions
in a :class:`~cmcore.cellindex.CellIndex` permutation).  Chunks are dealt to
the OpenMP threads round-robin (``schedule(static, 1)``), so a result only
depends on the number of threads.  Each particle first meets a cheap *prefilter*
in the positions' own precision: for every axis ``a`` the absolute offset
``|x_a - c_a|`` is compared with the half extent ``e_a`` of the axis-aligned
box that bounds the rotated slab x footprint (plus a rounding margin), as
``|dx| <= e_a or |dx| >= L - e_a`` -- the periodic minimum-image test without a
``floor``, valid while ``|dx| < L``.  The comparisons are combined with bitwise
``&``/``|`` so the loop has a single, nearly always untaken branch.  Particles
that pass, and particles with ``|dx| >= L`` or a NaN/inf coordinate (not
``|dx| < L``), take the *exact path* in float64: minimum image
``d - L*floor(d/L + 0.5)``, distance along the line of sight, rotation, pixel
coordinates and deposition.  Weights are read only on the exact path.

Each thread deposits into its own image buffer (``nthreads`` buffers, summed at
the end).  Measured against one shared image updated with ``omp atomic`` adds
(2-core Xeon, 2 threads, 120 x 120): equal when few particles deposit (1e7
uniform particles, 5 Mpc image: 9.6 ms both), but 2.7x (NGP, 20 vs 53 ms) and
3.2x (CIC, 43 vs 136 ms) faster when 4e6 particles of a cluster core all land in
the image -- atomics serialise on hot pixels -- so buffers are used.

Problems found on the way (NaN/inf positions or weights, bad smoothing lengths)
are returned as bit flags; the Python layer turns them into errors.
"""
from cython.parallel cimport prange, threadid
from libc.math cimport INFINITY, ceil, fabs, fabsf, floor, fmin, isfinite, sqrt

import os

import numpy as np

# The C side (SIMD kernels, run-time dispatch, OpenMP helpers) is the header
# _kernels_simd.h next to this file, shipped with it as package data.
cdef extern from "_kernels_simd.h" nogil:
    int cmc_max_threads()
    int cmc_have_openmp()
    void CMC_PREFETCH(const void* p)
    Py_ssize_t cmc_prefilter_f32(const float* p, Py_ssize_t i0, Py_ssize_t i1,
                                 const float* c24, const float* e24, const float* f24,
                                 const int* bit24, float L, Py_ssize_t* out)
    Py_ssize_t cmc_prefilter_f64(const double* p, Py_ssize_t i0, Py_ssize_t i1,
                                 const double* c24, const double* e24, const double* f24,
                                 const int* bit24, double L, Py_ssize_t* out)
    double cmc_kernel_row(double* vals, Py_ssize_t n, double x0, double dy2, double inv_r2,
                          const float* C)
    int cmc_init_dispatch(int max_level)
    double cmc_kernel_row_wide(double* vals, Py_ssize_t n, double x0, double dy2,
                               double inv_r2, const float* C)
    void cmc_kernel_row_add_wide(double* img, Py_ssize_t n, double x0, double dy2,
                                 double inv_r2, const float* C, double a)
    void cmc_kernel_row_add(double* img, Py_ssize_t n, double x0, double dy2, double inv_r2,
                            const float* C, double a)
    void cmc_box_add(double* img, Py_ssize_t npix, Py_ssize_t plane, int k, Py_ssize_t j0,
                     Py_ssize_t i0, int ny, const double* vals, const double* scale)
    double cmc_kernel_box(double* vals, int nx, int ny, double x0, double y0, double inv_r2,
                          const float* C)
    void cmc_axpy(double* y, const double* x, Py_ssize_t n, double a)
    double cmc_kernel_box16(double* vals, int nx, int ny, double x0, double y0, double inv_r2,
                            const float* C)
    void cmc_box16_add(double* img, Py_ssize_t npix, Py_ssize_t plane, int k, Py_ssize_t j0,
                       Py_ssize_t i0, int ny, const double* vals, const double* scale)


ctypedef fused pos_t:
    float
    double

ctypedef fused w_t:
    float
    double

ctypedef fused h_t:
    float
    double

ctypedef fused idx_t:
    int
    long long

#: Bit flags returned by the kernels.
FLAG_POSITION = 1
FLAG_WEIGHT = 2
FLAG_SMOOTHING = 4
FLAG_ABOVE_INDEX_HMAX = 8

cdef enum:
    F_POS = 1
    F_W = 2
    F_H = 4
    F_HMAX = 8
    MAXK = 64
    SCHEME_NGP = 0
    SCHEME_CIC = 1
    SCHEME_SPH = 2

#: Largest number of weight channels one call can deposit.
MAX_CHANNELS = MAXK


cdef struct Geom:
    double c[3]         # centre (wrapped into [0, L) when periodic)
    double L            # box side; 0 when not periodic
    double wrap_free    # 0.49 L: offsets below it need no periodic wrap
    double u[3]
    double v[3]
    double n[3]
    double depth        # half thickness of the slab
    double reach        # how far outside the image [pixels] a particle can still deposit
    double hw           # width / 2
    double inv_pix      # npix / width
    double hmax         # largest allowed smoothing length (index path), else inf
    int npix
    int k
    int scheme
    const float* coef   # projected kernel: (7, 8) piecewise-polynomial coefficients
    double kernel_integral  # integral of that kernel over the unit disk
    bint wide           # SPH rows with cmc_kernel_row*_wide (most kernels are large)


#: SPH kernel evaluator: the widest this CPU has ("avx512", "avx2" or "portable"),
#: capped by the environment variable ``CMC_SPH_SIMD`` read at import
#: (``portable``, ``avx2``, ``avx512``/``auto``; e.g. to test the narrower paths).
_SIMD_NAMES = ("portable", "avx2", "avx512")
_SIMD_CAP = {"portable": 0, "scalar": 0, "avx2": 1, "avx512": 2, "auto": 2, "": 2}.get(
    os.environ.get("CMC_SPH_SIMD", "auto").strip().lower(), 2)
_SPH_SIMD = _SIMD_NAMES[cmc_init_dispatch(_SIMD_CAP)]


def sph_simd():
    """Which SPH kernel evaluator runs: "avx512" (16 pixels at a time), "avx2" (8) or "portable"."""
    return _SPH_SIMD


def sph_uses_avx2():
    """True when the SPH kernel is evaluated with AVX2 + FMA or wider (AVX-512) on this CPU."""
    return _SPH_SIMD != "portable"


def max_threads():
    """Number of threads an OpenMP region uses by default (1 without OpenMP)."""
    return cmc_max_threads()


def have_openmp():
    """True when the kernels were compiled with OpenMP."""
    return bool(cmc_have_openmp())


# --------------------------------------------------------------------------------------
# deposition of one selected particle
# --------------------------------------------------------------------------------------

cdef inline void _add(const Geom* g, double* out, Py_ssize_t row, Py_ssize_t col,
                      double frac, const double* wv) noexcept nogil:
    cdef Py_ssize_t plane = <Py_ssize_t>g.npix * g.npix
    cdef Py_ssize_t p = row * g.npix + col
    cdef int c
    for c in range(g.k):
        out[c * plane + p] += wv[c] * frac


cdef inline void _ngp(const Geom* g, double fu, double fv, const double* wv,
                      double* out) noexcept nogil:
    if fu >= 0.0 and fu < g.npix and fv >= 0.0 and fv < g.npix:
        _add(g, out, <Py_ssize_t>fv, <Py_ssize_t>fu, 1.0, wv)


cdef inline void _cic(const Geom* g, double fu, double fv, const double* wv,
                      double* out) noexcept nogil:
    cdef double fx = fu - 0.5
    cdef double fy = fv - 0.5
    cdef double x0 = floor(fx)
    cdef double y0 = floor(fy)
    cdef double tx = fx - x0
    cdef double ty = fy - y0
    cdef Py_ssize_t j0 = <Py_ssize_t>x0
    cdef Py_ssize_t i0 = <Py_ssize_t>y0
    cdef double wx[2]
    cdef double wy[2]
    cdef int a, b
    cdef Py_ssize_t row, col
    wx[0] = 1.0 - tx
    wx[1] = tx
    wy[0] = 1.0 - ty
    wy[1] = ty
    for a in range(2):
        row = i0 + a
        if row < 0 or row >= g.npix:
            continue
        for b in range(2):
            col = j0 + b
            if col < 0 or col >= g.npix:
                continue
            _add(g, out, row, col, wy[a] * wx[b], wv)


cdef enum:
    R_ANALYTIC = 16     # support radius [pixels] from which edge kernels use the analytic sum
    R_SMALL = 4         # below this support radius [pixels] the whole box is evaluated at once
    R_BOX16 = 8         # below this (and from R_SMALL) the same with boxes up to 16 x 16


def sph_scratch_size(int npix):
    """Scratch doubles one thread needs for SPH deposition on an npix x npix image.

    Kernel samples (at most ``npix**2``, or ``(2 R_ANALYTIC + 1)**2`` for a kernel
    below ``R_ANALYTIC`` pixels crossing the edge; kernels below ``R_BOX16`` pixels
    use none), followed by two column bounds per row (stored as doubles).
    """
    cdef Py_ssize_t rows = npix if npix > 2 * R_ANALYTIC + 1 else 2 * R_ANALYTIC + 1
    return npix * npix + (2 * R_ANALYTIC + 1) * (2 * R_ANALYTIC + 1) + 2 * rows


cdef inline void _sph_box(const Geom* g, double fu, double fv, double inv_r2, Py_ssize_t j0,
                          Py_ssize_t j1, Py_ssize_t i0, Py_ssize_t i1, const double* wv,
                          double* out, bint box16) noexcept nogil:
    """:func:`_sph` for a support radius below ``R_SMALL`` pixels (``box16`` false: box
    of at most 8 x 8 pixel centres) or from ``R_SMALL`` to below ``R_BOX16`` (``box16``
    true: at most 16 x 16), always normalised by its exact sum: one kernel evaluation
    call for the whole box, then the deposit of the part inside the image."""
    cdef Py_ssize_t nx = j1 - j0 + 1, ny = i1 - i0 + 1
    cdef double vals[4 * R_BOX16 * R_BOX16]
    cdef double scale[MAXK]
    cdef double total, norm
    cdef int c
    if box16:
        total = cmc_kernel_box16(vals, <int>nx, <int>ny, j0 - (fu - 0.5), i0 - (fv - 0.5),
                                 inv_r2, g.coef)
    else:
        total = cmc_kernel_box(vals, <int>nx, <int>ny, j0 - (fu - 0.5), i0 - (fv - 0.5),
                               inv_r2, g.coef)
    if total <= 0.0:
        _ngp(g, fu, fv, wv, out)
        return
    norm = 1.0 / total
    for c in range(g.k):
        scale[c] = wv[c] * norm
    if box16:
        cmc_box16_add(out, g.npix, <Py_ssize_t>g.npix * g.npix, g.k, j0, i0, <int>ny, vals,
                      scale)
    else:
        cmc_box_add(out, g.npix, <Py_ssize_t>g.npix * g.npix, g.k, j0, i0, <int>ny, vals, scale)


cdef void _sph_edge(const Geom* g, double fx, double fy, double r2, const double* wv,
                    double* out, double* scratch) noexcept nogil:
    """:func:`_sph` for a kernel of at least ``R_ANALYTIC`` pixels whose centre lies
    within 3/4 of its support radius of an image edge (or outside): one pass over
    its rows inside the image, normalised by ``r^2 * kernel_integral``.

    No second pass is needed: the pixel centres beyond the edge then hold at least
    2.5e-4 of the kernel's sum (6e-4 of its integral lies beyond a chord at 3/4 of
    the support radius; the smaller discrete share is the worst found over
    sub-pixel offsets from 16 pixels on), far more than the < 1e-7 by which the sum
    over all the pixel centres of the support can exceed ``r^2 * kernel_integral``,
    so the deposit never exceeds the weight.  One channel is evaluated straight into the image; several share one
    evaluation of each row in ``scratch``.
    """
    cdef double inv_r2 = 1.0 / r2
    cdef double norm = 1.0 / (r2 * g.kernel_integral)
    cdef double dy2, half
    cdef Py_ssize_t plane = <Py_ssize_t>g.npix * g.npix
    cdef Py_ssize_t ii, ra, rb, jlo, jhi, nrow
    cdef int c
    ra = <Py_ssize_t>ceil(fy - sqrt(r2))
    rb = <Py_ssize_t>floor(fy + sqrt(r2))
    if ra < 0:
        ra = 0
    if rb > g.npix - 1:
        rb = g.npix - 1
    for ii in range(ra, rb + 1):
        dy2 = (ii - fy) * (ii - fy)
        if dy2 >= r2:
            continue
        half = sqrt(r2 - dy2)
        jlo = <Py_ssize_t>ceil(fx - half)
        jhi = <Py_ssize_t>floor(fx + half)
        if jlo < 0:
            jlo = 0
        if jhi > g.npix - 1:
            jhi = g.npix - 1
        if jhi < jlo:
            continue
        nrow = jhi - jlo + 1
        if g.k == 1:
            if g.wide:
                cmc_kernel_row_add_wide(out + ii * g.npix + jlo, nrow, jlo - fx, dy2, inv_r2,
                                        g.coef, wv[0] * norm)
            else:
                cmc_kernel_row_add(out + ii * g.npix + jlo, nrow, jlo - fx, dy2, inv_r2,
                                   g.coef, wv[0] * norm)
        else:
            if g.wide:
                cmc_kernel_row_wide(scratch, nrow, jlo - fx, dy2, inv_r2, g.coef)
            else:
                cmc_kernel_row(scratch, nrow, jlo - fx, dy2, inv_r2, g.coef)
            for c in range(g.k):
                cmc_axpy(out + c * plane + ii * g.npix + jlo, scratch, nrow, wv[c] * norm)


cdef void _sph(const Geom* g, double fu, double fv, double H, const double* wv,
               double* out, double* scratch) noexcept nogil:
    """Spread one particle with the projected kernel sampled at pixel centres.

    The samples are divided by their sum over *all* the pixels the support covers,
    inside the image or not, so a kernel wholly inside deposits exactly its weight
    and at the image edge only the inside part is kept.  For a kernel that crosses
    the image edge with a support radius of at least ``R_ANALYTIC`` pixels the sum
    is taken as ``r^2 * kernel_integral`` (the discrete sum differs by < 1e-7
    relative), or the sum of the inside samples if larger, so huge kernels cost
    only their pixels inside the image and never deposit more than their weight
    (:func:`_sph_edge` when the inside sum cannot be larger: one pass).  A kernel
    whose support diameter is below one pixel, or that covers no pixel centre, goes
    into the pixel holding the particle; one below ``R_BOX16`` pixels is
    :func:`_sph_box` (a box of up to 8 x 8 pixels below ``R_SMALL``, else up to
    16 x 16: the whole box evaluated at once, then deposited).  Otherwise the
    samples are evaluated once, row by row along chords of the support, into
    ``scratch`` (:func:`sph_scratch_size` doubles).
    """
    cdef double r = H * g.inv_pix          # support radius in pixels
    cdef double r2 = r * r
    cdef double inv_r2 = 1.0 / r2
    cdef double fx = fu - 0.5              # pixel-centre coordinates
    cdef double fy = fv - 0.5
    cdef double dy2, total, norm, half
    cdef Py_ssize_t j0, j1, i0, i1, ii, ra, rb, jlo, jhi, ca, cb, off, nrow
    cdef Py_ssize_t plane = <Py_ssize_t>g.npix * g.npix
    cdef double* bounds
    cdef bint full
    cdef int c
    if 2.0 * r < 1.0:
        _ngp(g, fu, fv, wv, out)
        return
    j0 = <Py_ssize_t>ceil(fx - r)
    j1 = <Py_ssize_t>floor(fx + r)
    i0 = <Py_ssize_t>ceil(fy - r)
    i1 = <Py_ssize_t>floor(fy + r)
    if r < R_BOX16:
        _sph_box(g, fu, fv, inv_r2, j0, j1, i0, i1, wv, out, r >= R_SMALL)
        return
    full = (j0 >= 0 and i0 >= 0 and j1 < g.npix and i1 < g.npix) or r < R_ANALYTIC
    if not full and fmin(fmin(fx + 0.5, g.npix - 0.5 - fx),
                         fmin(fy + 0.5, g.npix - 0.5 - fy)) <= 0.75 * r:
        _sph_edge(g, fx, fy, r2, wv, out, scratch)
        return
    ra = i0
    rb = i1
    if not full:
        if ra < 0:
            ra = 0
        if rb > g.npix - 1:
            rb = g.npix - 1
    bounds = scratch + plane + (2 * R_ANALYTIC + 1) * (2 * R_ANALYTIC + 1)
    total = 0.0
    off = 0
    for ii in range(ra, rb + 1):
        dy2 = (ii - fy) * (ii - fy)
        half = sqrt(r2 - dy2) if r2 > dy2 else 0.0
        jlo = <Py_ssize_t>ceil(fx - half)
        jhi = <Py_ssize_t>floor(fx + half)
        if not full:
            if jlo < 0:
                jlo = 0
            if jhi > g.npix - 1:
                jhi = g.npix - 1
        bounds[2 * (ii - ra)] = <double>jlo
        bounds[2 * (ii - ra) + 1] = <double>jhi
        if jhi >= jlo:
            nrow = jhi - jlo + 1
            if g.wide:
                total += cmc_kernel_row_wide(scratch + off, nrow, jlo - fx, dy2, inv_r2, g.coef)
            else:
                total += cmc_kernel_row(scratch + off, nrow, jlo - fx, dy2, inv_r2, g.coef)
            off += nrow
    if not full:
        # analytic sum over the whole support, never below the part inside
        # (so an edge kernel never deposits more than its weight)
        if r2 * g.kernel_integral > total:
            total = r2 * g.kernel_integral
    if total <= 0.0:
        _ngp(g, fu, fv, wv, out)
        return
    norm = 1.0 / total
    off = 0
    for ii in range(ra, rb + 1):
        jlo = <Py_ssize_t>bounds[2 * (ii - ra)]
        jhi = <Py_ssize_t>bounds[2 * (ii - ra) + 1]
        if jhi < jlo:
            continue
        if ii >= 0 and ii < g.npix:
            ca = jlo if jlo > 0 else 0
            cb = jhi if jhi < g.npix - 1 else g.npix - 1
            if cb >= ca:
                for c in range(g.k):
                    cmc_axpy(out + c * plane + ii * g.npix + ca, scratch + off + (ca - jlo),
                             cb - ca + 1, wv[c] * norm)
        off += jhi - jlo + 1


# --------------------------------------------------------------------------------------
# the scan over one chunk
# --------------------------------------------------------------------------------------

cdef struct Arrays:
    const char* pos          # (N, 3) C-contiguous
    const char* w            # (N, k), strides ws0, ws1 bytes
    Py_ssize_t ws0
    Py_ssize_t ws1
    const char* hs           # (N,), stride hs0 bytes (scheme SPH only)
    Py_ssize_t hs0


cdef inline int _exact(const Arrays* arr, pos_t* pdummy, w_t* wdummy, h_t* hdummy,
                       Py_ssize_t i, const Geom* g, double* out, double* scratch) noexcept nogil:
    """Exact float64 selection and deposition of particle ``i``; returns FLAG bits.

    The ``*dummy`` pointers only select the specialisation (dtypes).
    """
    cdef const pos_t* p = <const pos_t*>arr.pos + 3 * i
    cdef double dx, dy, dz, s, uu, vv, fu, fv, reach, wval
    cdef double H = 0.0
    cdef double wv[MAXK]
    cdef int c
    if g.scheme == SCHEME_SPH:
        H = <double>(<const h_t*>(arr.hs + i * arr.hs0))[0]
        if not (H > 0.0 and isfinite(H)):
            return F_H
        if H > g.hmax:
            return F_HMAX
    dx = <double>p[0] - g.c[0]
    dy = <double>p[1] - g.c[1]
    dz = <double>p[2] - g.c[2]
    if not (isfinite(dx) & isfinite(dy) & isfinite(dz)):
        return F_POS
    if g.L > 0.0:
        # d - L*floor(d/L + 0.5); when |d| < 0.49 L the floor is exactly 0
        if not (fabs(dx) < g.wrap_free):
            dx = dx - g.L * floor(dx / g.L + 0.5)
        if not (fabs(dy) < g.wrap_free):
            dy = dy - g.L * floor(dy / g.L + 0.5)
        if not (fabs(dz) < g.wrap_free):
            dz = dz - g.L * floor(dz / g.L + 0.5)
    s = dx * g.n[0] + dy * g.n[1] + dz * g.n[2]
    uu = dx * g.u[0] + dy * g.u[1] + dz * g.u[2]
    vv = dx * g.v[0] + dy * g.v[1] + dz * g.v[2]
    fu = (uu + g.hw) * g.inv_pix
    fv = (vv + g.hw) * g.inv_pix
    reach = H * g.inv_pix if g.scheme == SCHEME_SPH else g.reach
    # one combined (bitwise) test: a single branch, mispredicted at most once
    if not ((fabs(s) <= g.depth) & (fu >= -reach) & (fu < g.npix + reach)
            & (fv >= -reach) & (fv < g.npix + reach)):
        return 0
    for c in range(g.k):
        wval = <double>(<const w_t*>(arr.w + i * arr.ws0 + c * arr.ws1))[0]
        if not isfinite(wval):
            return F_W
        wv[c] = wval
    if g.scheme == SCHEME_NGP:
        _ngp(g, fu, fv, wv, out)
    elif g.scheme == SCHEME_CIC:
        _cic(g, fu, fv, wv, out)
    else:
        _sph(g, fu, fv, H, wv, out, scratch)
    return 0


cdef enum:
    SUB = 2048          # particles per prefilter call (candidate buffer on the stack)
    PREFETCH = 16       # how far ahead indexed scans fetch positions
    RUN_MIN = 16        # consecutive particle ids from which an indexed scan vectorises


cdef int _scan_contiguous(const Arrays* arr, pos_t* pdummy, w_t* wdummy, h_t* hdummy,
                          Py_ssize_t start, Py_ssize_t end, const Geom* g, const double* pre,
                          double* out) noexcept nogil:
    """NGP/CIC over particle ids ``start..end``: vectorised prefilter, then exact path."""
    cdef pos_t c24[24]
    cdef pos_t e24[24]
    cdef pos_t f24[24]
    cdef int bit24[24]
    cdef Py_ssize_t cand[SUB]
    cdef pos_t L = <pos_t>(g.L if g.L > 0.0 else INFINITY)
    cdef Py_ssize_t b, nb, ncand, t
    cdef int k, flags = 0
    for k in range(24):
        c24[k] = <pos_t>g.c[k % 3]
        e24[k] = <pos_t>pre[k % 3]
        f24[k] = <pos_t>pre[3 + k % 3]
        bit24[k] = 1 << (k % 3)
    b = start
    while b < end:
        nb = end - b if end - b < SUB else SUB
        if pos_t is float:
            ncand = cmc_prefilter_f32(<const float*>arr.pos, b, b + nb, c24, e24, f24, bit24,
                                      L, cand)
        else:
            ncand = cmc_prefilter_f64(<const double*>arr.pos, b, b + nb, c24, e24, f24, bit24,
                                      L, cand)
        for t in range(ncand):
            flags |= _exact(arr, pdummy, wdummy, hdummy, cand[t], g, out, NULL)
        b += nb
    return flags


cdef int _scan_general(const Arrays* arr, pos_t* pdummy, w_t* wdummy, h_t* hdummy,
                       idx_t[:] perm, bint use_perm, Py_ssize_t start, Py_ssize_t end,
                       const Geom* g, const double* pre, double* out,
                       double* scratch) noexcept nogil:
    """Scalar prefilter (per-particle kernel reach for SPH; index permutation), then exact path."""
    cdef const pos_t* pos = <const pos_t*>arr.pos
    cdef pos_t c0 = <pos_t>g.c[0]
    cdef pos_t c1 = <pos_t>g.c[1]
    cdef pos_t c2 = <pos_t>g.c[2]
    cdef pos_t L = <pos_t>(g.L if g.L > 0.0 else INFINITY)
    cdef pos_t e0 = <pos_t>pre[0]
    cdef pos_t e1 = <pos_t>pre[1]
    cdef pos_t e2 = <pos_t>pre[2]
    cdef pos_t f0 = <pos_t>pre[3]
    cdef pos_t f1 = <pos_t>pre[4]
    cdef pos_t f2 = <pos_t>pre[5]
    cdef pos_t g0 = <pos_t>pre[6]
    cdef pos_t g1 = <pos_t>pre[7]
    cdef pos_t g2 = <pos_t>pre[8]
    cdef pos_t hbig = <pos_t>pre[9]        # prefilter bound on H (finite)
    cdef bint sph = g.scheme == SCHEME_SPH
    cdef pos_t x, y, z, ax, ay, az, hi, ex, ey, ez, fx, fy, fz
    cdef Py_ssize_t j, i, ip
    cdef int flags = 0, cand
    ex = e0
    ey = e1
    ez = e2
    fx = f0
    fy = f1
    fz = f2
    for j in range(start, end):
        if use_perm:
            i = perm[j]
            if j + PREFETCH < end:
                ip = perm[j + PREFETCH]
                CMC_PREFETCH(pos + 3 * ip)
                if sph:
                    CMC_PREFETCH(arr.hs + ip * arr.hs0)
        else:
            i = j
        x = pos[3 * i] - c0
        y = pos[3 * i + 1] - c1
        z = pos[3 * i + 2] - c2
        if pos_t is float:
            ax = fabsf(x)
            ay = fabsf(y)
            az = fabsf(z)
        else:
            ax = fabs(x)
            ay = fabs(y)
            az = fabs(z)
        cand = 0
        if sph:
            hi = <pos_t>(<const h_t*>(arr.hs + i * arr.hs0))[0]
            ex = e0 + hi * g0
            ey = e1 + hi * g1
            ez = e2 + hi * g2
            fx = f0 - hi * g0
            fy = f1 - hi * g1
            fz = f2 - hi * g2
            cand = ((hi > 0) & (hi <= hbig)) == 0
        cand = cand | ((((ax <= ex) | (ax >= fx)) & ((ay <= ey) | (ay >= fy))
                        & ((az <= ez) | (az >= fz)))
                       | (((ax < L) & (ay < L) & (az < L)) == 0))
        if cand:
            flags |= _exact(arr, pdummy, wdummy, hdummy, i, g, out, scratch)
    return flags


cdef int _scan_runs(const Arrays* arr, pos_t* pdummy, w_t* wdummy, h_t* hdummy,
                    idx_t[:] perm, Py_ssize_t start, Py_ssize_t end, const Geom* g,
                    const double* pre, double* out) noexcept nogil:
    """NGP/CIC over ``perm[start:end]``: runs of at least ``RUN_MIN`` consecutive
    particle ids take :func:`_scan_contiguous` (vectorised prefilter, streaming
    reads), everything between them :func:`_scan_general`.

    Particles stored in spatial order (as snapshots are) fill each cell with a few
    such runs; in random order the runs are short and this costs one comparison
    per candidate.
    """
    cdef Py_ssize_t j = start, pending = start, run
    cdef Py_ssize_t i0
    cdef int flags = 0
    while j < end:
        i0 = perm[j]
        run = 1
        while j + run < end and run < SUB and perm[j + run] == i0 + run:
            run += 1
        if run >= RUN_MIN:
            if pending < j:
                flags |= _scan_general(arr, pdummy, wdummy, hdummy, perm, True, pending, j, g,
                                       pre, out, NULL)
            flags |= _scan_contiguous(arr, pdummy, wdummy, hdummy, i0, i0 + run, g, pre, out)
            pending = j + run
        j += run
    if pending < end:
        flags |= _scan_general(arr, pdummy, wdummy, hdummy, perm, True, pending, end, g, pre,
                               out, NULL)
    return flags


cdef enum:
    R_WIDE = 16         # support radius [pixels] of a "large" kernel (wide SPH rows)
    WIDE_SAMPLE = 255   # smoothing lengths sampled to decide


cdef bint _mostly_large_kernels(h_t[:] hs, double inv_pix) noexcept:
    """Whether most of ``WIDE_SAMPLE`` evenly spaced smoothing lengths give a
    support radius of at least ``R_WIDE`` pixels (then the wide SPH rows pay)."""
    cdef Py_ssize_t n = hs.shape[0], j, m, large = 0
    if _SPH_SIMD != "avx512" or n == 0:
        return False
    m = n if n < WIDE_SAMPLE else WIDE_SAMPLE
    for j in range(m):
        if <double>hs[(j * (n - 1)) // m if m > 1 else 0] * inv_pix >= R_WIDE:
            large += 1
    return 2 * large > m


def project_particles(pos_t[:, ::1] pos, w_t[:, :] w, h_t[:] hs, idx_t[:] perm,
                      bint use_perm, long long[:, ::1] chunks, double[::1] centre,
                      double boxsize, double[::1] u, double[::1] v, double[::1] n,
                      double depth, double width, int npix, int scheme,
                      double[::1] prefilter, float[::1] coef, double kernel_integral,
                      double hmax, int nthreads):
    """Project and deposit the particles of ``chunks`` (see the module docstring).

    Parameters
    ----------
    pos : (N, 3) float32 or float64, C-contiguous
    w : (N, k) float32 or float64, any strides
    hs : (N,) smoothing lengths (scheme 2), else an empty array
    perm : index permutation when ``use_perm``, else an empty array
    use_perm : whether chunk bounds are positions in ``perm`` or particle ids
    chunks : (m, 2) int64 half-open ranges
    centre : (3,) centre, wrapped into [0, boxsize) when periodic
    boxsize : box side, 0 for no periodic wrapping
    u, v, n : image axes and line of sight
    depth, width, npix : slab half thickness, image side, pixels per side
    scheme : 0 NGP, 1 CIC, 2 SPH
    prefilter : (10,) e[3], L - e[3], growth of e per unit H [3], bound on H
    coef : (56,) float32 projected-kernel coefficients (``projection._kernel_coefficients``)
    kernel_integral : integral of that kernel over the unit disk
    hmax : largest smoothing length allowed (index built with smaller), inf otherwise
    nthreads : threads (and image buffers)

    Returns
    -------
    image : (k, npix, npix) float64
    flags : int, bitwise OR of FLAG_* found
    """
    cdef Geom g
    cdef int a
    for a in range(3):
        g.c[a] = centre[a]
        g.u[a] = u[a]
        g.v[a] = v[a]
        g.n[a] = n[a]
    g.L = boxsize
    g.wrap_free = 0.49 * boxsize
    g.depth = depth
    g.reach = 0.5 if scheme == SCHEME_CIC else 0.0
    g.hw = 0.5 * width
    g.inv_pix = npix / width
    g.hmax = hmax
    g.npix = npix
    g.k = <int>w.shape[1]
    g.scheme = scheme
    g.coef = &coef[0]
    g.kernel_integral = kernel_integral
    g.wide = scheme == SCHEME_SPH and _mostly_large_kernels(hs, g.inv_pix)
    buf_arr = np.zeros((nthreads, g.k, npix, npix), dtype=np.float64)
    cdef double[:, :, :, ::1] buf = buf_arr
    cdef double* bufp = &buf[0, 0, 0, 0]
    cdef Py_ssize_t stride = <Py_ssize_t>g.k * npix * npix
    cdef const double* pre = &prefilter[0]
    cdef Arrays arr
    arr.pos = <const char*>&pos[0, 0] if pos.shape[0] else NULL
    arr.w = <const char*>&w[0, 0] if w.shape[0] else NULL
    arr.ws0 = w.strides[0]
    arr.ws1 = w.strides[1]
    arr.hs = <const char*>&hs[0] if hs.shape[0] else NULL
    arr.hs0 = hs.strides[0]
    cdef pos_t* pdummy = NULL
    cdef w_t* wdummy = NULL
    cdef h_t* hdummy = NULL
    cdef bint contiguous = not use_perm and scheme != SCHEME_SPH
    cdef Py_ssize_t nscratch = sph_scratch_size(npix) if scheme == SCHEME_SPH else 1
    scratch_arr = np.empty((nthreads, nscratch), dtype=np.float64)
    cdef double[:, ::1] scratch = scratch_arr
    cdef double* scratchp = &scratch[0, 0]
    cdef Py_ssize_t m = chunks.shape[0], ci
    cdef int flags = 0, tid
    for ci in prange(m, nogil=True, num_threads=nthreads, schedule="static", chunksize=1):
        tid = threadid()
        if contiguous:
            flags |= _scan_contiguous(&arr, pdummy, wdummy, hdummy, chunks[ci, 0],
                                      chunks[ci, 1], &g, pre, bufp + tid * stride)
        elif use_perm and scheme != SCHEME_SPH:
            flags |= _scan_runs(&arr, pdummy, wdummy, hdummy, perm, chunks[ci, 0],
                                chunks[ci, 1], &g, pre, bufp + tid * stride)
        else:
            flags |= _scan_general(&arr, pdummy, wdummy, hdummy, perm, use_perm,
                                   chunks[ci, 0], chunks[ci, 1], &g, pre, bufp + tid * stride,
                                   scratchp + tid * nscratch)
    return buf_arr.sum(axis=0), flags


# --------------------------------------------------------------------------------------
# cell index
# --------------------------------------------------------------------------------------

def build_cell_index(pos_t[:, ::1] pos, double boxsize, int ncell, idx_t[::1] perm,
                     long long[::1] offsets, int nthreads):
    """Counting-sort the particles by periodic cell.

    Cell ``(ix, iy, iz)`` of side ``boxsize / ncell`` has id ``(ix*ncell + iy)*ncell + iz``;
    ``x`` is first wrapped into ``[0, boxsize)``.  Fills ``perm`` (particle ids in
    cell order, stable) and ``offsets`` (``ncell**3 + 1`` values: cell ``c`` holds
    ``perm[offsets[c]:offsets[c + 1]]``).  Returns FLAG_POSITION when a coordinate
    is NaN or infinite (then ``perm`` is meaningless), else 0.
    """
    cdef Py_ssize_t N = pos.shape[0], i
    cdef long long ncells = <long long>ncell * ncell * ncell, cid
    cell_arr = np.empty(N, dtype=np.int32)
    cdef int[::1] cell = cell_arr
    cdef double scale = ncell / boxsize
    cdef double x
    cdef int a, ia, flags = 0
    for i in prange(N, nogil=True, num_threads=nthreads, schedule="static"):
        cid = 0
        for a in range(3):
            x = <double>pos[i, a]
            if not isfinite(x):
                flags |= F_POS
                x = 0.0
            x = x - boxsize * floor(x / boxsize)
            ia = <int>(x * scale)
            if ia >= ncell:
                ia = ncell - 1
            if ia < 0:
                ia = 0
            cid = cid * ncell + ia
        cell[i] = <int>cid
    if flags:
        return flags
    offsets[:] = 0
    with nogil:
        for i in range(N):
            offsets[cell[i] + 1] += 1
        for cid in range(ncells):
            offsets[cid + 1] += offsets[cid]
    cursor_arr = np.asarray(offsets[:ncells]).copy()
    cdef long long[::1] cursor = cursor_arr
    with nogil:
        for i in range(N):
            cid = cell[i]
            perm[cursor[cid]] = <idx_t>i
            cursor[cid] += 1
    return 0


def select_particles(pos_t[:, ::1] pos, idx_t[::1] perm, long long[:, ::1] ranges,
                     double[::1] centre, double boxsize, double[::1] half, double radius,
                     bint sphere):
    """Exact periodic selection among the candidates ``perm[ranges]``.

    With ``d = x - c; d -= L*floor(d/L + 0.5)`` per axis (float64), a particle is
    kept when ``|d_a| <= half[a]`` for all axes (box) or when
    ``d_x*d_x + d_y*d_y + d_z*d_z <= radius*radius`` (sphere).  Returns the sorted
    int64 particle ids.
    """
    cdef Py_ssize_t m = ranges.shape[0], r, j, total = 0, nout = 0
    for r in range(m):
        total += ranges[r, 1] - ranges[r, 0]
    out_arr = np.empty(total, dtype=np.int64)
    cdef long long[::1] out = out_arr
    cdef double d[3]
    cdef double L = boxsize, r2 = radius * radius
    cdef long long i
    cdef int a, keep
    with nogil:
        for r in range(m):
            for j in range(ranges[r, 0], ranges[r, 1]):
                i = perm[j]
                for a in range(3):
                    d[a] = <double>pos[i, a] - centre[a]
                    d[a] = d[a] - L * floor(d[a] / L + 0.5)
                if sphere:
                    keep = d[0] * d[0] + d[1] * d[1] + d[2] * d[2] <= r2
                else:
                    keep = fabs(d[0]) <= half[0] and fabs(d[1]) <= half[1] and fabs(d[2]) <= half[2]
                if keep:
                    out[nout] = i
                    nout += 1
    return np.sort(out_arr[:nout])


def smoothing_length_max(h_t[:] h):
    """Largest value of ``h``, or -1 when any value is not finite and positive."""
    cdef Py_ssize_t N = h.shape[0], i
    cdef double x, hmax = 0.0
    cdef bint bad = False
    with nogil:
        for i in range(N):
            x = <double>h[i]
            if not (x > 0.0 and isfinite(x)):
                bad = True
                break
            if x > hmax:
                hmax = x
    return -1.0 if bad else hmax
