"""Benchmark of the particle-to-image kernels (``cmc bench kernels``, ``bench/kernels.py``).

On random and clustered particle sets (float32 positions in a periodic 200 Mpc box,
one 5 Mpc, 120 x 120 image through a +-50 Mpc slab, centred on a cluster that
straddles a box corner) it times, in one run and on the same data:

``ngp`` / ``cic``
    :func:`cmcore.projection.project` with 1 and 2 threads against
    :func:`numpy_project`, a plain NumPy implementation of the same steps (wrap,
    slab, rotate, then ``np.bincount``).
``sph``
    ``project(scheme="sph")`` against swiftsimio's projection backends (when
    swiftsimio is installed), both on the particles that reach the image (the
    backends only deposit; they get x, y, h in image units), plus the full
    ``project`` call from all N particles.  Mass conservation of cmc on the
    kernels wholly inside the image is recorded.
``index``
    per-cluster work with a :class:`~cmcore.cellindex.CellIndex`: ``project`` with
    the index against the full scan (mean over the same 20 clusters), and
    ``select_sphere`` against a NumPy scan; on the set as drawn (random memory
    order, the worst case) and again on the same particles in spatial order
    (``<set>/sfc``, :func:`spatial_order`), the order snapshots are written in.

Ratios are ``baseline time / time`` (higher is faster); times are the best of
``repeat`` runs.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..cellindex import CellIndex
from ..projection import los_basis, project
from . import best_time, machine_info, write_result

__all__ = ["ParticleSet", "random_set", "clustered_set", "spatial_order", "in_spatial_order",
           "numpy_project", "run", "format_table"]

BOXSIZE = 200.0
DEPTH = 50.0
WIDTH = 5.0
NPIX = 120
CENTRE = (199.6, 100.0, 0.4)        # the main cluster straddles the box boundary
LOS = "diag"
AZIMUTH = 0.3


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


def numpy_project(positions: np.ndarray, weights: np.ndarray, centre: Sequence[float],
                  boxsize: float, los: str = LOS, azimuth: float = AZIMUTH,
                  depth: float = DEPTH, width: float = WIDTH, npix: int = NPIX,
                  scheme: str = "ngp") -> np.ndarray:
    """The NumPy baseline: wrap, slab, rotate, then ``np.bincount`` (NGP or CIC)."""
    u, v, n = los_basis(los, azimuth)
    d = positions.astype(np.float64) - np.asarray(centre, dtype=np.float64)
    d -= boxsize * np.floor(d / boxsize + 0.5)
    s = d[:, 0] * n[0] + d[:, 1] * n[1] + d[:, 2] * n[2]
    keep = np.abs(s) <= depth
    d, w = d[keep], weights[keep]
    fu = (d[:, 0] * u[0] + d[:, 1] * u[1] + d[:, 2] * u[2] + 0.5 * width) * (npix / width)
    fv = (d[:, 0] * v[0] + d[:, 1] * v[1] + d[:, 2] * v[2] + 0.5 * width) * (npix / width)
    if scheme == "ngp":
        ok = (fu >= 0) & (fu < npix) & (fv >= 0) & (fv < npix)
        pix = fv[ok].astype(np.int64) * npix + fu[ok].astype(np.int64)
        return np.bincount(pix, weights=w[ok], minlength=npix * npix).reshape(npix, npix)
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


Row = dict


def _row(dataset: str, n: int, case: str, method: str, threads: int | None, seconds: float,
         baseline: float | None, **extra) -> Row:
    row = {"dataset": dataset, "n": n, "case": case, "method": method, "threads": threads,
           "seconds": seconds, "ratio": (baseline / seconds) if baseline else None}
    row.update(extra)
    return row


def _bench_scheme(ps: ParticleSet, scheme: str, repeat: int, threads: Sequence[int],
                  log: Callable[[str], None]) -> list[Row]:
    n = len(ps.positions)
    kw = dict(los=LOS, azimuth=AZIMUTH, depth=DEPTH, width=WIDTH, npix=NPIX, scheme=scheme)
    t_np, ref = best_time(lambda: numpy_project(ps.positions, ps.weights, CENTRE, BOXSIZE,
                                                scheme=scheme), max(1, repeat - 1))
    rows = [_row(ps.name, n, scheme, "numpy", 1, t_np, t_np)]
    log(f"  {ps.name} N={n:.0e} {scheme}: numpy {t_np * 1e3:.1f} ms")
    for nt in threads:
        t, img = best_time(lambda: project(ps.positions, ps.weights, CENTRE, BOXSIZE,
                                           nthreads=nt, **kw), repeat)
        err = float(np.abs(img - ref).max() / max(np.abs(ref).max(), 1e-300))
        rows.append(_row(ps.name, n, scheme, "cmc", nt, t, t_np, max_rel_diff=err))
        log(f"  {ps.name} N={n:.0e} {scheme}: cmc {nt} thread(s) {t * 1e3:.2f} ms "
            f"({t_np / t:.1f}x)")
    return rows


def _bench_sph(ps: ParticleSet, repeat: int, threads: Sequence[int], swift: bool,
               log: Callable[[str], None]) -> list[Row]:
    n = len(ps.positions)
    kw = dict(los=LOS, azimuth=AZIMUTH, depth=DEPTH, width=WIDTH, npix=NPIX, scheme="sph")
    ids, uu, vv, H = _image_coordinates(ps, CENTRE)
    sub_pos = np.ascontiguousarray(ps.positions[ids])
    sub_w, sub_h = ps.weights[ids], ps.smoothing_lengths[ids]
    rows: list[Row] = []
    baseline = None
    backends = _swift_backends() if swift else {}
    if backends:
        gamma = _swift_kernel_gamma()
        x = (uu + 0.5 * WIDTH) / WIDTH
        y = (vv + 0.5 * WIDTH) / WIDTH
        hs = (H / WIDTH / gamma).astype(np.float32)
        for name, fn in backends.items():
            fn(x[:10], y[:10], sub_w[:10], hs[:10], NPIX, 0.0, 0.0)      # JIT compile
            t, _ = best_time(lambda: fn(x, y, sub_w, hs, NPIX, 0.0, 0.0), repeat)
            rows.append(_row(ps.name, n, "sph", f"swiftsimio:{name}", None, t, None,
                             particles=int(ids.size)))
            log(f"  {ps.name} N={n:.0e} sph: swiftsimio {name} {t * 1e3:.1f} ms "
                f"({ids.size} particles)")
        best = min(rows, key=lambda r: r["seconds"])
        baseline = best["seconds"]
        for r in rows:
            r["ratio"] = baseline / r["seconds"]
    for nt in threads:
        t, _ = best_time(lambda: project(sub_pos, sub_w, CENTRE, BOXSIZE, smoothing_lengths=sub_h,
                                         nthreads=nt, **kw), repeat)
        rows.append(_row(ps.name, n, "sph", "cmc (same particles)", nt, t, baseline,
                         particles=int(ids.size)))
        log(f"  {ps.name} N={n:.0e} sph: cmc on the same particles, {nt} thread(s) "
            f"{t * 1e3:.1f} ms")
    t, _ = best_time(lambda: project(ps.positions, ps.weights, CENTRE, BOXSIZE,
                                     smoothing_lengths=ps.smoothing_lengths, **kw), repeat)
    rows.append(_row(ps.name, n, "sph", "cmc (all N)", None, t, baseline, particles=n))
    log(f"  {ps.name} N={n:.0e} sph: cmc from all N {t * 1e3:.1f} ms")
    inside = (np.abs(uu) + H <= 0.5 * WIDTH - WIDTH / NPIX) & (np.abs(vv) + H <= 0.5 * WIDTH
                                                               - WIDTH / NPIX)
    if inside.any():
        img = project(sub_pos[inside], sub_w[inside], CENTRE, BOXSIZE,
                      smoothing_lengths=sub_h[inside], **kw)
        total = float(sub_w[inside].astype(np.float64).sum())
        rows[-1]["mass_conservation_rel_err"] = abs(float(img.sum()) - total) / total
    return rows


def _bench_index(ps: ParticleSet, repeat: int, log: Callable[[str], None]) -> list[Row]:
    n = len(ps.positions)
    t_build, idx = best_time(lambda: CellIndex(ps.positions, BOXSIZE), 1)
    rows = [_row(ps.name, n, "index", "build", None, t_build, None,
                 bytes_per_particle=idx.nbytes / max(n, 1), ncell=idx.ncell)]
    log(f"  {ps.name} N={n:.0e} index: build {t_build:.2f} s, "
        f"{idx.nbytes / max(n, 1):.2f} bytes/particle")
    kw = dict(los=LOS, azimuth=AZIMUTH, depth=DEPTH, width=WIDTH, npix=NPIX)
    centres = ps.centres

    def per_cluster(**extra):
        for c in centres:
            project(ps.positions, ps.weights, c, BOXSIZE, **kw, **extra)

    # the same clusters both ways (their deposits differ: the clustered set's
    # largest clumps put millions of particles in the image)
    t_full, _ = best_time(per_cluster, max(1, repeat - 1))
    t_idx, _ = best_time(lambda: per_cluster(index=idx), repeat)
    t_full /= len(centres)
    t_idx /= len(centres)
    rows.append(_row(ps.name, n, "index", "project: full scan", None, t_full, t_full,
                     clusters=len(centres)))
    rows.append(_row(ps.name, n, "index", "project: with index", None, t_idx, t_full,
                     clusters=len(centres)))
    log(f"  {ps.name} N={n:.0e} index: project {t_full * 1e3:.1f} ms full scan, "
        f"{t_idx * 1e3:.3f} ms with the index per cluster ({t_full / t_idx:.0f}x)")
    radius = 3.0
    c0 = np.asarray(centres[0])

    def scan_sphere():
        d = ps.positions - c0.astype(np.float32)
        d -= np.float32(BOXSIZE) * np.round(d / np.float32(BOXSIZE))
        return np.flatnonzero(np.einsum("ij,ij->i", d, d) <= radius * radius)

    t_scan, _ = best_time(scan_sphere, max(1, repeat - 1))

    def sel_index():
        for c in centres:
            idx.select_sphere(c, radius)

    t_sel, _ = best_time(sel_index, repeat)
    t_sel /= len(centres)
    rows.append(_row(ps.name, n, "index", "select_sphere: numpy scan", None, t_scan, t_scan))
    rows.append(_row(ps.name, n, "index", "select_sphere: with index", None, t_sel, t_scan))
    log(f"  {ps.name} N={n:.0e} index: select_sphere r={radius} {t_scan * 1e3:.1f} ms scan, "
        f"{t_sel * 1e3:.3f} ms with the index ({t_scan / t_sel:.0f}x)")
    return rows


def run(sizes: Sequence[int] = (1_000_000, 10_000_000), *, repeat: int = 3,
        threads: Sequence[int] = (1, 2), swift: bool = True,
        log: Callable[[str], None] = print) -> dict:
    """Run the kernel benchmark; return ``{"machine": ..., "setup": ..., "rows": [...]}``."""
    rows: list[Row] = []
    for n in sizes:
        for make in (random_set, clustered_set):
            ps = make(int(n))
            for scheme in ("ngp", "cic"):
                rows += _bench_scheme(ps, scheme, repeat, threads, log)
            rows += _bench_sph(ps, repeat, threads, swift, log)
            rows += _bench_index(ps, repeat, log)
            ps = in_spatial_order(ps)
            rows += _bench_index(ps, repeat, log)
            del ps
    setup = {"boxsize": BOXSIZE, "depth": DEPTH, "width": WIDTH, "npix": NPIX, "centre": CENTRE,
             "los": LOS, "azimuth": AZIMUTH, "positions_dtype": "float32", "repeat": repeat,
             "swiftsimio": _swift_version() if swift else None}
    return {"machine": machine_info(), "setup": setup, "rows": rows}


def _swift_version() -> str | None:
    try:
        import swiftsimio
    except ImportError:
        return None
    return getattr(swiftsimio, "__version__", "unknown")


def format_table(result: dict) -> str:
    """Render a :func:`run` result as a text table, machine first."""
    m = result["machine"]
    lines = [f"machine: {m['cpu_model']}, {m['logical_cores']} logical cores "
             f"(usable {m['usable_cores']}), OpenMP {'on' if m['openmp'] else 'off'} "
             f"({m['openmp_max_threads']} threads), numpy {m['numpy']}, {m['date_utc']}",
             f"setup: box {BOXSIZE} Mpc, slab +-{DEPTH} Mpc, image {WIDTH} Mpc / {NPIX} px, "
             f"los {LOS!r} azimuth {AZIMUTH}, float32 positions; ratio = baseline / time",
             ""]
    head = f"{'dataset':<13} {'N':>8} {'case':<6} {'method':<30} {'thr':>3} {'time [ms]':>11} {'ratio':>8}"
    lines += [head, "-" * len(head)]
    for r in result["rows"]:
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.1f}x"
        thr = "" if r["threads"] is None else str(r["threads"])
        note = ""
        if "mass_conservation_rel_err" in r:
            note = f"  mass err {r['mass_conservation_rel_err']:.1e}"
        if "bytes_per_particle" in r:
            note = f"  {r['bytes_per_particle']:.2f} B/particle"
        lines.append(f"{r['dataset']:<13} {r['n']:>8.0e} {r['case']:<6} {r['method']:<30} "
                     f"{thr:>3} {r['seconds'] * 1e3:>11.3f} {ratio:>8}{note}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the kernel benchmark (shared by ``cmc bench kernels`` and the script)."""
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7],
                        help="particle numbers (default: 1e6 1e7)")
    parser.add_argument("--big", action="store_true",
                        help="add 1e8 particles (needs ~16 GB of memory)")
    parser.add_argument("--repeat", type=int, default=3, help="timed repeats, best kept")
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
    t0 = time.perf_counter()
    result = run(sizes, repeat=args.repeat, swift=not args.no_swiftsimio,
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


