"""Record of a ``cmc halos`` run: wall time and peak memory, and the catalogue against the truth.

The run itself is the user's command under GNU ``/usr/bin/time -v`` (the paper
preset's needs the whole machine and the shared big-memory lock, so it is not
started from here); this module reads that log (``Elapsed (wall clock) time``,
``Maximum resident set size``), the catalogue it wrote and the synthetic
universe's true catalogue (``halos.h5``), and records, with the machine:

- the number of haloes found;
- for the ``--top`` most massive true haloes: the fraction matched — a found
  centre within ``--match-radius`` × R200(true) of the true centre (periodic),
  the nearest one if several — and, over the matched ones, the median and the
  scatter (standard deviation and 1.4826 × MAD) of log10(M200 found / M200
  true), and the median centre offset in units of R200(true);
- for each unmatched true halo, the most massive found halo above ``--neighbour-mass``
  within ``--neighbour-radius`` of its centre (its distance in R200(true) and
  log10(M200 found / M200 true)), or none: was the cluster's group centred on
  another concentration, or merged into a neighbour's group?
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from . import machine_info, parse_time_log, write_result


def compare(found, truth, top: int = 500, match_radius: float = 0.5, neighbour_radius: float = 2.5,
            neighbour_mass: float = 1e12) -> dict:
    """Match the ``top`` most massive true haloes to found ones (see the module docstring).

    ``neighbour_radius`` is in the catalogues' length unit (Mpc), ``neighbour_mass`` in M☉.
    """
    from scipy.spatial import cKDTree

    box = float(truth.boxsize)
    n = min(top, len(truth))
    tree = cKDTree(np.mod(found.centre, box), boxsize=box)
    dist, j = tree.query(np.mod(truth.centre[:n], box), k=1)
    matched = dist <= match_radius * truth.r200[:n]
    ratio = np.log10(found.m200[j[matched]] / truth.m200[:n][matched])
    mad = float(np.median(np.abs(ratio - np.median(ratio)))) if ratio.size else float("nan")
    unmatched = []
    for i in np.flatnonzero(~matched):
        near = [k for k in tree.query_ball_point(np.mod(truth.centre[i], box), neighbour_radius)
                if found.m200[k] > neighbour_mass]
        row = {"row": int(i), "m200_msun": float(truth.m200[i]), "r200_mpc": float(truth.r200[i]),
               "neighbour": None}
        if near:
            k = max(near, key=lambda k: found.m200[k])
            d = found.centre[k] - truth.centre[i]
            d -= box * np.round(d / box)
            row["neighbour"] = {"m200_msun": float(found.m200[k]),
                                "distance_r200": float(np.linalg.norm(d) / truth.r200[i]),
                                "log_m200_ratio": float(np.log10(found.m200[k] / truth.m200[i]))}
        unmatched.append(row)
    return {
        "n_true_compared": int(n),
        "true_m200_range_msun": [float(truth.m200[n - 1]), float(truth.m200[0])],
        "match_radius_r200": match_radius,
        "matched_fraction": float(matched.mean()),
        "n_matched": int(matched.sum()),
        "median_log_m200_ratio": float(np.median(ratio)) if ratio.size else float("nan"),
        "std_log_m200_ratio": float(np.std(ratio)) if ratio.size else float("nan"),
        "robust_scatter_log_m200_ratio": 1.4826 * mad,
        "fraction_within_3pc": float(np.mean(np.abs(ratio) <= np.log10(1.03))) if ratio.size else float("nan"),
        "median_centre_offset_r200": float(np.median(dist[matched] / truth.r200[:n][matched]))
        if ratio.size else float("nan"),
        "unmatched_true_m200_msun": [float(m) for m in truth.m200[:n][~matched]],
        "neighbour_radius_mpc": neighbour_radius,
        "neighbour_mass_msun": neighbour_mass,
        "unmatched": unmatched,
    }


def format_table(r: dict) -> str:
    m, c = r["machine"], r["comparison"]
    return "\n".join([
        r["timed_command"] or "",
        (f"machine: {m['cpu_model']}, {m['usable_cores']} usable cores, {r['memory_total_gib']:.0f} GiB, "
        f"{m['date_utc']}"),
        (f"wall time {r['wall_seconds']:.0f} s ({r['wall_seconds'] / 60:.1f} min), "
        f"peak RSS {r['peak_rss_bytes'] / 2**30:.2f} GiB, exit status {r['exit_status']}"),
        f"haloes found: {r['n_halos']} (catalogue {r['catalogue']})",
        (f"vs truth ({r['truth']}), the {c['n_true_compared']} most massive true haloes "
        f"(M200 {c['true_m200_range_msun'][0]:.2e}-{c['true_m200_range_msun'][1]:.2e} Msun):"),
        (f"  matched (found centre within {c['match_radius_r200']} R200): {c['n_matched']} "
        f"({100 * c['matched_fraction']:.1f} %)"),
        (f"  log10 M200 found/true: median {c['median_log_m200_ratio']:+.4f} dex, std "
        f"{c['std_log_m200_ratio']:.4f} dex, 1.4826 MAD {c['robust_scatter_log_m200_ratio']:.4f} dex; "
        f"{100 * c['fraction_within_3pc']:.1f} % within 3 %"),
        f"  median centre offset {c['median_centre_offset_r200']:.4f} R200",
        (f"  unmatched: {len(c['unmatched'])}; the most massive found halo above {c['neighbour_mass_msun']:.0e} Msun "
        f"within {c['neighbour_radius_mpc']} Mpc of each:"),
        *[f"    row {u['row']:4d}  M200 {u['m200_msun']:.3g}  " + (
            "none" if u["neighbour"] is None else
            f"M200 {u['neighbour']['m200_msun']:.3g} at {u['neighbour']['distance_r200']:.2f} R200, "
            f"{u['neighbour']['log_m200_ratio']:+.2f} dex") for u in c["unmatched"]],
        "find_halos stages (s from its start; reading the snapshot came before):",
        *[f"  {t:7.1f} {text}" for t, text in r["stages"]],
    ])


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--time-log", required=True, help="standard error of /usr/bin/time -v around cmc halos")
    p.add_argument("--found", required=True, help="catalogue written by that cmc halos run")
    p.add_argument("--truth", required=True, help="the universe's true catalogue (halos.h5)")
    p.add_argument("--top", type=int, default=500, help="most massive true haloes compared (default 500)")
    p.add_argument("--match-radius", type=float, default=0.5, help="in R200 of the true halo (default 0.5)")
    p.add_argument("--neighbour-radius", type=float, default=2.5,
                   help="Mpc about an unmatched true halo searched for found haloes (default 2.5)")
    p.add_argument("--neighbour-mass", type=float, default=1e12,
                   help="least M200 [Msun] of those found haloes (default 1e12)")
    p.add_argument("--name", default="halos_paper", help="record name (default halos_paper)")
    p.add_argument("--out", default="bench/results", help="folder of the record (default bench/results)")


def run_from_args(args: argparse.Namespace) -> int:

    from ..halos import read_halos

    found, truth = read_halos(args.found), read_halos(args.truth)
    timing = parse_time_log(Path(args.time_log).read_text())
    with open("/proc/meminfo") as fh:
        total_kib = int(fh.readline().split()[1])
    result = {
        "benchmark": "halos",
        "machine": machine_info(),
        "memory_total_gib": total_kib / 2**20,
        **timing,
        "catalogue": str(args.found),
        "truth": str(args.truth),
        "n_halos": len(found),
        "source": found.source,
        "comparison": compare(found, truth, args.top, args.match_radius, args.neighbour_radius,
                              args.neighbour_mass),
    }
    table = format_table(result)
    print(table)
    write_result(args.out, args.name, result, table)
    return 0
