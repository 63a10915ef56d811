"""Look at one true halo that ``cmc halos`` did not match (docs/scale.md, "Halo finding at scale").

Usage: ``python bench/halos_unmatched.py SNAPSHOT TRUTH FOUND ROW`` (ROW: row of the true
catalogue).  Reads all particles within 8 Mpc of the true centre (a region read), and
prints the nearest found centre, the dark-matter particle counts within 0.1-0.8 Mpc of
both centres, and M200 by spherical overdensity about both.
"""
import sys

import numpy as np
from scipy.spatial import cKDTree

from cmcore.halos import critical_density_comoving, read_halos, spherical_overdensity
from cmcore.readers import read_snapshot


def main(argv):
    snapshot, truth_path, found_path, row = argv[0], argv[1], argv[2], int(argv[3])
    truth, found = read_halos(truth_path), read_halos(found_path)
    box, centre = truth.boxsize, truth.centre[row]
    d = found.centre - centre
    d -= box * np.round(d / box)
    near = np.argmin(np.einsum("ij,ij->i", d, d))
    other = found.centre[near]
    print(f"true M200 {truth.m200[row]:.4g} Msun, R200 {truth.r200[row]:.3f} Mpc at {centre.round(2).tolist()}")
    print(f"nearest found: M200 {found.m200[near]:.4g} Msun at {np.linalg.norm(d[near]):.3f} Mpc")
    snap = read_snapshot(snapshot, region=(centre, 8.0), fields=[])
    tree = cKDTree(np.mod(snap.dm.positions, box), boxsize=box)
    for r in (0.1, 0.2, 0.4, 0.8):
        print(f"DM particles within {r} Mpc: true centre {len(tree.query_ball_point(centre, r))}, "
              f"found centre {len(tree.query_ball_point(other, r))}")
    kinds = list(snap.particles.values())
    rho = critical_density_comoving(snap.cosmology, snap.redshift)
    m200, _ = spherical_overdensity([p.positions for p in kinds], [p.masses for p in kinds],
                                    [centre, other], box, rho)
    print(f"SO M200 about the true centre {m200[0]:.4g} Msun, about the found one {m200[1]:.4g} Msun")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
