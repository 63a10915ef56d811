"""Look at one true halo that ``cmc halos`` did not match (docs/scale.md, "Halo finding at scale").

Usage: ``python bench/halos_unmatched.py SNAPSHOT TRUTH FOUND ROW [--out bench/results]``
(ROW: row of the true catalogue).  Reads all particles within 8 Mpc of the true centre (a
region read), and prints the nearest found centre, the dark-matter particle counts within
0.1-0.8 Mpc of both centres, and M200 by spherical overdensity about both; writes them to
``halos_unmatched.json`` / ``.txt`` in ``--out``.
"""
import argparse
import sys

import numpy as np
from scipy.spatial import cKDTree

from cmcore.benchmarks import write_result
from cmcore.halos import critical_density_comoving, read_halos, spherical_overdensity
from cmcore.readers import read_snapshot

#: Radii [Mpc] of the dark-matter counts about both centres.
RADII = (0.1, 0.2, 0.4, 0.8)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("snapshot")
    p.add_argument("truth")
    p.add_argument("found")
    p.add_argument("row", type=int)
    p.add_argument("--out", default="bench/results", help="record folder (default bench/results)")
    args = p.parse_args(argv)
    truth, found = read_halos(args.truth), read_halos(args.found)
    row = args.row
    box, centre = truth.boxsize, truth.centre[row]
    d = found.centre - centre
    d -= box * np.round(d / box)
    near = int(np.argmin(np.einsum("ij,ij->i", d, d)))
    other = found.centre[near]
    distance = float(np.linalg.norm(d[near]))
    lines = [f"true M200 {truth.m200[row]:.4g} Msun, R200 {truth.r200[row]:.3f} Mpc at {centre.round(2).tolist()}",
             (f"nearest found: M200 {found.m200[near]:.4g} Msun at {distance:.3f} Mpc "
             f"({distance / truth.r200[row]:.2f} R200)")]
    snap = read_snapshot(args.snapshot, region=(centre, 8.0), fields=[])
    tree = cKDTree(np.mod(snap.dm.positions, box), boxsize=box)
    counts = {}
    for r in RADII:
        counts[str(r)] = [len(tree.query_ball_point(np.mod(centre, box), r)),
                          len(tree.query_ball_point(np.mod(other, box), r))]
        lines.append(f"DM particles within {r} Mpc: true centre {counts[str(r)][0]}, found centre {counts[str(r)][1]}")
    kinds = list(snap.particles.values())
    rho = critical_density_comoving(snap.cosmology, snap.redshift)
    m200, _ = spherical_overdensity([q.positions for q in kinds], [q.masses for q in kinds],
                                    [centre, other], box, rho)
    lines.append(f"SO M200 about the true centre {m200[0]:.4g} Msun, about the found one {m200[1]:.4g} Msun")
    table = "\n".join(lines)
    print(table)
    record = {"row": row, "true": {"m200_msun": float(truth.m200[row]), "r200_mpc": float(truth.r200[row]),
                                   "centre_mpc": centre.tolist()},
              "nearest_found": {"m200_msun": float(found.m200[near]), "centre_mpc": other.tolist(),
                                "distance_mpc": distance, "distance_r200": distance / float(truth.r200[row])},
              "dm_counts_true_found": counts,
              "so_m200_msun": {"true_centre": float(m200[0]), "found_centre": float(m200[1])},
              "snapshot": args.snapshot, "truth_catalogue": args.truth, "found_catalogue": args.found}
    write_result(args.out, "halos_unmatched", record, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
