"""Benchmark of the compiled shrinking-sphere centres (``cmcore._centres``) against NumPy.

Groups are Gaussian clumps of N members (half of them with a denser satellite clump, a
few across the periodic faces) in a 100 Mpc box.  The baseline is
:func:`numpy_shrinking_sphere`, the same algorithm (Power et al. 2003) in NumPy, one
group at a time, each step selecting from all the group's members — also the reference
the tests compare the compiled kernel with.  Both run in the same process on the same
groups; the ratio is baseline time / compiled time, and the centres must agree to 1e-9 Mpc.

Usage: ``python bench/centres.py [--sizes 1e3 1e4 1e5] [--groups 20] [--out DIR]``.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np

from . import machine_info, write_result

BOXSIZE = 100.0


def numpy_shrinking_sphere(points: np.ndarray, boxsize: float) -> np.ndarray:
    """Shrinking-sphere centre of one group in NumPy (Power et al. 2003), periodic.

    The rules of :func:`cmcore.halos.shrinking_sphere_centres`: start from the centre of
    mass and the sphere holding every member, shrink by ``SHRINK_FACTOR`` and recentre
    while at least ``max(SHRINK_FINAL_MIN, min(SHRINK_FINAL_MAX, SHRINK_FINAL_FRACTION·N))``
    members stay inside.
    """
    from ..halos import SHRINK_FACTOR, SHRINK_FINAL_FRACTION, SHRINK_FINAL_MAX, SHRINK_FINAL_MIN

    d = points - points[0]
    d -= boxsize * np.round(d / boxsize)
    n = len(d)
    n_final = max(SHRINK_FINAL_MIN, min(SHRINK_FINAL_MAX, int(np.floor(SHRINK_FINAL_FRACTION * n))))
    centre = d.mean(axis=0)
    radius = np.linalg.norm(d - centre, axis=1).max()
    while radius > 1e-12 * boxsize:
        radius *= SHRINK_FACTOR
        inside = np.linalg.norm(d - centre, axis=1) <= radius
        if inside.sum() < n_final or not inside.any():
            break
        centre = d[inside].mean(axis=0)
    return np.mod(centre + points[0], boxsize)


def make_groups(n_members: int, n_groups: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``positions`` (float64), ``members`` and ``starts`` of ``n_groups`` clumps of ``n_members``."""
    rng = np.random.default_rng(seed)
    groups = []
    for g in range(n_groups):
        centre = rng.uniform(0, BOXSIZE, 3) if g % 4 else np.array([0.1, 50.0, 99.9])  # some across faces
        main = centre + rng.normal(0, 0.4, (n_members - n_members // 10 * (g % 2), 3))
        sat = centre + 1.0 + rng.normal(0, 0.05, (n_members // 10 * (g % 2), 3))
        groups.append(np.concatenate([main, sat]))
    pos = np.mod(np.concatenate(groups), BOXSIZE)
    starts = np.r_[0, np.cumsum([len(x) for x in groups])].astype(np.int64)
    return pos, np.arange(starts[-1], dtype=np.int64), starts


def bench(sizes: Sequence[int], n_groups: int, repeat: int = 3) -> dict:
    """Time both implementations on each group size, on equal terms; check that they agree.

    Both are single-threaded.  Each gets one untimed warm-up call, then ``repeat``
    rounds in alternating order (NumPy first in even rounds, cmc first in odd ones);
    the ratio is of the medians.
    """
    from ..halos import shrinking_sphere_centres

    rows = []
    for n in sizes:
        pos, members, starts = make_groups(int(n), n_groups)
        ways = {
            "numpy": lambda: np.array([numpy_shrinking_sphere(pos[members[a:b]], BOXSIZE)
                                       for a, b in zip(starts[:-1], starts[1:])]),
            "cmc": lambda: shrinking_sphere_centres(pos, BOXSIZE, members, starts),
        }
        out = {k: f() for k, f in ways.items()}  # warm-up
        times: dict[str, list[float]] = {k: [] for k in ways}
        for r in range(repeat):
            for k in (("numpy", "cmc") if r % 2 == 0 else ("cmc", "numpy")):
                t0 = time.perf_counter()
                out[k] = ways[k]()
                times[k].append(time.perf_counter() - t0)
        err = np.abs(out["cmc"] - out["numpy"])
        err = np.minimum(err, BOXSIZE - err).max()
        t_numpy, t_cmc = float(np.median(times["numpy"])), float(np.median(times["cmc"]))
        rows.append({"members": int(n), "groups": n_groups, "numpy_s": t_numpy, "cmc_s": t_cmc,
                     "numpy_s_all": times["numpy"], "cmc_s_all": times["cmc"], "repeat": repeat,
                     "ratio": t_numpy / t_cmc, "max_centre_difference_mpc": float(err)})
    return {"benchmark": "shrinking-sphere centres", "machine": machine_info(), "threads": 1, "warmup": 1,
            "repeat": repeat, "rows": rows}


def table(result: dict) -> str:
    m = result["machine"]
    lines = ["shrinking-sphere centres, compiled (cmcore._centres) vs NumPy, same groups, same process, 1 thread each,",
             f"one warm-up call each, then {result.get('repeat', 1)} rounds in alternating order; medians",
             f"machine: {m['cpu_model']}, {m['usable_cores']} usable cores, {m['date_utc']}",
             f"{'members':>9} {'groups':>7} {'numpy [s]':>10} {'cmc [s]':>10} {'ratio':>9} {'max |Δcentre| [Mpc]':>20}"]
    for r in result["rows"]:
        lines.append(f"{r['members']:>9,} {r['groups']:>7} {r['numpy_s']:>10.4f} {r['cmc_s']:>10.5f} "
                     f"{r['ratio']:>8.1f}x {r['max_centre_difference_mpc']:>20.1e}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the benchmark (shared by ``cmc bench centres`` and the script)."""
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e3, 1e4, 1e5], help="members per group")
    parser.add_argument("--groups", type=int, default=20, help="groups per size (default 20)")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds per implementation (default 3)")
    parser.add_argument("--out", default="bench/results", help="folder for centres.json/.txt")


def run_from_args(args: argparse.Namespace) -> int:
    if args.repeat < 1:
        raise ValueError("--repeat must be at least 1")
    result = bench([int(s) for s in args.sizes], args.groups, repeat=args.repeat)
    print(table(result))
    write_result(args.out, "centres", result, table(result))
    return 0


if __name__ == "__main__":
    from cmcore.benchmarks import run_module

    sys.exit(run_module(sys.modules[__name__]))
