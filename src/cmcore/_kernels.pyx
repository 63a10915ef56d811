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

cdef extern from *:
    """
    #include <math.h>
    #ifdef _OPENMP
    #include <omp.h>
    static int cmc_max_threads(void) { return omp_get_max_threads(); }
    static int cmc_have_openmp(void) { return 1; }
    #else
    static int cmc_max_threads(void) { return 1; }
    static int cmc_have_openmp(void) { return 0; }
    #endif

    /* Runtime dispatch: an AVX2 clone next to the portable baseline (GCC, x86-64
       Linux); elsewhere the baseline only.  The prefilter has no multiply-add, so
       both clones select exactly the same particles. */
    /* Indexed scans visit particles scattered in memory: fetch ahead. */
    #if defined(__GNUC__) || defined(__clang__)
    #define CMC_PREFETCH(p) __builtin_prefetch((const void*)(p))
    #else
    #define CMC_PREFETCH(p) ((void)0)
    #endif

    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
    #define CMC_CLONES __attribute__((target_clones("avx2", "default")))
    #else
    #define CMC_CLONES
    #endif

    /* Prefilter particles i0..i1-1 of a C-contiguous (N, 3) array, 8 at a time.
       Per coordinate (period 3, tiled to 24 lanes): a = |x - c|,
       pass = a <= e || a >= f (periodic minimum-image test, valid while a < L),
       bad = !(a < L) (|dx| >= L, NaN or inf).  Each lane holds its axis bit when it
       passes and bit 3 when bad; a group whose OR lacks an axis and has no bad lane
       is skipped whole.  Writes the ids of particles with all three axis bits or a
       bad coordinate to out and returns their number. */
    #define CMC_PREFILTER(NAME, T, ABS)                                              \\
    CMC_CLONES static Py_ssize_t NAME(const T* p, Py_ssize_t i0, Py_ssize_t i1,       \\
            const T* c24, const T* e24, const T* f24, const int* bit24, T L,         \\
            Py_ssize_t* out) {                                                        \\
        Py_ssize_t nout = 0, i = i0;                                                  \\
        int m[24];                                                                    \\
        for (; i + 8 <= i1; i += 8) {                                                 \\
            const T* q = p + 3 * i;                                                   \\
            int o = 0;                                                                \\
            for (int k = 0; k < 24; ++k) {                                            \\
                T a = ABS(q[k] - c24[k]);                                             \\
                int pass = (a <= e24[k]) | (a >= f24[k]);                             \\
                int bad = !(a < L);                                                   \\
                m[k] = (-pass & bit24[k]) | (bad << 3);                               \\
                o |= m[k];                                                            \\
            }                                                                         \\
            if ((o & 7) == 7 || (o & 8)) {                                            \\
                for (int t = 0; t < 8; ++t) {   /* branch-free compaction */          \\
                    out[nout] = i + t;                                                \\
                    nout += (m[3 * t] | m[3 * t + 1] | m[3 * t + 2]) >= 7;            \\
                }                                                                     \\
            }                                                                         \\
        }                                                                             \\
        for (; i < i1; ++i) {                                                         \\
            int r = 0;                                                                \\
            for (int k = 0; k < 3; ++k) {                                             \\
                T a = ABS(p[3 * i + k] - c24[k]);                                     \\
                int pass = (a <= e24[k]) | (a >= f24[k]);                             \\
                r |= (-pass & bit24[k]) | ((!(a < L)) << 3);                          \\
            }                                                                         \\
            if (r >= 7) out[nout++] = i;                                              \\
        }                                                                             \\
        return nout;                                                                  \\
    }
    CMC_PREFILTER(cmc_prefilter_f32, float, fabsf)
    CMC_PREFILTER(cmc_prefilter_f64, double, fabs)

    /* The projected kernel K(q2) (q2 = q^2 in units of the support radius): the
       piecewise polynomial of cmcore.projection._kernel_coefficients, C[k * 8 + s] the
       coefficient of t^k in segment s = (int)(8 q), t = q - s / 8; never below 0 and
       0 for q2 >= 1.  float32 arithmetic (|error| ~ 1e-7 of the peak). */
    static inline float cmc_kernel_at(float q2, const float* C) {
        if (!(q2 < 1.0f)) return 0.0f;
        float q = sqrtf(q2);
        int s = (int)(q * 8.0f);
        s = s < 7 ? s : 7;
        float t = q - (float)s * 0.125f;
        float v = C[48 + s];
        for (int k = 5; k >= 0; --k) v = v * t + C[8 * k + s];
        return v > 0.0f ? v : 0.0f;
    }

    /* One row: vals[t] = K at dx = x0 + t, q2 = (dx^2 + dy2) * inv_r2; returns the sum. */
    static double cmc_kernel_row_scalar(double* vals, Py_ssize_t n, double x0, double dy2,
                                        double inv_r2, const float* C) {
        double s0 = 0.0, s1 = 0.0;
        const float fx0 = (float)x0, fdy2 = (float)dy2, finv = (float)inv_r2;
        Py_ssize_t t = 0;
        for (; t + 2 <= n; t += 2) {
            float d0 = fx0 + (float)t, d1 = fx0 + (float)(t + 1);
            double v0 = cmc_kernel_at((d0 * d0 + fdy2) * finv, C);
            double v1 = cmc_kernel_at((d1 * d1 + fdy2) * finv, C);
            vals[t] = v0; vals[t + 1] = v1;
            s0 += v0; s1 += v1;
        }
        if (t < n) {
            float d0 = fx0 + (float)t;
            double v0 = cmc_kernel_at((d0 * d0 + fdy2) * finv, C);
            vals[t] = v0;
            s0 += v0;
        }
        return s0 + s1;
    }

    /* img[t] += a * K at dx = x0 + t (the same samples as cmc_kernel_row). */
    static void cmc_kernel_row_add_scalar(double* img, Py_ssize_t n, double x0, double dy2,
                                          double inv_r2, const float* C, double a) {
        const float fx0 = (float)x0, fdy2 = (float)dy2, finv = (float)inv_r2;
        for (Py_ssize_t t = 0; t < n; ++t) {
            float d = fx0 + (float)t;
            img[t] += a * (double)cmc_kernel_at((d * d + fdy2) * finv, C);
        }
    }

    /* Kernel boxes, portable path: ny rows of nx <= w pixel centres, stored with row
       stride w: vals[w a + b] = K at dx = x0 + b, dy = y0 + a (0 for b >= nx); returns
       the sum.  w = 8 for small kernels (ny <= 8), 16 for mid-size ones (ny <= 16). */
    static double cmc_kernel_boxw_scalar(double* vals, int w, int nx, int ny, double x0,
                                         double y0, double inv_r2, const float* C) {
        double s = 0.0;
        const float fx0 = (float)x0, fy0 = (float)y0, finv = (float)inv_r2;
        for (int a = 0; a < ny; ++a) {
            float dy = fy0 + (float)a;
            for (int b = 0; b < w; ++b) {
                float dx = fx0 + (float)b;
                double v = b < nx ? cmc_kernel_at((dx * dx + dy * dy) * finv, C) : 0.0;
                vals[w * a + b] = v;
                s += v;
            }
        }
        return s;
    }

    /* Add a box of row stride w to the image: img[c * plane + (i0 + a) * npix + j0 + b]
       += scale[c] * vals[w a + b] for the pixels inside the image (vals is 0 for
       b >= nx), channels c < k. */
    static void cmc_boxw_add_scalar(double* img, int w, Py_ssize_t npix, Py_ssize_t plane,
                                    int k, Py_ssize_t j0, Py_ssize_t i0, int ny,
                                    const double* vals, const double* scale) {
        Py_ssize_t b0 = j0 < 0 ? -j0 : 0, b1 = npix - j0 < w ? npix - j0 : w;
        for (int a = 0; a < ny; ++a) {
            Py_ssize_t row = i0 + a;
            if (row < 0 || row >= npix) continue;
            for (int c = 0; c < k; ++c) {
                double* o = img + c * plane + row * npix + j0;
                for (Py_ssize_t b = b0; b < b1; ++b) o[b] += scale[c] * vals[w * a + b];
            }
        }
    }

    static double cmc_kernel_box_scalar(double* vals, int nx, int ny, double x0, double y0,
                                        double inv_r2, const float* C) {
        return cmc_kernel_boxw_scalar(vals, 8, nx, ny, x0, y0, inv_r2, C);
    }

    static void cmc_box_add_scalar(double* img, Py_ssize_t npix, Py_ssize_t plane, int k,
                                   Py_ssize_t j0, Py_ssize_t i0, int ny, const double* vals,
                                   const double* scale) {
        cmc_boxw_add_scalar(img, 8, npix, plane, k, j0, i0, ny, vals, scale);
    }

    static double cmc_kernel_box16_scalar(double* vals, int nx, int ny, double x0, double y0,
                                          double inv_r2, const float* C) {
        return cmc_kernel_boxw_scalar(vals, 16, nx, ny, x0, y0, inv_r2, C);
    }

    static void cmc_box16_add_scalar(double* img, Py_ssize_t npix, Py_ssize_t plane, int k,
                                     Py_ssize_t j0, Py_ssize_t i0, int ny, const double* vals,
                                     const double* scale) {
        cmc_boxw_add_scalar(img, 16, npix, plane, k, j0, i0, ny, vals, scale);
    }

    /* The same with AVX2 + FMA, 8 samples per step: the segment's coefficients are
       picked from registers with vpermps (no table gathers).  Chosen at run time. */
    #if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
    #include <immintrin.h>
    #define CMC_HAVE_AVX2_ROW 1
    #define CMC_AVX2 __attribute__((target("avx2,fma")))
    CMC_AVX2 static inline __m256 cmc_kernel8(__m256 q2, const float* C) {
        const __m256 one = _mm256_set1_ps(1.0f);
        __m256 inside = _mm256_cmp_ps(q2, one, _CMP_LT_OQ);
        __m256 q = _mm256_sqrt_ps(_mm256_min_ps(q2, one));
        __m256i s = _mm256_min_epi32(_mm256_cvttps_epi32(_mm256_mul_ps(q, _mm256_set1_ps(8.0f))),
                                     _mm256_set1_epi32(7));
        __m256 t = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(0.125f), q);
        __m256 v = _mm256_permutevar8x32_ps(_mm256_loadu_ps(C + 48), s);
        v = _mm256_fmadd_ps(v, t, _mm256_permutevar8x32_ps(_mm256_loadu_ps(C + 40), s));
        v = _mm256_fmadd_ps(v, t, _mm256_permutevar8x32_ps(_mm256_loadu_ps(C + 32), s));
        v = _mm256_fmadd_ps(v, t, _mm256_permutevar8x32_ps(_mm256_loadu_ps(C + 24), s));
        v = _mm256_fmadd_ps(v, t, _mm256_permutevar8x32_ps(_mm256_loadu_ps(C + 16), s));
        v = _mm256_fmadd_ps(v, t, _mm256_permutevar8x32_ps(_mm256_loadu_ps(C + 8), s));
        v = _mm256_fmadd_ps(v, t, _mm256_permutevar8x32_ps(_mm256_loadu_ps(C + 0), s));
        return _mm256_and_ps(_mm256_max_ps(v, _mm256_setzero_ps()), inside);
    }

    /* Store 8 float samples (the first m) as doubles, add them to *acc. */
    CMC_AVX2 static inline void cmc_store8(double* out, __m256 v, Py_ssize_t m, __m256d* acc) {
        __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
        __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        if (m >= 8) {
            _mm256_storeu_pd(out, lo);
            _mm256_storeu_pd(out + 4, hi);
        } else {
            const __m256i lane = _mm256_set_epi64x(3, 2, 1, 0);
            _mm256_maskstore_pd(out, _mm256_cmpgt_epi64(_mm256_set1_epi64x(m), lane), lo);
            _mm256_maskstore_pd(out + 4, _mm256_cmpgt_epi64(_mm256_set1_epi64x(m - 4), lane), hi);
        }
        *acc = _mm256_add_pd(*acc, _mm256_add_pd(lo, hi));
    }

    CMC_AVX2 static inline double cmc_hsum(__m256d acc) {
        double lanes[4];
        _mm256_storeu_pd(lanes, acc);
        return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    }

    CMC_AVX2 static double cmc_kernel_row_avx2(double* vals, Py_ssize_t n, double x0, double dy2,
                                               double inv_r2, const float* C) {
        const __m256 vdy2 = _mm256_set1_ps((float)dy2), vinv = _mm256_set1_ps((float)inv_r2);
        const __m256 lane = _mm256_set_ps(7.0f, 6.0f, 5.0f, 4.0f, 3.0f, 2.0f, 1.0f, 0.0f);
        __m256 dx = _mm256_add_ps(_mm256_set1_ps((float)x0), lane);
        __m256d acc = _mm256_setzero_pd();
        for (Py_ssize_t t = 0; t < n; t += 8) {
            __m256 q2 = _mm256_mul_ps(_mm256_fmadd_ps(dx, dx, vdy2), vinv);
            if (n - t < 8)      /* lanes past the row: q2 = 1, so K = 0 */
                q2 = _mm256_blendv_ps(_mm256_set1_ps(1.0f), q2, _mm256_cmp_ps(
                        lane, _mm256_set1_ps((float)(n - t)), _CMP_LT_OQ));
            cmc_store8(vals + t, cmc_kernel8(q2, C), n - t, &acc);
            dx = _mm256_add_ps(dx, _mm256_set1_ps(8.0f));
        }
        return cmc_hsum(acc);
    }

    CMC_AVX2 static void cmc_kernel_row_add_avx2(double* img, Py_ssize_t n, double x0, double dy2,
                                                 double inv_r2, const float* C, double a) {
        const __m256 vdy2 = _mm256_set1_ps((float)dy2), vinv = _mm256_set1_ps((float)inv_r2);
        const __m256 lane = _mm256_set_ps(7.0f, 6.0f, 5.0f, 4.0f, 3.0f, 2.0f, 1.0f, 0.0f);
        const __m256d va = _mm256_set1_pd(a);
        __m256 dx = _mm256_add_ps(_mm256_set1_ps((float)x0), lane);
        Py_ssize_t t = 0;
        for (; t + 8 <= n; t += 8) {
            __m256 v = cmc_kernel8(_mm256_mul_ps(_mm256_fmadd_ps(dx, dx, vdy2), vinv), C);
            __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
            __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
            _mm256_storeu_pd(img + t, _mm256_fmadd_pd(va, lo, _mm256_loadu_pd(img + t)));
            _mm256_storeu_pd(img + t + 4, _mm256_fmadd_pd(va, hi, _mm256_loadu_pd(img + t + 4)));
            dx = _mm256_add_ps(dx, _mm256_set1_ps(8.0f));
        }
        if (t < n) {            /* masked tail */
            const __m256i l4 = _mm256_set_epi64x(3, 2, 1, 0);
            const __m256i mlo = _mm256_cmpgt_epi64(_mm256_set1_epi64x(n - t), l4);
            const __m256i mhi = _mm256_cmpgt_epi64(_mm256_set1_epi64x(n - t - 4), l4);
            __m256 v = cmc_kernel8(_mm256_mul_ps(_mm256_fmadd_ps(dx, dx, vdy2), vinv), C);
            __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
            __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
            _mm256_maskstore_pd(img + t, mlo,
                                _mm256_fmadd_pd(va, lo, _mm256_maskload_pd(img + t, mlo)));
            _mm256_maskstore_pd(img + t + 4, mhi,
                                _mm256_fmadd_pd(va, hi, _mm256_maskload_pd(img + t + 4, mhi)));
        }
    }

    CMC_AVX2 static double cmc_kernel_box_avx2(double* vals, int nx, int ny, double x0,
                                               double y0, double inv_r2, const float* C) {
        /* rows of at most 4 pixels go two to a vector (lanes 4-7: the next row) */
        const int pair = nx <= 4;
        const __m256 lane = pair ? _mm256_set_ps(3.0f, 2.0f, 1.0f, 0.0f, 3.0f, 2.0f, 1.0f, 0.0f)
                                 : _mm256_set_ps(7.0f, 6.0f, 5.0f, 4.0f, 3.0f, 2.0f, 1.0f, 0.0f);
        const __m256 row = pair ? _mm256_set_ps(1.0f, 1.0f, 1.0f, 1.0f, 0.0f, 0.0f, 0.0f, 0.0f)
                                : _mm256_setzero_ps();
        const int step = pair ? 2 : 1;
        const __m256 dx = _mm256_add_ps(_mm256_set1_ps((float)x0), lane);
        const __m256 vinv = _mm256_set1_ps((float)inv_r2);
        /* lanes b >= nx get dx^2 = inf, so q2 = 1 and K = 0 */
        const __m256 live = _mm256_cmp_ps(lane, _mm256_set1_ps((float)nx), _CMP_LT_OQ);
        const __m256 dx2 = _mm256_blendv_ps(_mm256_set1_ps(INFINITY), _mm256_mul_ps(dx, dx), live);
        const __m256d zero = _mm256_setzero_pd();
        __m256d acc = zero;
        for (int a = 0; a < ny; a += step) {
            /* a row past ny (odd ny, paired) gets dy = inf: K = 0 */
            __m256 dy = _mm256_add_ps(_mm256_set1_ps((float)y0 + (float)a), row);
            dy = _mm256_blendv_ps(_mm256_set1_ps(INFINITY), dy,
                                  _mm256_cmp_ps(_mm256_add_ps(_mm256_set1_ps((float)a), row),
                                                _mm256_set1_ps((float)ny), _CMP_LT_OQ));
            __m256 q2 = _mm256_min_ps(_mm256_mul_ps(_mm256_fmadd_ps(dy, dy, dx2), vinv),
                                      _mm256_set1_ps(1.0f));
            __m256 v = cmc_kernel8(q2, C);
            if (pair) {
                __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
                __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
                _mm256_storeu_pd(vals + 8 * a, lo);
                _mm256_storeu_pd(vals + 8 * a + 4, zero);
                if (a + 1 < ny) {
                    _mm256_storeu_pd(vals + 8 * a + 8, hi);
                    _mm256_storeu_pd(vals + 8 * a + 12, zero);
                }
                acc = _mm256_add_pd(acc, _mm256_add_pd(lo, hi));
            } else {
                cmc_store8(vals + 8 * a, v, 8, &acc);
            }
        }
        return cmc_hsum(acc);
    }
    CMC_AVX2 static void cmc_box_add_avx2(double* img, Py_ssize_t npix, Py_ssize_t plane, int k,
                                          Py_ssize_t j0, Py_ssize_t i0, int ny, const double* vals,
                                          const double* scale) {
        /* whole 8-wide rows when they fit in the image row (the zeros past nx add
           nothing), else masked to the columns inside */
        const int whole = j0 >= 0 && j0 + 8 <= npix;
        const __m256i lane = _mm256_set_epi64x(3, 2, 1, 0);
        const __m256i col = _mm256_add_epi64(_mm256_set1_epi64x(j0), lane);
        const __m256i col4 = _mm256_add_epi64(col, _mm256_set1_epi64x(4));
        const __m256i lo_m = _mm256_andnot_si256(_mm256_cmpgt_epi64(_mm256_setzero_si256(), col),
                                                 _mm256_cmpgt_epi64(_mm256_set1_epi64x(npix), col));
        const __m256i hi_m = _mm256_andnot_si256(_mm256_cmpgt_epi64(_mm256_setzero_si256(), col4),
                                                 _mm256_cmpgt_epi64(_mm256_set1_epi64x(npix), col4));
        for (int a = 0; a < ny; ++a) {
            Py_ssize_t row = i0 + a;
            if (row < 0 || row >= npix) continue;
            const __m256d lo = _mm256_loadu_pd(vals + 8 * a), hi = _mm256_loadu_pd(vals + 8 * a + 4);
            for (int c = 0; c < k; ++c) {
                double* o = img + c * plane + row * npix + j0;
                const __m256d sc = _mm256_set1_pd(scale[c]);
                if (whole) {
                    _mm256_storeu_pd(o, _mm256_fmadd_pd(sc, lo, _mm256_loadu_pd(o)));
                    _mm256_storeu_pd(o + 4, _mm256_fmadd_pd(sc, hi, _mm256_loadu_pd(o + 4)));
                } else {
                    _mm256_maskstore_pd(o, lo_m, _mm256_fmadd_pd(sc, lo, _mm256_maskload_pd(o, lo_m)));
                    _mm256_maskstore_pd(o + 4, hi_m,
                                        _mm256_fmadd_pd(sc, hi, _mm256_maskload_pd(o + 4, hi_m)));
                }
            }
        }
    }

    CMC_AVX2 static double cmc_kernel_box16_avx2(double* vals, int nx, int ny, double x0,
                                                 double y0, double inv_r2, const float* C) {
        const __m256 lane = _mm256_set_ps(7.0f, 6.0f, 5.0f, 4.0f, 3.0f, 2.0f, 1.0f, 0.0f);
        const __m256 lane8 = _mm256_add_ps(lane, _mm256_set1_ps(8.0f));
        const __m256 dxa = _mm256_add_ps(_mm256_set1_ps((float)x0), lane);
        const __m256 dxb = _mm256_add_ps(_mm256_set1_ps((float)x0), lane8);
        const __m256 vinv = _mm256_set1_ps((float)inv_r2), one = _mm256_set1_ps(1.0f);
        const __m256 vnx = _mm256_set1_ps((float)nx), inf = _mm256_set1_ps(INFINITY);
        /* lanes b >= nx get dx^2 = inf, so q2 = 1 and K = 0 */
        const __m256 dx2a = _mm256_blendv_ps(inf, _mm256_mul_ps(dxa, dxa),
                                             _mm256_cmp_ps(lane, vnx, _CMP_LT_OQ));
        const __m256 dx2b = _mm256_blendv_ps(inf, _mm256_mul_ps(dxb, dxb),
                                             _mm256_cmp_ps(lane8, vnx, _CMP_LT_OQ));
        __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
        for (int a = 0; a < ny; ++a) {
            const __m256 dy = _mm256_set1_ps((float)y0 + (float)a);
            __m256 qa = _mm256_min_ps(_mm256_mul_ps(_mm256_fmadd_ps(dy, dy, dx2a), vinv), one);
            __m256 qb = _mm256_min_ps(_mm256_mul_ps(_mm256_fmadd_ps(dy, dy, dx2b), vinv), one);
            cmc_store8(vals + 16 * a, cmc_kernel8(qa, C), 8, &acc0);
            cmc_store8(vals + 16 * a + 8, cmc_kernel8(qb, C), 8, &acc1);
        }
        return cmc_hsum(_mm256_add_pd(acc0, acc1));
    }

    CMC_AVX2 static void cmc_box16_add_avx2(double* img, Py_ssize_t npix, Py_ssize_t plane,
                                            int k, Py_ssize_t j0, Py_ssize_t i0, int ny,
                                            const double* vals, const double* scale) {
        /* whole 16-wide rows when they fit in the image row, else masked */
        const int whole = j0 >= 0 && j0 + 16 <= npix;
        const __m256i lane = _mm256_set_epi64x(3, 2, 1, 0);
        __m256i msk[4];
        for (int q = 0; q < 4; ++q) {
            const __m256i col = _mm256_add_epi64(_mm256_set1_epi64x(j0 + 4 * q), lane);
            msk[q] = _mm256_andnot_si256(_mm256_cmpgt_epi64(_mm256_setzero_si256(), col),
                                         _mm256_cmpgt_epi64(_mm256_set1_epi64x(npix), col));
        }
        for (int a = 0; a < ny; ++a) {
            Py_ssize_t row = i0 + a;
            if (row < 0 || row >= npix) continue;
            for (int c = 0; c < k; ++c) {
                double* o = img + c * plane + row * npix + j0;
                const __m256d sc = _mm256_set1_pd(scale[c]);
                for (int q = 0; q < 4; ++q) {
                    const __m256d v = _mm256_loadu_pd(vals + 16 * a + 4 * q);
                    if (whole)
                        _mm256_storeu_pd(o + 4 * q, _mm256_fmadd_pd(sc, v, _mm256_loadu_pd(o + 4 * q)));
                    else
                        _mm256_maskstore_pd(o + 4 * q, msk[q], _mm256_fmadd_pd(sc, v,
                                            _mm256_maskload_pd(o + 4 * q, msk[q])));
                }
            }
        }
    }

    /* The rows with AVX-512F, 16 samples per step (vpermps on zmm picks the
       segment's coefficients), the per-lane arithmetic of cmc_kernel8 (the pixel
       offsets step by 16, so the samples match the AVX2 ones up to float32
       rounding).  Chosen at run time, and only for calls whose kernels are mostly
       large (cmc_kernel_row*_wide). */
    #define CMC_HAVE_AVX512_ROW 1
    #define CMC_AVX512 __attribute__((target("avx512f,avx2,fma")))
    /* rows of at most this many pixels take the AVX2 code (8 lanes) */
    #ifndef CMC_ROW16_MIN
    #define CMC_ROW16_MIN 16
    #endif
    typedef struct { __m512 c[7]; } cmc_coef16;
    CMC_AVX512 static inline void cmc_coef16_load(cmc_coef16* K, const float* C) {
        for (int k = 0; k < 7; ++k)
            K->c[k] = _mm512_castps256_ps512(_mm256_loadu_ps(C + 8 * k));
    }
    CMC_AVX512 static inline __m512 cmc_kernel16(__m512 q2, const cmc_coef16* K) {
        const __m512 one = _mm512_set1_ps(1.0f);
        __mmask16 inside = _mm512_cmp_ps_mask(q2, one, _CMP_LT_OQ);
        __m512 q = _mm512_sqrt_ps(_mm512_min_ps(q2, one));
        __m512i s = _mm512_min_epi32(_mm512_cvttps_epi32(_mm512_mul_ps(q, _mm512_set1_ps(8.0f))),
                                     _mm512_set1_epi32(7));
        __m512 t = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(s), _mm512_set1_ps(0.125f), q);
        __m512 v = _mm512_permutexvar_ps(s, K->c[6]);
        v = _mm512_fmadd_ps(v, t, _mm512_permutexvar_ps(s, K->c[5]));
        v = _mm512_fmadd_ps(v, t, _mm512_permutexvar_ps(s, K->c[4]));
        v = _mm512_fmadd_ps(v, t, _mm512_permutexvar_ps(s, K->c[3]));
        v = _mm512_fmadd_ps(v, t, _mm512_permutexvar_ps(s, K->c[2]));
        v = _mm512_fmadd_ps(v, t, _mm512_permutexvar_ps(s, K->c[1]));
        v = _mm512_fmadd_ps(v, t, _mm512_permutexvar_ps(s, K->c[0]));
        return _mm512_maskz_max_ps(inside, v, _mm512_setzero_ps());
    }
    CMC_AVX512 static inline __m512d cmc_lo8(__m512 v) {
        return _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    }
    CMC_AVX512 static inline __m512d cmc_hi8(__m512 v) {
        return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    }

    CMC_AVX512 static double cmc_kernel_row_avx512(double* vals, Py_ssize_t n, double x0,
                                                   double dy2, double inv_r2, const float* C) {
        if (n <= CMC_ROW16_MIN) return cmc_kernel_row_avx2(vals, n, x0, dy2, inv_r2, C);
        cmc_coef16 K;
        cmc_coef16_load(&K, C);
        const __m512 vdy2 = _mm512_set1_ps((float)dy2), vinv = _mm512_set1_ps((float)inv_r2);
        const __m512 lane = _mm512_set_ps(15.0f, 14.0f, 13.0f, 12.0f, 11.0f, 10.0f, 9.0f, 8.0f,
                                          7.0f, 6.0f, 5.0f, 4.0f, 3.0f, 2.0f, 1.0f, 0.0f);
        __m512 dx = _mm512_add_ps(_mm512_set1_ps((float)x0), lane);
        __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
        Py_ssize_t t = 0;
        for (; t + 16 <= n; t += 16) {
            __m512 v = cmc_kernel16(_mm512_mul_ps(_mm512_fmadd_ps(dx, dx, vdy2), vinv), &K);
            __m512d lo = cmc_lo8(v), hi = cmc_hi8(v);
            _mm512_storeu_pd(vals + t, lo);
            _mm512_storeu_pd(vals + t + 8, hi);
            acc0 = _mm512_add_pd(acc0, lo);
            acc1 = _mm512_add_pd(acc1, hi);
            dx = _mm512_add_ps(dx, _mm512_set1_ps(16.0f));
        }
        if (t < n) {            /* lanes past the row: K = 0, not stored */
            const Py_ssize_t m = n - t;
            const __mmask16 live = (__mmask16)((1u << m) - 1u);
            __m512 q2 = _mm512_mask_mul_ps(_mm512_set1_ps(1.0f), live,
                                           _mm512_fmadd_ps(dx, dx, vdy2), vinv);
            __m512 v = cmc_kernel16(q2, &K);
            __m512d lo = cmc_lo8(v), hi = cmc_hi8(v);
            _mm512_mask_storeu_pd(vals + t, (__mmask8)(live & 0xFF), lo);
            _mm512_mask_storeu_pd(vals + t + 8, (__mmask8)(live >> 8), hi);
            acc0 = _mm512_add_pd(acc0, lo);
            acc1 = _mm512_add_pd(acc1, hi);
        }
        return _mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1));
    }

    CMC_AVX512 static void cmc_kernel_row_add_avx512(double* img, Py_ssize_t n, double x0,
                                                     double dy2, double inv_r2, const float* C,
                                                     double a) {
        if (n <= CMC_ROW16_MIN) {
            cmc_kernel_row_add_avx2(img, n, x0, dy2, inv_r2, C, a);
            return;
        }
        cmc_coef16 K;
        cmc_coef16_load(&K, C);
        const __m512 vdy2 = _mm512_set1_ps((float)dy2), vinv = _mm512_set1_ps((float)inv_r2);
        const __m512 lane = _mm512_set_ps(15.0f, 14.0f, 13.0f, 12.0f, 11.0f, 10.0f, 9.0f, 8.0f,
                                          7.0f, 6.0f, 5.0f, 4.0f, 3.0f, 2.0f, 1.0f, 0.0f);
        const __m512d va = _mm512_set1_pd(a);
        __m512 dx = _mm512_add_ps(_mm512_set1_ps((float)x0), lane);
        Py_ssize_t t = 0;
        for (; t + 16 <= n; t += 16) {
            __m512 v = cmc_kernel16(_mm512_mul_ps(_mm512_fmadd_ps(dx, dx, vdy2), vinv), &K);
            _mm512_storeu_pd(img + t, _mm512_fmadd_pd(va, cmc_lo8(v), _mm512_loadu_pd(img + t)));
            _mm512_storeu_pd(img + t + 8,
                             _mm512_fmadd_pd(va, cmc_hi8(v), _mm512_loadu_pd(img + t + 8)));
            dx = _mm512_add_ps(dx, _mm512_set1_ps(16.0f));
        }
        if (t < n) {            /* masked tail */
            const Py_ssize_t m = n - t;
            const __mmask16 live = (__mmask16)((1u << m) - 1u);
            const __mmask8 mlo = (__mmask8)(live & 0xFF), mhi = (__mmask8)(live >> 8);
            __m512 v = cmc_kernel16(_mm512_mul_ps(_mm512_fmadd_ps(dx, dx, vdy2), vinv), &K);
            _mm512_mask_storeu_pd(img + t, mlo, _mm512_fmadd_pd(va, cmc_lo8(v),
                                  _mm512_maskz_loadu_pd(mlo, img + t)));
            _mm512_mask_storeu_pd(img + t + 8, mhi, _mm512_fmadd_pd(va, cmc_hi8(v),
                                  _mm512_maskz_loadu_pd(mhi, img + t + 8)));
        }
    }

    #endif

    typedef double (*cmc_row_fn)(double*, Py_ssize_t, double, double, double, const float*);
    typedef void (*cmc_row_add_fn)(double*, Py_ssize_t, double, double, double, const float*,
                                   double);
    typedef double (*cmc_box_fn)(double*, int, int, double, double, double, const float*);
    static cmc_row_fn cmc_kernel_row = cmc_kernel_row_scalar;
    static cmc_row_add_fn cmc_kernel_row_add = cmc_kernel_row_add_scalar;
    static cmc_box_fn cmc_kernel_box = cmc_kernel_box_scalar;
    typedef void (*cmc_box_add_fn)(double*, Py_ssize_t, Py_ssize_t, int, Py_ssize_t, Py_ssize_t,
                                   int, const double*, const double*);
    static cmc_box_add_fn cmc_box_add = cmc_box_add_scalar;
    static cmc_box_fn cmc_kernel_box16 = cmc_kernel_box16_scalar;
    static cmc_box_add_fn cmc_box16_add = cmc_box16_add_scalar;
    /* The row evaluators for calls whose kernels are mostly large (AVX-512 where the
       CPU has it, else the same as cmc_kernel_row*): sporadic 512-bit code among
       many small kernels was measured slower than AVX2 throughout. */
    static cmc_row_fn cmc_kernel_row_wide = cmc_kernel_row_scalar;
    static cmc_row_add_fn cmc_kernel_row_add_wide = cmc_kernel_row_add_scalar;

    /* Pick the kernel evaluators for this CPU, the widest up to max_level (0 portable,
       1 AVX2 + FMA, 2 AVX-512F); returns the level used. */
    static int cmc_init_dispatch(int max_level) {
        cmc_kernel_row = cmc_kernel_row_scalar;
        cmc_kernel_row_add = cmc_kernel_row_add_scalar;
        cmc_kernel_box = cmc_kernel_box_scalar;
        cmc_box_add = cmc_box_add_scalar;
        cmc_kernel_box16 = cmc_kernel_box16_scalar;
        cmc_box16_add = cmc_box16_add_scalar;
        cmc_kernel_row_wide = cmc_kernel_row_scalar;
        cmc_kernel_row_add_wide = cmc_kernel_row_add_scalar;
    #ifdef CMC_HAVE_AVX2_ROW
        __builtin_cpu_init();
    #ifdef CMC_HAVE_AVX512_ROW
        if (max_level >= 2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2")
                && __builtin_cpu_supports("fma")) {
            cmc_kernel_row = cmc_kernel_row_avx2;
            cmc_kernel_row_add = cmc_kernel_row_add_avx2;
            cmc_kernel_row_wide = cmc_kernel_row_avx512;
            cmc_kernel_row_add_wide = cmc_kernel_row_add_avx512;
            /* small kernels (boxes of <= 8 x 8 pixels) stay with AVX2: measured
               faster than two 8-wide rows per 16-lane vector */
            cmc_kernel_box = cmc_kernel_box_avx2;
            cmc_box_add = cmc_box_add_avx2;
            cmc_kernel_box16 = cmc_kernel_box16_avx2;
            cmc_box16_add = cmc_box16_add_avx2;
            return 2;
        }
    #endif
        if (max_level >= 1 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
            cmc_kernel_row = cmc_kernel_row_avx2;
            cmc_kernel_row_add = cmc_kernel_row_add_avx2;
            cmc_kernel_row_wide = cmc_kernel_row_avx2;
            cmc_kernel_row_add_wide = cmc_kernel_row_add_avx2;
            cmc_kernel_box = cmc_kernel_box_avx2;
            cmc_box_add = cmc_box_add_avx2;
            cmc_kernel_box16 = cmc_kernel_box16_avx2;
            cmc_box16_add = cmc_box16_add_avx2;
            return 1;
        }
    #endif
        return 0;
    }

    /* y[t] += a * x[t] */
    CMC_CLONES static void cmc_axpy(double* y, const double* x, Py_ssize_t n, double a) {
        for (Py_ssize_t t = 0; t < n; ++t) y[t] += a * x[t];
    }
    """
    int cmc_max_threads() nogil
    int cmc_have_openmp() nogil
    void CMC_PREFETCH(const void* p) nogil
    Py_ssize_t cmc_prefilter_f32(const float* p, Py_ssize_t i0, Py_ssize_t i1,
                                 const float* c24, const float* e24, const float* f24,
                                 const int* bit24, float L, Py_ssize_t* out) nogil
    Py_ssize_t cmc_prefilter_f64(const double* p, Py_ssize_t i0, Py_ssize_t i1,
                                 const double* c24, const double* e24, const double* f24,
                                 const int* bit24, double L, Py_ssize_t* out) nogil
    double cmc_kernel_row(double* vals, Py_ssize_t n, double x0, double dy2, double inv_r2,
                          const float* C) nogil
    int cmc_init_dispatch(int max_level) nogil
    double cmc_kernel_row_wide(double* vals, Py_ssize_t n, double x0, double dy2,
                               double inv_r2, const float* C) nogil
    void cmc_kernel_row_add_wide(double* img, Py_ssize_t n, double x0, double dy2,
                                 double inv_r2, const float* C, double a) nogil
    void cmc_kernel_row_add(double* img, Py_ssize_t n, double x0, double dy2, double inv_r2,
                            const float* C, double a) nogil
    void cmc_box_add(double* img, Py_ssize_t npix, Py_ssize_t plane, int k, Py_ssize_t j0,
                     Py_ssize_t i0, int ny, const double* vals, const double* scale) nogil
    double cmc_kernel_box(double* vals, int nx, int ny, double x0, double y0, double inv_r2,
                          const float* C) nogil
    void cmc_axpy(double* y, const double* x, Py_ssize_t n, double a) nogil
    double cmc_kernel_box16(double* vals, int nx, int ny, double x0, double y0, double inv_r2,
                            const float* C) nogil
    void cmc_box16_add(double* img, Py_ssize_t npix, Py_ssize_t plane, int k, Py_ssize_t j0,
                       Py_ssize_t i0, int ny, const double* vals, const double* scale) nogil


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


cdef void _sph_small(const Geom* g, double fu, double fv, double inv_r2, Py_ssize_t j0,
                     Py_ssize_t j1, Py_ssize_t i0, Py_ssize_t i1, const double* wv,
                     double* out) noexcept nogil:
    """:func:`_sph` for a support radius below ``R_SMALL`` pixels (box of at most 8 x 8
    pixel centres, always normalised by its exact sum): one kernel evaluation call
    for the whole box, then the deposit of the part inside the image."""
    cdef Py_ssize_t nx = j1 - j0 + 1, ny = i1 - i0 + 1
    cdef double vals[8 * 2 * R_SMALL]
    cdef double scale[MAXK]
    cdef double total, norm
    cdef int c
    total = cmc_kernel_box(vals, <int>nx, <int>ny, j0 - (fu - 0.5), i0 - (fv - 0.5), inv_r2,
                           g.coef)
    if total <= 0.0:
        _ngp(g, fu, fv, wv, out)
        return
    norm = 1.0 / total
    for c in range(g.k):
        scale[c] = wv[c] * norm
    cmc_box_add(out, g.npix, <Py_ssize_t>g.npix * g.npix, g.k, j0, i0, <int>ny, vals, scale)


cdef void _sph_box16(const Geom* g, double fu, double fv, double inv_r2, Py_ssize_t j0,
                     Py_ssize_t j1, Py_ssize_t i0, Py_ssize_t i1, const double* wv,
                     double* out) noexcept nogil:
    """:func:`_sph_small` for a support radius from ``R_SMALL`` to below ``R_BOX16``
    pixels (box of at most 16 x 16 pixel centres)."""
    cdef Py_ssize_t nx = j1 - j0 + 1, ny = i1 - i0 + 1
    cdef double vals[4 * R_BOX16 * R_BOX16]
    cdef double scale[MAXK]
    cdef double total, norm
    cdef int c
    total = cmc_kernel_box16(vals, <int>nx, <int>ny, j0 - (fu - 0.5), i0 - (fv - 0.5), inv_r2,
                             g.coef)
    if total <= 0.0:
        _ngp(g, fu, fv, wv, out)
        return
    norm = 1.0 / total
    for c in range(g.k):
        scale[c] = wv[c] * norm
    cmc_box16_add(out, g.npix, <Py_ssize_t>g.npix * g.npix, g.k, j0, i0, <int>ny, vals, scale)


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
    into the pixel holding the particle; one below ``R_SMALL`` pixels is
    :func:`_sph_small`, one below ``R_BOX16`` :func:`_sph_box16` (its whole box
    evaluated at once, then deposited).  Otherwise the samples are evaluated once, row by row along
    chords of the support, into ``scratch`` (:func:`sph_scratch_size` doubles).
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
    if r < R_SMALL:
        _sph_small(g, fu, fv, inv_r2, j0, j1, i0, i1, wv, out)
        return
    if r < R_BOX16:
        _sph_box16(g, fu, fv, inv_r2, j0, j1, i0, i1, wv, out)
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
