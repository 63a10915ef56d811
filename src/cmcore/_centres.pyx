# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Shrinking-sphere centres of particle groups (compiled core of
:func:`cmcore.halos.shrinking_sphere_centres`).

The method of Power et al. (2003, MNRAS 338, 14, §2.2): start from the centre
of mass of the whole group and the smallest sphere about it that holds every
member; shrink the radius by a constant factor, recentre on the centre of mass
of the members inside the shrunken sphere, and repeat while the sphere still
holds at least ``n_final`` members.  The centre is the centre of mass of the
last such sphere.  Each step selects *exactly* the group's members within the
sphere (no approximation): the members are kept in a candidate set known to
contain the sphere — all members within ``R_S`` of a point ``q`` — which is
rebuilt from the whole group only when the sphere leaves it and is otherwise
trimmed as the sphere shrinks, so the cost is close to the sum of the sphere
populations rather than ``N × steps``.

Positions are unwrapped about the group's first member by the minimum image
(periodic box), so a group must span less than half the box.  Memory: six
doubles per member of the largest group.
"""
import numpy as np
cimport numpy as cnp
from libc.math cimport floor, sqrt
from libc.stdlib cimport malloc, free
from libc.stdint cimport int64_t

cnp.import_array()

ctypedef fused real_t:
    float
    double

#: Trim the candidate set to this many sphere radii about the current centre.
cdef double _KEEP = 1.3


def shrinking_sphere(real_t[:, ::1] pos, double boxsize, int64_t[::1] members, int64_t[::1] starts,
                     double shrink, double f_final, long long n_final_max, long long n_final_min):
    """Centre [same units as ``pos``, wrapped into ``[0, boxsize)``] of each group.

    Group ``g`` is ``members[starts[g]:starts[g+1]]`` (indices into ``pos``).
    The iteration stops before the sphere would hold fewer than
    ``n_final = max(n_final_min, min(n_final_max, floor(f_final * N_g)))``
    members, or when its radius falls below 1e-12 of the box.
    """
    cdef Py_ssize_t ngroups = starts.shape[0] - 1, g
    cdef long long n, k, j, first, nmax = 0, n_s, count, n_final, n_keep
    cdef double x0, y0, z0, dx, dy, dz, cx, cy, cz, sx, sy, sz, r, r2, d2, qx, qy, qz, rs
    cdef double keep2, shift, tiny = 1e-12 * boxsize
    cdef double* ax = NULL
    cdef double* ay = NULL
    cdef double* az = NULL
    cdef double* sbx = NULL
    cdef double* sby = NULL
    cdef double* sbz = NULL
    cdef double[:, ::1] out = np.empty((max(ngroups, 0), 3), dtype=np.float64)
    for g in range(ngroups):
        if starts[g + 1] - starts[g] > nmax:
            nmax = starts[g + 1] - starts[g]
    if nmax == 0:
        return np.asarray(out)
    ax = <double*>malloc(nmax * sizeof(double))
    ay = <double*>malloc(nmax * sizeof(double))
    az = <double*>malloc(nmax * sizeof(double))
    sbx = <double*>malloc(nmax * sizeof(double))
    sby = <double*>malloc(nmax * sizeof(double))
    sbz = <double*>malloc(nmax * sizeof(double))
    try:
        if ax == NULL or ay == NULL or az == NULL or sbx == NULL or sby == NULL or sbz == NULL:
            raise MemoryError()
        with nogil:
            for g in range(ngroups):
                first = starts[g]
                n = starts[g + 1] - first
                if n == 0:
                    continue
                j = members[first]
                x0 = pos[j, 0] - boxsize * floor(pos[j, 0] / boxsize)
                y0 = pos[j, 1] - boxsize * floor(pos[j, 1] / boxsize)
                z0 = pos[j, 2] - boxsize * floor(pos[j, 2] / boxsize)
                # unwrapped offsets from the first member (minimum image) and their mean
                sx = sy = sz = 0.0
                for k in range(n):
                    j = members[first + k]
                    dx = pos[j, 0] - x0
                    dy = pos[j, 1] - y0
                    dz = pos[j, 2] - z0
                    dx = dx - boxsize * floor(dx / boxsize + 0.5)
                    dy = dy - boxsize * floor(dy / boxsize + 0.5)
                    dz = dz - boxsize * floor(dz / boxsize + 0.5)
                    ax[k] = dx
                    ay[k] = dy
                    az[k] = dz
                    sx += dx
                    sy += dy
                    sz += dz
                cx, cy, cz = sx / n, sy / n, sz / n
                r2 = 0.0
                for k in range(n):
                    d2 = (ax[k] - cx) ** 2 + (ay[k] - cy) ** 2 + (az[k] - cz) ** 2
                    if d2 > r2:
                        r2 = d2
                r = sqrt(r2)
                n_final = <long long>floor(f_final * n)
                if n_final > n_final_max:
                    n_final = n_final_max
                if n_final < n_final_min:
                    n_final = n_final_min
                # candidate set: every member within rs of q (initially the whole group)
                n_s = 0
                qx, qy, qz, rs = cx, cy, cz, r
                for k in range(n):
                    sbx[n_s] = ax[k]
                    sby[n_s] = ay[k]
                    sbz[n_s] = az[k]
                    n_s += 1
                while r > tiny:
                    r = r * shrink
                    shift = sqrt((cx - qx) ** 2 + (cy - qy) ** 2 + (cz - qz) ** 2)
                    if shift + r > rs:
                        # the sphere leaves the candidate set: rebuild it from the whole group
                        qx, qy, qz, rs = cx, cy, cz, _KEEP * r
                        keep2 = rs * rs
                        n_s = 0
                        for k in range(n):
                            if (ax[k] - qx) ** 2 + (ay[k] - qy) ** 2 + (az[k] - qz) ** 2 <= keep2:
                                sbx[n_s] = ax[k]
                                sby[n_s] = ay[k]
                                sbz[n_s] = az[k]
                                n_s += 1
                        shift = 0.0
                    r2 = r * r
                    count = 0
                    sx = sy = sz = 0.0
                    if shift + _KEEP * r <= rs:
                        # trim the candidate set to _KEEP r about the current centre while summing
                        keep2 = (_KEEP * r) ** 2
                        n_keep = 0
                        for k in range(n_s):
                            d2 = (sbx[k] - cx) ** 2 + (sby[k] - cy) ** 2 + (sbz[k] - cz) ** 2
                            if d2 <= keep2:
                                if d2 <= r2:
                                    sx += sbx[k]
                                    sy += sby[k]
                                    sz += sbz[k]
                                    count += 1
                                sbx[n_keep] = sbx[k]
                                sby[n_keep] = sby[k]
                                sbz[n_keep] = sbz[k]
                                n_keep += 1
                        n_s = n_keep
                        qx, qy, qz, rs = cx, cy, cz, _KEEP * r
                    else:
                        for k in range(n_s):
                            if (sbx[k] - cx) ** 2 + (sby[k] - cy) ** 2 + (sbz[k] - cz) ** 2 <= r2:
                                sx += sbx[k]
                                sy += sby[k]
                                sz += sbz[k]
                                count += 1
                    if count < n_final or count == 0:
                        break
                    cx, cy, cz = sx / count, sy / count, sz / count
                cx = cx + x0
                cy = cy + y0
                cz = cz + z0
                out[g, 0] = cx - boxsize * floor(cx / boxsize)
                out[g, 1] = cy - boxsize * floor(cy / boxsize)
                out[g, 2] = cz - boxsize * floor(cz / boxsize)
                for k in range(3):
                    if out[g, k] >= boxsize:
                        out[g, k] = 0.0
    finally:
        free(ax)
        free(ay)
        free(az)
        free(sbx)
        free(sby)
        free(sbz)
    return np.asarray(out)
