/* _kernels_simd.h -- the C side of cmcore._kernels (included by _kernels.pyx with
   `cdef extern from "_kernels_simd.h"`, shipped next to it as package data).

   It holds: OpenMP helpers (thread count); the SIMD particle prefilter of the
   projection scan (float32/float64, AVX2 clone chosen at run time); the projected
   SPH kernel K(q2) and its evaluators -- rows, row adds, small (<= 8 x 8) and
   mid-size (<= 16 x 16) boxes and their deposits -- in portable C, AVX2 + FMA and
   AVX-512F (rows only); the run-time dispatch that picks the widest the CPU has
   (cmc_init_dispatch); and cmc_axpy.  The float32 arithmetic of every evaluator
   is part of the results: keep it (operation order, FMA use) when editing. */
#ifndef CMC_KERNELS_SIMD_H
#define CMC_KERNELS_SIMD_H

#include <Python.h>     /* Py_ssize_t (already included first by the Cython module) */
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
#define CMC_PREFILTER(NAME, T, ABS)                                              \
CMC_CLONES static Py_ssize_t NAME(const T* p, Py_ssize_t i0, Py_ssize_t i1,       \
        const T* c24, const T* e24, const T* f24, const int* bit24, T L,         \
        Py_ssize_t* out) {                                                        \
    Py_ssize_t nout = 0, i = i0;                                                  \
    int m[24];                                                                    \
    for (; i + 8 <= i1; i += 8) {                                                 \
        const T* q = p + 3 * i;                                                   \
        int o = 0;                                                                \
        for (int k = 0; k < 24; ++k) {                                            \
            T a = ABS(q[k] - c24[k]);                                             \
            int pass = (a <= e24[k]) | (a >= f24[k]);                             \
            int bad = !(a < L);                                                   \
            m[k] = (-pass & bit24[k]) | (bad << 3);                               \
            o |= m[k];                                                            \
        }                                                                         \
        if ((o & 7) == 7 || (o & 8)) {                                            \
            for (int t = 0; t < 8; ++t) {   /* branch-free compaction */          \
                out[nout] = i + t;                                                \
                nout += (m[3 * t] | m[3 * t + 1] | m[3 * t + 2]) >= 7;            \
            }                                                                     \
        }                                                                         \
    }                                                                             \
    for (; i < i1; ++i) {                                                         \
        int r = 0;                                                                \
        for (int k = 0; k < 3; ++k) {                                             \
            T a = ABS(p[3 * i + k] - c24[k]);                                     \
            int pass = (a <= e24[k]) | (a >= f24[k]);                             \
            r |= (-pass & bit24[k]) | ((!(a < L)) << 3);                          \
        }                                                                         \
        if (r >= 7) out[nout++] = i;                                              \
    }                                                                             \
    return nout;                                                                  \
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
            double v = b < nx ? (double)cmc_kernel_at((dx * dx + dy * dy) * finv, C) : 0.0;
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
/* Add a box of row stride w = 4 nq (nq = 2: small boxes, 4: mid-size ones) to the
   image, as cmc_boxw_add_scalar: whole rows when they fit in the image row (the zeros
   past nx add nothing), else masked to the columns inside.  Inlined into the two
   callers below with nq a constant. */
CMC_AVX2 static inline __attribute__((always_inline)) void cmc_boxw_add_avx2(
        double* img, int nq, Py_ssize_t npix, Py_ssize_t plane, int k, Py_ssize_t j0,
        Py_ssize_t i0, int ny, const double* vals, const double* scale) {
    const int w = 4 * nq;
    const int whole = j0 >= 0 && j0 + w <= npix;
    const __m256i lane = _mm256_set_epi64x(3, 2, 1, 0);
    __m256i msk[4];
    __m256d v[4];
    for (int q = 0; q < nq; ++q) {
        const __m256i col = _mm256_add_epi64(_mm256_set1_epi64x(j0 + 4 * q), lane);
        msk[q] = _mm256_andnot_si256(_mm256_cmpgt_epi64(_mm256_setzero_si256(), col),
                                     _mm256_cmpgt_epi64(_mm256_set1_epi64x(npix), col));
    }
    for (int a = 0; a < ny; ++a) {
        Py_ssize_t row = i0 + a;
        if (row < 0 || row >= npix) continue;
        for (int q = 0; q < nq; ++q) v[q] = _mm256_loadu_pd(vals + w * a + 4 * q);
        for (int c = 0; c < k; ++c) {
            double* o = img + c * plane + row * npix + j0;
            const __m256d sc = _mm256_set1_pd(scale[c]);
            for (int q = 0; q < nq; ++q) {
                if (whole)
                    _mm256_storeu_pd(o + 4 * q, _mm256_fmadd_pd(sc, v[q], _mm256_loadu_pd(o + 4 * q)));
                else
                    _mm256_maskstore_pd(o + 4 * q, msk[q], _mm256_fmadd_pd(sc, v[q],
                                        _mm256_maskload_pd(o + 4 * q, msk[q])));
            }
        }
    }
}

CMC_AVX2 static void cmc_box_add_avx2(double* img, Py_ssize_t npix, Py_ssize_t plane, int k,
                                      Py_ssize_t j0, Py_ssize_t i0, int ny, const double* vals,
                                      const double* scale) {
    cmc_boxw_add_avx2(img, 2, npix, plane, k, j0, i0, ny, vals, scale);
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
    cmc_boxw_add_avx2(img, 4, npix, plane, k, j0, i0, ny, vals, scale);
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
    (void)max_level;    /* unused where there is no SIMD path */
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

#endif  /* CMC_KERNELS_SIMD_H */
