"""Benchmark of the particle-to-image kernels (``cmc bench kernels``, ``bench/kernels.py``).

On random and clustered particle sets (float32 positions in a periodic 200 Mpc box,
one 5 Mpc, 120 x 120 image through a +-50 Mpc slab, centred on a cluster that
straddles a box corner) it times, in one run and on the same data:

``ngp`` / ``cic``
    :func:`cmcore.projection.project` against :func:`numpy_project`, the same
    algorithm in NumPy (a periodic box prefilter in the positions' own float32,
    then wrap, slab, rotation in float64 on the survivors, ``np.bincount``), in
    blocks of particles; at N threads the blocks are dealt to N Python threads.
``sph``
    ``project(scheme="sph")`` against swiftsimio's projection backends (when
    swiftsimio is installed), both on the particles that reach the image (the
    backends only deposit; they get x, y, h in image units, prepared outside the
    timed call), plus the full ``project`` call from all N particles.  Mass
    conservation of cmc on the kernels wholly inside the image is recorded.
``index``
    per-cluster work with a :class:`~cmcore.cellindex.CellIndex`: ``project`` with
    the index against the full scan (mean over the same 20 clusters), and
    ``select_sphere`` against a NumPy scan; on the set as drawn (random memory
    order, the worst case) and again on the same particles in spatial order
    (``<set>/sfc``, :func:`spatial_order`), the order snapshots are written in.

How every ratio is kept fair:

- **Equal threads.**  Each measured row at ``t`` threads is compared with the
  fastest baseline configuration that uses at most ``t`` threads (1 vs 1 and
  N vs N; the baseline rows at every thread count are in the record, so a
  baseline that does not gain from threads is visible as such).
- **Equal repeats, warm caches, rotating order.**  Every method of a case runs
  once untimed (warm-up: page faults, JIT, thread pools), then ``repeat`` timed
  rounds; in each round every method runs once, the order rotating by one from
  round to round so that each goes first equally often.  Median (the headline)
  and minimum are recorded for every method, and ratios from both.
- **Natural dtype.**  Both sides get the float32 positions as stored; any
  float64 conversion the baseline needs happens inside its timed call.

Ratios are ``baseline time / time`` (higher is faster).
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..cellindex import CellIndex
from ..projection import los_basis, project
from . import git_commit, machine_info, write_result

__all__ = ["ParticleSet", "random_set", "clustered_set", "spatial_order", "in_spatial_order",
           "numpy_project", "numpy_select_sphere", "timed_rounds", "record_start", "record_end",
           "context_lines", "run", "format_table", "BASELINES"]

BOXSIZE = 200.0
DEPTH = 50.0
WIDTH = 5.0
NPIX = 120
CENTRE = (199.6, 100.0, 0.4)        # the main cluster straddles the box boundary
LOS = "diag"
AZIMUTH = 0.3
#: Particles per block of :func:`numpy_project` (its temporaries stay in cache).
NUMPY_BLOCK = 1 << 16

#: What each case is measured against: the fastest way we know to do the same work
#: with the baseline's library (printed in the table header and stored in the record).
BASELINES = {
    "ngp": "numpy_project: NumPy, the same prefilter-then-exact-path algorithm as cmc "
           "(float32 periodic box test, float64 wrap/slab/rotation on the survivors, np.bincount), "
           f"blocks of {NUMPY_BLOCK} particles; at t threads the blocks go to t Python threads "
           "(NumPy releases the GIL in its array loops; np.bincount does not)",
    "cic": "numpy_project, as for ngp, four np.bincount calls",
    "sph": "the fastest of swiftsimio's fast / renormalised backends (serial: 1 thread; parallel: "
           "numba set to t threads) on the particles that reach the image, x, y, h prepared "
           "outside the timed call",
    "index": "project: the full scan at the same threads (per cluster, 20 clusters); "
             "select_sphere: a NumPy float32 periodic-distance scan (1 thread; select_sphere is serial)",
}


@dataclass
class ParticleSet:
    """One benchmark particle set."""

    name: str
    positions: np.ndarray          # (N, 3) float32
    weights: np.ndarray            # (N,) float32
    smoothing_lengths: np.ndarray  # (N,) float32, kernel support radius
    centres: np.ndarray            # (K, 3) cluster centres for the index benchmark


def random_set(n: int, seed: int = 0) -> ParticleSet:
    """Uniform particles; smoothing length twice the mean spacing."""
    rng = np.random.default_rng(seed)
    pos = rng.random((n, 3), dtype=np.float32) * np.float32(BOXSIZE)
    w = rng.uniform(0.5, 1.5, n).astype(np.float32)
    h = np.full(n, 2.0 * BOXSIZE / n ** (1 / 3), dtype=np.float32)
    centres = np.vstack([CENTRE, rng.random((19, 3)) * BOXSIZE])
    return ParticleSet("random", pos, w, h, centres)


def clustered_set(n: int, seed: int = 1) -> ParticleSet:
    """30 % uniform background, 70 % in 300 Gaussian clumps (the largest at CENTRE).

    Clump populations follow a power law; a clump of ``m`` particles has
    ``sigma = 0.6 Mpc (m / 1e5)^(1/3)``.  Smoothing lengths are
    ``2 (local density)^(-1/3)`` from the clump's own profile, clipped to [0.01, 5] Mpc.
    """
    rng = np.random.default_rng(seed)
    nbg = int(0.3 * n)
    nclump = 300
    share = rng.pareto(1.0, nclump) + 1.0
    share[0] = share.max() * 2.0
    counts = np.floor(share / share.sum() * (n - nbg)).astype(np.int64)
    counts[0] += n - nbg - counts.sum()
    centres = rng.random((nclump, 3)) * BOXSIZE
    centres[0] = CENTRE
    sigma = 0.6 * (counts / 1e5) ** (1 / 3)
    owner = np.repeat(np.arange(nclump), counts)
    offs = rng.normal(size=(owner.size, 3)).astype(np.float32)
    pos = np.empty((n, 3), dtype=np.float32)
    pos[:nbg] = rng.random((nbg, 3), dtype=np.float32) * np.float32(BOXSIZE)
    pos[nbg:] = centres[owner] + offs * sigma[owner, None]
    np.mod(pos, np.float32(BOXSIZE), out=pos)
    pos[pos >= BOXSIZE] = 0.0
    h = np.empty(n, dtype=np.float32)
    h[:nbg] = 2.0 * BOXSIZE / max(nbg, 1) ** (1 / 3)
    r2 = np.einsum("ij,ij->i", offs, offs)
    dens = counts[owner] / ((2 * np.pi) ** 1.5 * sigma[owner] ** 3) * np.exp(-0.5 * r2)
    h[nbg:] = np.clip(2.0 * dens ** (-1 / 3), 0.01, 5.0)
    w = rng.uniform(0.5, 1.5, n).astype(np.float32)
    return ParticleSet("clustered", pos, w, h, centres[np.argsort(-counts)[:20]])


def _spread_bits(v: np.ndarray) -> np.ndarray:
    """Put bit ``b`` of each (< 2**21) uint64 at bit ``3 b`` (Morton interleaving)."""
    v = v & 0x1FFFFF
    v = (v | (v << 32)) & 0x1F00000000FFFF
    v = (v | (v << 16)) & 0x1F0000FF0000FF
    v = (v | (v << 8)) & 0x100F00F00F00F00F
    v = (v | (v << 4)) & 0x10C30C30C30C30C3
    return (v | (v << 2)) & 0x1249249249249249


def spatial_order(positions: np.ndarray, boxsize: float, bits: int = 10,
                  chunk: int = 1 << 23) -> np.ndarray:
    """Permutation that sorts particles along a space-filling curve.

    The key is the Morton (Z-order) interleaving of the cell coordinates on a
    ``2**bits`` grid per axis (0.2 Mpc cells in the 200 Mpc box), sorted stably.
    Snapshots are stored in such an order (GADGET, EAGLE and BAHAMAS write their
    particles in Peano-Hilbert order; cmc's synthetic universe writes them halo by
    halo), so neighbours in space are neighbours in memory; the benchmark sets are
    drawn in random order, the worst case for an indexed scan.
    """
    keys = np.empty(len(positions), dtype=np.uint64)
    scale = (1 << bits) / boxsize
    for a in range(0, len(positions), chunk):
        cells = np.clip((positions[a:a + chunk] * scale).astype(np.int64), 0, (1 << bits) - 1)
        cells = cells.astype(np.uint64)
        keys[a:a + chunk] = ((_spread_bits(cells[:, 0]) << np.uint64(2))
                             | (_spread_bits(cells[:, 1]) << np.uint64(1))
                             | _spread_bits(cells[:, 2]))
    return np.argsort(keys, kind="stable")


def in_spatial_order(ps: ParticleSet) -> ParticleSet:
    """The same particles (and centres) reordered by :func:`spatial_order`."""
    order = spatial_order(ps.positions, BOXSIZE)
    return ParticleSet(ps.name + "/sfc", ps.positions[order], ps.weights[order],
                       ps.smoothing_lengths[order], ps.centres)


def _prefilter_extents(u: np.ndarray, v: np.ndarray, n: np.ndarray, width: float, depth: float,
                       reach: float) -> np.ndarray:
    """Half extents [Mpc] of the axis-aligned box around the slab x footprint (plus ``reach``),
    with a margin far above float32 rounding in a box of a few hundred Mpc."""
    half = 0.5 * width + reach
    return half * (np.abs(u) + np.abs(v)) + depth * np.abs(n) + 1e-3


def _numpy_block(positions: np.ndarray, weights: np.ndarray, lo: int, hi: int, c: np.ndarray,
                 ext: np.ndarray, boxsize: float | None, u, v, n, depth: float, width: float,
                 npix: int, scheme: str) -> np.ndarray:
    """One block of :func:`numpy_project`: its (npix * npix,) float64 image."""
    p = positions[lo:hi]
    dt = p.dtype.type
    keep = None
    tmp = np.empty(hi - lo, dtype=p.dtype)
    for a in range(3):
        periodic = boxsize is not None
        if periodic and ext[a] >= 0.5 * boxsize:
            continue
        np.subtract(p[:, a], dt(c[a]), out=tmp)
        np.abs(tmp, out=tmp)
        if periodic:        # minimum image without a floor: |dx| <= e or |dx| >= L - e
            np.subtract(tmp, dt(0.5 * boxsize), out=tmp)
            np.abs(tmp, out=tmp)
            ok = tmp >= dt(0.5 * boxsize - ext[a])
        else:
            ok = tmp <= dt(ext[a])
        keep = ok if keep is None else np.logical_and(keep, ok, out=keep)
    ids = np.arange(lo, hi) if keep is None else np.flatnonzero(keep) + lo
    d = positions[ids].astype(np.float64) - c          # the exact path, in float64
    if boxsize is not None:
        d -= boxsize * np.floor(d / boxsize + 0.5)
    s = d[:, 0] * n[0] + d[:, 1] * n[1] + d[:, 2] * n[2]
    sel = np.abs(s) <= depth
    d, w = d[sel], weights[ids[sel]]
    fu = (d[:, 0] * u[0] + d[:, 1] * u[1] + d[:, 2] * u[2] + 0.5 * width) * (npix / width)
    fv = (d[:, 0] * v[0] + d[:, 1] * v[1] + d[:, 2] * v[2] + 0.5 * width) * (npix / width)
    if scheme == "ngp":
        ok = (fu >= 0) & (fu < npix) & (fv >= 0) & (fv < npix)
        pix = fv[ok].astype(np.int64) * npix + fu[ok].astype(np.int64)
        return np.bincount(pix, weights=w[ok], minlength=npix * npix).astype(np.float64)
    fx, fy = fu - 0.5, fv - 0.5
    x0, y0 = np.floor(fx), np.floor(fy)
    tx, ty = fx - x0, fy - y0
    j0, i0 = x0.astype(np.int64), y0.astype(np.int64)
    img = np.zeros(npix * npix)
    for a, wy in ((0, 1.0 - ty), (1, ty)):
        for b, wx in ((0, 1.0 - tx), (1, tx)):
            row, col = i0 + a, j0 + b
            ok = (row >= 0) & (row < npix) & (col >= 0) & (col < npix)
            img += np.bincount(row[ok] * npix + col[ok], weights=w[ok] * (wy[ok] * wx[ok]),
                               minlength=npix * npix)
    return img


def numpy_project(positions: np.ndarray, weights: np.ndarray, centre: Sequence[float],
                  boxsize: float | None, los: str = LOS, azimuth: float = AZIMUTH,
                  depth: float = DEPTH, width: float = WIDTH, npix: int = NPIX,
                  scheme: str = "ngp", *, nthreads: int = 1, block: int = NUMPY_BLOCK,
                  pool: ThreadPoolExecutor | None = None) -> np.ndarray:
    """The NumPy baseline of ``project`` (NGP or CIC): the same algorithm, vectorised.

    The particles are taken in blocks of ``block``.  In each, a prefilter in the
    positions' own dtype (float32 as stored) keeps the particles inside the
    axis-aligned box around the slab x image footprint (periodic minimum image,
    ``|dx| <= e or |dx| >= L - e``); only those are converted to float64 and
    wrapped, cut to the slab, rotated and deposited with ``np.bincount``.  With
    ``nthreads > 1`` the blocks are dealt to that many Python threads (``pool``, or
    one made for the call) and the images summed.  Same image as ``project`` up to
    float64 rounding of the sums.
    """
    if scheme not in ("ngp", "cic"):
        raise ValueError(f"numpy_project: scheme must be 'ngp' or 'cic', got {scheme!r}")
    u, v, n = los_basis(los, azimuth)
    c = np.asarray(centre, dtype=np.float64)
    if boxsize is not None:
        c = c - boxsize * np.floor(c / boxsize)
    ext = _prefilter_extents(u, v, n, width, depth, reach=(width / npix if scheme == "cic" else 0.0))
    ranges = [(lo, min(lo + block, len(positions))) for lo in range(0, len(positions), block)]

    def one(r):
        return _numpy_block(positions, weights, r[0], r[1], c, ext, boxsize, u, v, n, depth,
                            width, npix, scheme)

    img = np.zeros(npix * npix)
    if nthreads <= 1 or len(ranges) <= 1:
        for r in ranges:
            img += one(r)
    elif pool is not None:
        for part in pool.map(one, ranges):
            img += part
    else:
        with ThreadPoolExecutor(max_workers=nthreads) as own:
            for part in own.map(one, ranges):
                img += part
    return img.reshape(npix, npix)


def _image_coordinates(ps: ParticleSet, centre: Sequence[float]):
    """Particles whose kernel reaches the image: their ids, u, v (Mpc) and H."""
    u, v, n = los_basis(LOS, AZIMUTH)
    d = ps.positions.astype(np.float64) - np.asarray(centre)
    d -= BOXSIZE * np.floor(d / BOXSIZE + 0.5)
    # explicit products, not "@": BLAS threads would keep spinning and steal the
    # cores from the timings that follow
    uu, vv, ss = [d[:, 0] * a[0] + d[:, 1] * a[1] + d[:, 2] * a[2] for a in (u, v, n)]
    H = ps.smoothing_lengths.astype(np.float64)
    hw = 0.5 * WIDTH
    sel = (np.abs(ss) <= DEPTH) & (np.abs(uu) < hw + H) & (np.abs(vv) < hw + H)
    return np.flatnonzero(sel), uu[sel], vv[sel], H[sel]


def _swift_backends() -> dict[str, Callable]:
    """swiftsimio's SPH projection backends, or {} when swiftsimio is absent."""
    try:
        from swiftsimio.visualisation.projection_backends import backends, backends_parallel
    except ImportError:
        return {}
    chosen = {}
    for name in ("fast", "renormalised"):
        if name in backends:
            chosen[name] = backends[name]
        if name in backends_parallel:
            chosen[name + "_parallel"] = backends_parallel[name]
    return chosen


def _swift_kernel_gamma() -> float:
    from swiftsimio.visualisation.projection_backends.kernels import kernel_gamma

    return float(kernel_gamma)


Method = tuple  # (key, fn) or (key, fn, setup): setup() runs untimed before each call


def timed_rounds(methods: Sequence[Method], repeat: int) -> tuple[dict, dict]:
    """Time ``methods`` against each other on equal terms.

    Each method runs once untimed (the warm-up; its result is returned for the
    correctness checks), then ``repeat`` rounds follow in which every method runs
    once, the order rotating by one from round to round (round ``r`` starts with
    method ``r mod k``), so that every method goes first equally often and the
    methods alternate.  An optional third element of a method, ``setup()``, runs
    untimed before each of its calls (e.g. setting a thread count).

    Returns ``({key: [seconds of each round]}, {key: warm-up result})``.
    """
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    methods = [(m[0], m[1], m[2] if len(m) > 2 else None) for m in methods]
    results, times = {}, {key: [] for key, _, _ in methods}
    for key, fn, setup in methods:
        if setup is not None:
            setup()
        results[key] = fn()
    k = len(methods)
    for r in range(repeat):
        for j in range(k):
            key, fn, setup = methods[(r + j) % k]
            if setup is not None:
                setup()
            t0 = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t0)
    return times, results


Row = dict


def _row(dataset: str, n: int, case: str, method: str, threads: int | None, times: Sequence[float],
         role: str, per: int = 1, **extra) -> Row:
    """One record row; ``times`` are per call, divided by ``per`` (e.g. per cluster)."""
    times = [t / per for t in times]
    row = {"dataset": dataset, "n": n, "case": case, "method": method, "threads": threads,
           "role": role, "seconds": statistics.median(times), "seconds_min": min(times),
           "seconds_all": times, "repeat": len(times), "warmup": 1 if role != "once" else 0,
           "baseline": None, "baseline_threads": None, "ratio": None, "ratio_min": None}
    row.update(extra)
    return row


def _compare(baselines: Sequence[Row], measured: Sequence[Row]) -> None:
    """Give each measured row its ratio against the fastest baseline (by median) that uses at
    most as many threads as it does: ``ratio`` from the medians, ``ratio_min`` from the minima
    of the same two rows."""
    for r in measured:
        eligible = [b for b in baselines if b["threads"] <= r["threads"]]
        if not eligible:
            continue
        best = min(eligible, key=lambda b: b["seconds"])
        r.update(baseline=best["method"], baseline_threads=best["threads"],
                 ratio=best["seconds"] / r["seconds"], ratio_min=best["seconds_min"] / r["seconds_min"])


def _rel_diff(img: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(img - ref).max() / max(float(np.abs(ref).max()), 1e-300))


def _log_rows(rows: Sequence[Row], log: Callable[[str], None]) -> None:
    for r in rows:
        ratio = "" if r["ratio"] is None else (f" -> {r['ratio']:.1f}x vs {r['baseline']} "
                                               f"({r['baseline_threads']} thr)")
        log(f"  {r['dataset']} N={r['n']:.0e} {r['case']}: {r['method']} [{r['threads']} thr] "
            f"median {r['seconds'] * 1e3:.3f} ms, min {r['seconds_min'] * 1e3:.3f} ms{ratio}")


def _bench_scheme(ps: ParticleSet, scheme: str, repeat: int, threads: Sequence[int],
                  pools: dict, log: Callable[[str], None]) -> list[Row]:
    n = len(ps.positions)
    kw = dict(los=LOS, azimuth=AZIMUTH, depth=DEPTH, width=WIDTH, npix=NPIX, scheme=scheme)
    methods = []
    for t in threads:
        methods.append((("numpy", t), lambda t=t: numpy_project(ps.positions, ps.weights, CENTRE, BOXSIZE,
                                                                 nthreads=t, pool=pools.get(t), **kw)))
        methods.append((("cmc", t), lambda t=t: project(ps.positions, ps.weights, CENTRE, BOXSIZE,
                                                         nthreads=t, **kw)))
    times, out = timed_rounds(methods, repeat)
    ref = out[("numpy", min(threads))]
    base = [_row(ps.name, n, scheme, "numpy", t, times[("numpy", t)], "baseline",
                 max_rel_diff=_rel_diff(out[("numpy", t)], ref)) for t in threads]
    meas = [_row(ps.name, n, scheme, "cmc", t, times[("cmc", t)], "measured",
                 max_rel_diff=_rel_diff(out[("cmc", t)], ref)) for t in threads]
    _compare(base, meas)
    _log_rows(base + meas, log)
    return base + meas


def _numba_threads(t: int) -> Callable[[], None]:
    def setup():
        import numba

        numba.set_num_threads(t)
    return setup


def _bench_sph(ps: ParticleSet, repeat: int, threads: Sequence[int], swift: bool,
               log: Callable[[str], None]) -> list[Row]:
    n = len(ps.positions)
    kw = dict(los=LOS, azimuth=AZIMUTH, depth=DEPTH, width=WIDTH, npix=NPIX, scheme="sph")
    ids, uu, vv, H = _image_coordinates(ps, CENTRE)
    sub_pos = np.ascontiguousarray(ps.positions[ids])
    sub_w, sub_h = ps.weights[ids], ps.smoothing_lengths[ids]
    backends = _swift_backends() if swift else {}
    methods, baseline_keys = [], []
    numba_max = None
    if backends:
        import numba

        numba_max = numba.config.NUMBA_NUM_THREADS
        gamma = _swift_kernel_gamma()
        x = (uu + 0.5 * WIDTH) / WIDTH
        y = (vv + 0.5 * WIDTH) / WIDTH
        hs = (H / WIDTH / gamma).astype(np.float32)
        for name, fn in backends.items():
            parallel = name.endswith("_parallel")
            for t in (threads if parallel else [1]):
                if t > numba_max:
                    continue
                key = (f"swiftsimio:{name}", t)
                baseline_keys.append(key)
                methods.append((key, lambda fn=fn: fn(x, y, sub_w, hs, NPIX, 0.0, 0.0),
                                _numba_threads(t) if parallel else None))
    for t in threads:
        methods.append((("cmc (same particles)", t),
                        lambda t=t: project(sub_pos, sub_w, CENTRE, BOXSIZE, smoothing_lengths=sub_h,
                                            nthreads=t, **kw)))
        methods.append((("cmc (all N)", t),
                        lambda t=t: project(ps.positions, ps.weights, CENTRE, BOXSIZE,
                                            smoothing_lengths=ps.smoothing_lengths, nthreads=t, **kw)))
    times, _ = timed_rounds(methods, repeat)
    if numba_max is not None:
        _numba_threads(numba_max)()
    base = [_row(ps.name, n, "sph", key[0], key[1], times[key], "baseline", particles=int(ids.size))
            for key in baseline_keys]
    meas = []
    for t in threads:
        meas.append(_row(ps.name, n, "sph", "cmc (same particles)", t, times[("cmc (same particles)", t)],
                         "measured", particles=int(ids.size)))
        meas.append(_row(ps.name, n, "sph", "cmc (all N)", t, times[("cmc (all N)", t)], "measured",
                         particles=n))
    _compare(base, meas)
    inside = (np.abs(uu) + H <= 0.5 * WIDTH - WIDTH / NPIX) & (np.abs(vv) + H <= 0.5 * WIDTH
                                                               - WIDTH / NPIX)
    if inside.any():
        img = project(sub_pos[inside], sub_w[inside], CENTRE, BOXSIZE,
                      smoothing_lengths=sub_h[inside], **kw)
        total = float(sub_w[inside].astype(np.float64).sum())
        for r in meas:
            if r["method"] == "cmc (all N)":
                r["mass_conservation_rel_err"] = abs(float(img.sum()) - total) / total
    _log_rows(base + meas, log)
    return base + meas


def numpy_select_sphere(positions: np.ndarray, centre: Sequence[float], radius: float,
                        boxsize: float, block: int = NUMPY_BLOCK) -> np.ndarray:
    """The NumPy baseline of ``CellIndex.select_sphere``: ids of the particles within
    ``radius`` of ``centre`` (periodic), ascending.

    In blocks of ``block`` particles, a prefilter in the positions' own dtype keeps the
    particles whose x offset is within ``radius`` (minimum image, no floor); the
    survivors' full distance is computed in float64, as the compiled selection does.
    """
    c = np.asarray(centre, dtype=np.float64)
    c = c - boxsize * np.floor(c / boxsize)
    dt = positions.dtype.type
    out = []
    half = 0.5 * boxsize
    for lo in range(0, len(positions), block):
        p = positions[lo:lo + block]
        tmp = np.abs(p[:, 0] - dt(c[0]))
        np.subtract(tmp, dt(half), out=tmp)
        np.abs(tmp, out=tmp)
        ids = np.flatnonzero(tmp >= dt(half - radius - 1e-3))
        d = p[ids].astype(np.float64) - c
        d -= boxsize * np.floor(d / boxsize + 0.5)
        out.append(ids[np.einsum("ij,ij->i", d, d) <= radius * radius] + lo)
    return np.concatenate(out) if out else np.empty(0, np.int64)


def _bench_index(ps: ParticleSet, repeat: int, threads: Sequence[int],
                 log: Callable[[str], None]) -> list[Row]:
    n = len(ps.positions)
    nt_build = max(threads)
    t0 = time.perf_counter()
    idx = CellIndex(ps.positions, BOXSIZE, nthreads=nt_build)
    t_build = time.perf_counter() - t0
    rows = [_row(ps.name, n, "index", "build", nt_build, [t_build], "once",
                 bytes_per_particle=idx.nbytes / max(n, 1), ncell=idx.ncell)]
    kw = dict(los=LOS, azimuth=AZIMUTH, depth=DEPTH, width=WIDTH, npix=NPIX)
    centres = ps.centres
    k = len(centres)

    def per_cluster(nt, **extra):
        return [project(ps.positions, ps.weights, c, BOXSIZE, nthreads=nt, **kw, **extra)
                for c in centres]

    # the same clusters both ways, at the same threads (their deposits differ: the
    # clustered set's largest clumps put millions of particles in the image)
    methods = []
    for t in threads:
        methods.append((("project: full scan", t), lambda t=t: per_cluster(t)))
        methods.append((("project: with index", t), lambda t=t: per_cluster(t, index=idx)))
    times, out = timed_rounds(methods, repeat)
    base, meas = [], []
    ref = out[("project: full scan", min(threads))]
    for t in threads:
        base.append(_row(ps.name, n, "index", "project: full scan", t, times[("project: full scan", t)],
                         "baseline", per=k, clusters=k))
        diff = max(_rel_diff(a, b) for a, b in zip(out[("project: with index", t)], ref))
        meas.append(_row(ps.name, n, "index", "project: with index", t, times[("project: with index", t)],
                         "measured", per=k, clusters=k, max_rel_diff=diff))
    _compare(base, meas)
    del out, ref
    radius = 3.0
    # select_sphere is serial: one thread both ways, the same 20 spheres
    times, out = timed_rounds([
        (("select_sphere: numpy scan", 1),
         lambda: [numpy_select_sphere(ps.positions, c, radius, BOXSIZE) for c in centres]),
        (("select_sphere: with index", 1), lambda: [idx.select_sphere(c, radius) for c in centres]),
    ], repeat)
    same = all(np.array_equal(np.sort(a), np.sort(b)) for a, b in
               zip(out[("select_sphere: numpy scan", 1)], out[("select_sphere: with index", 1)]))
    if not same:
        raise AssertionError(f"{ps.name}: select_sphere and the NumPy scan select different particles")
    sb = [_row(ps.name, n, "index", "select_sphere: numpy scan", 1, times[("select_sphere: numpy scan", 1)],
               "baseline", per=k, clusters=k, radius=radius)]
    sm = [_row(ps.name, n, "index", "select_sphere: with index", 1, times[("select_sphere: with index", 1)],
               "measured", per=k, clusters=k, radius=radius, same_particles=same)]
    _compare(sb, sm)
    rows += base + meas + sb + sm
    _log_rows(rows, log)
    return rows


def memory_bytes() -> int | None:
    """Physical memory of the machine [bytes] (``MemTotal``), or None where unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or None where unknown."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def record_start() -> dict:
    """The fields a benchmark record opens with: the exact command line (``argv``, and
    ``command`` joined), the git commit (``+dirty`` with local changes), the machine with
    its memory, the start date and the load average before the run."""
    machine = machine_info()
    machine["memory_bytes"] = memory_bytes()
    return {"argv": list(sys.argv), "command": " ".join(sys.argv), "commit": git_commit(),
            "machine": machine, "date_utc_start": utc_now(), "load_average_before": load_average()}


def record_end(record: dict) -> dict:
    """Add the end date and the load average after the run to ``record``; return it."""
    record.update(date_utc_end=utc_now(), load_average_after=load_average())
    return record


def context_lines(record: dict) -> list[str]:
    """Header lines of a table: command, commit, machine, dates and load averages."""
    m = record["machine"]
    mem = m.get("memory_bytes")
    la = lambda v: "n/a" if v is None else ", ".join(f"{x:.2f}" for x in v)  # noqa: E731
    return [f"command: {record['command']}",
            f"commit: {record['commit']}",
            f"machine: {m['cpu_model']}, {m['logical_cores']} logical cores (usable {m['usable_cores']}), "
            f"{'n/a' if mem is None else f'{mem / 2**30:.1f} GiB'} memory, OpenMP "
            f"{'on' if m['openmp'] else 'off'} ({m['openmp_max_threads']} threads), numpy {m['numpy']}, "
            f"{m['platform']}",
            f"dates (UTC): {record['date_utc_start']} to {record['date_utc_end']}; load average "
            f"(1, 5, 15 min) before {la(record['load_average_before'])}, after "
            f"{la(record['load_average_after'])}"]


def default_threads() -> tuple[int, ...]:
    """1 and the usable cores (just 1 on a single core)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return (1,) if cores <= 1 else (1, cores)


def run(sizes: Sequence[int] = (1_000_000, 10_000_000), *, repeat: int = 5,
        threads: Sequence[int] | None = None, swift: bool = True,
        log: Callable[[str], None] = print) -> dict:
    """Run the kernel benchmark; return the record (``machine``, ``setup``, ``rows`` and the
    command line, git commit, load average before and after, start and end dates)."""
    threads = tuple(sorted(set(threads or default_threads())))
    if threads[0] != 1:
        raise ValueError("threads must include 1 (every ratio is reported 1 vs 1)")
    record = {"benchmark": "kernels", **record_start()}
    rows: list[Row] = []
    pools = {t: ThreadPoolExecutor(max_workers=t) for t in threads if t > 1}
    try:
        for n in sizes:
            for make in (random_set, clustered_set):
                ps = make(int(n))
                for scheme in ("ngp", "cic"):
                    rows += _bench_scheme(ps, scheme, repeat, threads, pools, log)
                rows += _bench_sph(ps, repeat, threads, swift, log)
                rows += _bench_index(ps, repeat, threads, log)
                ps = in_spatial_order(ps)
                rows += _bench_index(ps, repeat, threads, log)
                del ps
    finally:
        for pool in pools.values():
            pool.shutdown()
    setup = {"boxsize": BOXSIZE, "depth": DEPTH, "width": WIDTH, "npix": NPIX, "centre": CENTRE,
             "los": LOS, "azimuth": AZIMUTH, "positions_dtype": "float32", "repeat": repeat,
             "warmup": 1, "threads": list(threads), "order": "rotating rounds (timed_rounds)",
             "statistic": "median (headline) and min", "numpy_block": NUMPY_BLOCK,
             "baselines": BASELINES, "swiftsimio": _swift_version() if swift else None}
    record.update(setup=setup, rows=rows)
    return record_end(record)


def _swift_version() -> str | None:
    try:
        import swiftsimio
    except ImportError:
        return None
    return getattr(swiftsimio, "__version__", "unknown")


def format_table(result: dict) -> str:
    """Render a :func:`run` result as a text table: command, commit, machine and load first."""
    s = result["setup"]
    lines = context_lines(result) + [
        f"software: swiftsimio {s.get('swiftsimio')}",
        f"setup: box {s['boxsize']} Mpc, slab +-{s['depth']} Mpc, image {s['width']} Mpc / "
        f"{s['npix']} px, los {s['los']!r} azimuth {s['azimuth']}, float32 positions for both sides",
        f"timing: 1 untimed warm-up call per method, then {s['repeat']} rounds, every method once "
        f"per round, order rotating; median and min of the {s['repeat']}",
        "ratio = baseline median / median (ratio_min: the same rows' minima), against the fastest "
        "baseline row using at most as many threads (its method and threads in the last column)",
        "baselines (the fastest known way to do the same work with that library):"]
    lines += [f"  {case}: {text}" for case, text in s["baselines"].items()]
    lines.append("")
    head = (f"{'dataset':<13} {'N':>8} {'case':<6} {'method':<33} {'thr':>3} {'median [ms]':>12} "
            f"{'min [ms]':>11} {'ratio':>9} {'ratio_min':>9}  against")
    lines += [head, "-" * len(head)]
    for r in result["rows"]:
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.1f}x"
        rmin = "" if r["ratio_min"] is None else f"{r['ratio_min']:.1f}x"
        against = "" if r["baseline"] is None else f"{r['baseline']} ({r['baseline_threads']} thr)"
        note = ""
        if "mass_conservation_rel_err" in r:
            note = f"  mass err {r['mass_conservation_rel_err']:.1e}"
        if "bytes_per_particle" in r:
            note = f"  once; {r['bytes_per_particle']:.2f} B/particle"
        lines.append(f"{r['dataset']:<13} {r['n']:>8.0e} {r['case']:<6} {r['method']:<33} "
                     f"{r['threads']:>3} {r['seconds'] * 1e3:>12.3f} {r['seconds_min'] * 1e3:>11.3f} "
                     f"{ratio:>9} {rmin:>9}  {against}{note}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the kernel benchmark (shared by ``cmc bench kernels`` and the script)."""
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7],
                        help="particle numbers (default: 1e6 1e7)")
    parser.add_argument("--big", action="store_true",
                        help="add 1e8 particles (needs ~16 GB of memory)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="timed rounds after one warm-up, the same for every method; median "
                             "and min recorded (default 5)")
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="thread counts, 1 included (default: 1 and the usable cores)")
    parser.add_argument("--no-swiftsimio", action="store_true",
                        help="skip swiftsimio even when installed")
    parser.add_argument("--out", type=Path, default=Path("bench/results"),
                        help="folder for kernels.json (default: bench/results)")


def run_from_args(args: argparse.Namespace) -> int:
    """Run with parsed options: table on stdout, JSON in ``args.out``."""
    sizes = [int(s) for s in args.sizes] + ([100_000_000] if args.big else [])
    if any(s < 1 for s in sizes):
        raise ValueError("--sizes must be positive")
    if args.repeat < 1:
        raise ValueError("--repeat must be at least 1")
    if args.threads is not None and (min(args.threads) < 1 or 1 not in args.threads):
        raise ValueError("--threads must be positive and include 1")
    t0 = time.perf_counter()
    result = run(sizes, repeat=args.repeat, threads=args.threads, swift=not args.no_swiftsimio,
                 log=lambda s: print(s, file=sys.stderr, flush=True))
    result["wall_seconds"] = time.perf_counter() - t0
    table = format_table(result)
    print(table)
    path = write_result(args.out, "kernels", result, table, default=_json_default)
    print(f"\nwritten {path} and kernels.txt")
    return 0


def _json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and math.isnan(obj):
        return None
    raise TypeError(f"not JSON serialisable: {type(obj)}")
