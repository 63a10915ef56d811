# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Friends-of-friends by union-find over a periodic cell grid (compiled core of
:func:`cmcore.halos.friends_of_friends`).

Memory: one parent index per particle (int32 below 2**31 particles) for the
union-find forest, a cell permutation of the same type and one int64 offset per
coarse cell; temporaries hold one cell and its neighbourhood only.

Cells
-----
The box is cut into ``G = nc * m`` fine cells per side (``f = L / G``) grouped
into ``nc`` coarse cells of ``m`` fine cells.  ``f * sqrt(3) < b_link``: two
particles of one fine cell are always friends.  The coarse side ``L / nc`` is at
least the linking length, so friends lie in the same or adjacent coarse cells.
A particle's fine cell is ``min(floor(x * G / L), G - 1)`` of its position
wrapped into ``[0, L)``; its coarse cell is the fine cell divided by ``m``, so
fine cells nest exactly in coarse ones.

Linking
-------
Coarse cells are visited in order.  The neighbourhood of a cell ``C`` is its own
particles plus the particles of its 13 *forward* neighbours (offsets after
(0, 0, 0) in lexicographic order) that lie within the linking length of ``C``'s
faces, shifted by the box where the neighbour lies across the boundary, so every
pair of adjacent cells is examined once.  A sparse cell tests all pairs.  A cell
with many particles is sorted into its fine cells: each fine cell is one set,
and two fine cells within reach are joined at their first pair of friends,
skipped when they already share a root.  Roots are the smallest particle index
of their set (larger roots are hung under smaller ones), so the final labels
do not depend on the visiting order.
"""
import numpy as np
cimport numpy as cnp
from libc.math cimport floor, ceil, sqrt
from libc.stdlib cimport malloc, realloc, free, qsort
from libc.stdint cimport int32_t, int64_t, uint64_t

cnp.import_array()

ctypedef fused real_t:
    float
    double

ctypedef fused idx_t:
    int32_t
    int64_t


cdef inline idx_t _find(idx_t* parent, idx_t i) noexcept nogil:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


cdef inline void _union(idx_t* parent, idx_t a, idx_t b) noexcept nogil:
    a = _find(parent, a)
    b = _find(parent, b)
    if a == b:
        return
    if a < b:
        parent[b] = a
    else:
        parent[a] = b


cdef int _cmp_u64(const void* a, const void* b) noexcept nogil:
    cdef uint64_t x = (<const uint64_t*>a)[0]
    cdef uint64_t y = (<const uint64_t*>b)[0]
    return (x > y) - (x < y)


cdef inline long long _fine(double x, double boxsize, double scale, long long g) noexcept nogil:
    cdef long long i
    x = x - boxsize * floor(x / boxsize)
    i = <long long>(x * scale)
    if i >= g:
        i = g - 1
    if i < 0:
        i = 0
    return i


def coarse_sort(real_t[:, ::1] pos, double boxsize, int nc, int m, idx_t[::1] perm,
                int64_t[::1] offsets):
    """Counting-sort particles into ``nc**3`` coarse cells (stable).

    ``perm[offsets[c]:offsets[c+1]]`` are the particles of coarse cell
    ``c = (cx*nc + cy)*nc + cz``.
    """
    cdef Py_ssize_t n = pos.shape[0], i
    cdef long long g = <long long>nc * m, ncells = <long long>nc * nc * nc, c
    cdef double scale = g / boxsize
    cdef int64_t[::1] cell = np.empty(n, dtype=np.int64)
    with nogil:
        for c in range(ncells + 1):
            offsets[c] = 0
        for i in range(n):
            c = ((_fine(pos[i, 0], boxsize, scale, g) // m) * nc
                 + _fine(pos[i, 1], boxsize, scale, g) // m) * nc + _fine(pos[i, 2], boxsize, scale, g) // m
            cell[i] = c
            offsets[c + 1] += 1
        for c in range(ncells):
            offsets[c + 1] += offsets[c]
        for i in range(n):
            c = cell[i]
            perm[offsets[c]] = <idx_t>i
            offsets[c] += 1
        for c in range(ncells, 0, -1):
            offsets[c] = offsets[c - 1]
        offsets[0] = 0


def link(real_t[:, ::1] pos, double boxsize, double linking_length, int nc, int m,
         idx_t[::1] perm, int64_t[::1] offsets, idx_t[::1] parent, long long dense_threshold):
    """Union-find over every pair of particles closer than ``linking_length`` (periodic).

    ``parent`` is set to the identity, then every particle's entry is left at
    the root of its group (the group's smallest particle index).
    """
    cdef Py_ssize_t n = pos.shape[0], i
    cdef long long g = <long long>nc * m
    cdef double scale = g / boxsize, side = boxsize / nc, f = boxsize / g
    cdef double ll2 = linking_length * linking_length, ll = linking_length
    cdef int reach = <int>ceil(linking_length / f)
    cdef int width = m + 2 * reach
    cdef int cx, cy, cz, dx, dy, dz, nx, ny, nz, a
    cdef long long cid, nid, k, j, kk, jj, ra, rb, lo, hi, mid
    cdef long long n_own, n_loc, cap = 0, n_runs
    cdef double sx, sy, sz, x, y, z, ddx, ddy, ddz, lox, loy, loz, hix, hiy, hiz
    cdef double* lx = NULL
    cdef double* ly = NULL
    cdef double* lz = NULL
    cdef long long* gid = NULL
    cdef long long* fkey = NULL
    cdef uint64_t* order = NULL
    cdef long long* run_key = NULL
    cdef long long* run_start = NULL
    cdef idx_t* par = &parent[0] if n > 0 else NULL
    cdef long long fx, fy, fz, key_a, key_b, n_off = 0
    cdef int ox, oy, oz, gx, gy, gz, inside
    cdef double gap
    cdef long long[::1] off_key = np.empty((2 * reach + 1) ** 3, dtype=np.int64)
    cdef int[:, ::1] off_vec = np.empty(((2 * reach + 1) ** 3, 3), dtype=np.intc)
    cdef bint found
    cdef uint64_t lowmask = 0xFFFFFFFFU

    # fine-cell offsets whose cells can hold a pair of friends
    for ox in range(-reach, reach + 1):
        for oy in range(-reach, reach + 1):
            for oz in range(-reach, reach + 1):
                if ox == 0 and oy == 0 and oz == 0:
                    continue
                gap = 0.0
                if ox > 1 or ox < -1:
                    gap += ((ox if ox > 0 else -ox) - 1) ** 2 * f * f
                if oy > 1 or oy < -1:
                    gap += ((oy if oy > 0 else -oy) - 1) ** 2 * f * f
                if oz > 1 or oz < -1:
                    gap += ((oz if oz > 0 else -oz) - 1) ** 2 * f * f
                if gap > ll2:
                    continue
                off_key[n_off] = (<long long>ox * width + oy) * width + oz
                off_vec[n_off, 0] = ox
                off_vec[n_off, 1] = oy
                off_vec[n_off, 2] = oz
                n_off += 1

    with nogil:
        for i in range(n):
            par[i] = <idx_t>i
        try:
            for cx in range(nc):
                for cy in range(nc):
                    for cz in range(nc):
                        cid = (<long long>cx * nc + cy) * nc + cz
                        n_own = offsets[cid + 1] - offsets[cid]
                        if n_own == 0:
                            continue
                        lox, loy, loz = cx * side, cy * side, cz * side
                        hix, hiy, hiz = lox + side, loy + side, loz + side
                        # own particles, then forward neighbours' particles near the faces
                        n_loc = 0
                        for dx in range(0, 2):
                            for dy in range(-1 if dx else 0, 2):
                                for dz in range(-1 if (dx or dy) else 0, 2):
                                    nx, ny, nz = cx + dx, cy + dy, cz + dz
                                    sx = sy = sz = 0.0
                                    if nx >= nc:
                                        nx = nx - nc
                                        sx = boxsize
                                    if ny >= nc:
                                        ny = ny - nc
                                        sy = boxsize
                                    elif ny < 0:
                                        ny = ny + nc
                                        sy = -boxsize
                                    if nz >= nc:
                                        nz = nz - nc
                                        sz = boxsize
                                    elif nz < 0:
                                        nz = nz + nc
                                        sz = -boxsize
                                    nid = (<long long>nx * nc + ny) * nc + nz
                                    k = offsets[nid + 1] - offsets[nid]
                                    if n_loc + k > cap:
                                        cap = 2 * (n_loc + k) + 64
                                        lx = <double*>realloc(lx, cap * sizeof(double))
                                        ly = <double*>realloc(ly, cap * sizeof(double))
                                        lz = <double*>realloc(lz, cap * sizeof(double))
                                        gid = <long long*>realloc(gid, cap * sizeof(long long))
                                        fkey = <long long*>realloc(fkey, cap * sizeof(long long))
                                        order = <uint64_t*>realloc(order, cap * sizeof(uint64_t))
                                        run_key = <long long*>realloc(run_key, cap * sizeof(long long))
                                        run_start = <long long*>realloc(run_start, (cap + 1) * sizeof(long long))
                                        if (lx == NULL or ly == NULL or lz == NULL or gid == NULL or fkey == NULL
                                                or order == NULL or run_key == NULL or run_start == NULL):
                                            with gil:
                                                raise MemoryError()
                                    for kk in range(offsets[nid], offsets[nid + 1]):
                                        j = perm[kk]
                                        x = pos[j, 0] - boxsize * floor(pos[j, 0] / boxsize) + sx
                                        y = pos[j, 1] - boxsize * floor(pos[j, 1] / boxsize) + sy
                                        z = pos[j, 2] - boxsize * floor(pos[j, 2] / boxsize) + sz
                                        if dx or dy or dz:
                                            if (x < lox - ll or x > hix + ll or y < loy - ll or y > hiy + ll
                                                    or z < loz - ll or z > hiz + ll):
                                                continue
                                        lx[n_loc] = x
                                        ly[n_loc] = y
                                        lz[n_loc] = z
                                        gid[n_loc] = j
                                        # fine cell relative to the cell's first fine cell
                                        if n_own > dense_threshold:
                                            fx = _fine(pos[j, 0], boxsize, scale, g) - <long long>cx * m + reach
                                            fy = _fine(pos[j, 1], boxsize, scale, g) - <long long>cy * m + reach
                                            fz = _fine(pos[j, 2], boxsize, scale, g) - <long long>cz * m + reach
                                            if sx > 0:
                                                fx = fx + g
                                            if sy > 0:
                                                fy = fy + g
                                            elif sy < 0:
                                                fy = fy - g
                                            if sz > 0:
                                                fz = fz + g
                                            elif sz < 0:
                                                fz = fz - g
                                            fkey[n_loc] = (fx * width + fy) * width + fz
                                        n_loc += 1
                        if n_own <= dense_threshold:
                            for k in range(n_own):
                                for j in range(k + 1, n_loc):
                                    ddx = lx[j] - lx[k]
                                    ddy = ly[j] - ly[k]
                                    ddz = lz[j] - lz[k]
                                    if ddx * ddx + ddy * ddy + ddz * ddz <= ll2:
                                        _union(par, <idx_t>gid[k], <idx_t>gid[j])
                            continue
                        # dense cell: sort by fine cell, one set per fine cell
                        for k in range(n_loc):
                            order[k] = (<uint64_t>fkey[k] << 32) | <uint64_t>k
                        qsort(order, n_loc, sizeof(uint64_t), _cmp_u64)
                        n_runs = 0
                        for k in range(n_loc):
                            kk = <long long>(order[k] >> 32)
                            if n_runs == 0 or run_key[n_runs - 1] != kk:
                                run_key[n_runs] = kk
                                run_start[n_runs] = k
                                n_runs += 1
                            else:
                                _union(par, <idx_t>gid[order[run_start[n_runs - 1]] & lowmask],
                                       <idx_t>gid[order[k] & lowmask])
                        run_start[n_runs] = n_loc
                        for ra in range(n_runs):
                            key_a = run_key[ra]
                            gz = <int>(key_a % width) - reach
                            gy = <int>((key_a // width) % width) - reach
                            gx = <int>(key_a // width // width) - reach
                            if gx < 0 or gx >= m or gy < 0 or gy >= m or gz < 0 or gz >= m:
                                continue  # a neighbour's fine cell: linked from its own cell
                            for a in range(n_off):
                                ox = off_vec[a, 0]
                                oy = off_vec[a, 1]
                                oz = off_vec[a, 2]
                                inside = (0 <= gx + ox < m) and (0 <= gy + oy < m) and (0 <= gz + oz < m)
                                key_b = key_a + off_key[a]
                                if inside and key_b <= key_a:
                                    continue
                                lo = 0
                                hi = n_runs
                                while lo < hi:
                                    mid = (lo + hi) >> 1
                                    if run_key[mid] < key_b:
                                        lo = mid + 1
                                    else:
                                        hi = mid
                                if lo >= n_runs or run_key[lo] != key_b:
                                    continue
                                rb = lo
                                if (_find(par, <idx_t>gid[order[run_start[ra]] & lowmask])
                                        == _find(par, <idx_t>gid[order[run_start[rb]] & lowmask])):
                                    continue
                                found = False
                                for k in range(run_start[ra], run_start[ra + 1]):
                                    kk = <long long>(order[k] & lowmask)
                                    for j in range(run_start[rb], run_start[rb + 1]):
                                        jj = <long long>(order[j] & lowmask)
                                        ddx = lx[jj] - lx[kk]
                                        ddy = ly[jj] - ly[kk]
                                        ddz = lz[jj] - lz[kk]
                                        if ddx * ddx + ddy * ddy + ddz * ddz <= ll2:
                                            _union(par, <idx_t>gid[kk], <idx_t>gid[jj])
                                            found = True
                                            break
                                    if found:
                                        break
            for i in range(n):
                par[i] = _find(par, <idx_t>i)
        finally:
            free(lx)
            free(ly)
            free(lz)
            free(gid)
            free(fkey)
            free(order)
            free(run_key)
            free(run_start)


def group_members(idx_t[::1] roots, idx_t[::1] work, long long min_members):
    """Groups of at least ``min_members`` from the roots left by :func:`link`.

    ``work`` (same length, overwritten) holds counts, then group numbers.
    Returns ``(sizes, members)``: group sizes, largest first (ties: smaller
    root first), and the concatenated member indices of each group in that
    order, ascending within a group.
    """
    cdef Py_ssize_t n = roots.shape[0], i
    cdef long long r, ngroups = 0, total = 0, gidx
    with nogil:
        for i in range(n):
            work[i] = 0
        for i in range(n):
            work[roots[i]] += 1
    counts = np.asarray(work)
    big = np.flatnonzero(counts >= min_members)
    sizes = counts[big].astype(np.int64)
    rank = np.argsort(-sizes, kind="stable")
    big, sizes = big[rank], sizes[rank]
    starts_arr = np.zeros(len(big) + 1, dtype=np.int64)
    np.cumsum(sizes, out=starts_arr[1:])
    cdef int64_t[::1] fill = starts_arr[:-1].copy()
    cdef int64_t[::1] members = np.empty(int(starts_arr[-1]), dtype=np.int64)
    cdef int64_t[::1] bigv = big.astype(np.int64)
    ngroups = bigv.shape[0]
    with nogil:
        for i in range(n):
            work[i] = -1
        for gidx in range(ngroups):
            work[bigv[gidx]] = <idx_t>gidx
        for i in range(n):
            gidx = work[roots[i]]
            if gidx >= 0:
                members[fill[gidx]] = i
                fill[gidx] += 1
    return sizes, np.asarray(members), starts_arr
