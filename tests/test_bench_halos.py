"""The cmc halos record: GNU time log parsing and the catalogue-against-truth comparison."""
from __future__ import annotations

import numpy as np
import pytest

from cmcore.benchmarks.halos import compare, parse_time_log
from cmcore.halos import HaloCatalogue

LOG = """[    0.0 s] friends-of-friends on 10 dark-matter particles
[  657.8 s] done
\tCommand being timed: "nice -n 10 python -m cmcnn.cli halos snap.hdf5 --out h.h5"
\tUser time (seconds): 100.5
\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02:03.5
\tMaximum resident set size (kbytes): 1048576
\tExit status: 0
"""


def test_parse_time_log():
    r = parse_time_log(LOG)
    assert r["wall_seconds"] == pytest.approx(3723.5)
    assert r["peak_rss_bytes"] == 2**30
    assert r["timed_command"].endswith("--out h.h5") and r["exit_status"] == 0
    assert r["stages"] == [[0.0, "friends-of-friends on 10 dark-matter particles"], [657.8, "done"]]
    with pytest.raises(ValueError, match="GNU time"):
        parse_time_log("nothing")


def _cat(centre, m200, r200, box=100.0):
    n = len(m200)
    return HaloCatalogue(np.arange(n), centre, m200, r200, np.full(n, 100), box, 0.0)


def test_compare_matches_through_the_boundary_and_measures_the_mass_ratio():
    rng = np.random.default_rng(0)
    centre = rng.uniform(0, 100, (50, 3))
    centre[0] = [99.95, 0.02, 50.0]
    m200 = np.sort(10 ** rng.uniform(13, 15, 50))[::-1]
    truth = _cat(centre, m200, np.full(50, 1.0))
    shifted = np.mod(centre + [0.1, -0.1, 0.0], 100.0)          # offsets 0.14 R200, across x = 100
    found_m = m200 * 10 ** np.where(np.arange(50) % 2, 0.01, -0.01)
    keep = np.arange(50) != 3                                    # one true halo not found
    found = _cat(shifted[keep], found_m[keep], np.ones(49))
    c = compare(found, truth, top=20, match_radius=0.5)
    assert c["n_true_compared"] == 20 and c["n_matched"] == 19 and c["matched_fraction"] == pytest.approx(0.95)
    assert c["unmatched_true_m200_msun"] == [pytest.approx(m200[3])]
    assert abs(c["median_log_m200_ratio"]) <= 0.01 and c["std_log_m200_ratio"] == pytest.approx(0.01, abs=1e-3)
    assert c["median_centre_offset_r200"] == pytest.approx(np.sqrt(0.02), rel=1e-6)
    assert compare(found, truth, top=20, match_radius=0.1)["n_matched"] == 0


def test_compare_names_the_found_halo_that_took_an_unmatched_clusters_place():
    """An unmatched true halo is reported with the most massive found halo near it (periodic), or none."""
    centre = np.array([[0.5, 50.0, 50.0], [20.0, 20.0, 20.0], [70.0, 70.0, 70.0]])
    truth = _cat(centre, np.array([6e14, 4e14, 1e14]), np.array([1.5, 1.2, 0.8]))
    # a denser 3e14 concentration 1.2 Mpc away across x = 0, a 1e11 speck near the second
    # cluster (below the mass floor), and the third cluster found where it is
    found = _cat(np.array([[99.3, 50.0, 50.0], [20.8, 20.0, 20.0], [70.0, 70.0, 70.0]]),
                 np.array([3e14, 1e11, 1e14]), np.ones(3))
    c = compare(found, truth, top=3, match_radius=0.5, neighbour_radius=2.5, neighbour_mass=1e12)
    assert c["n_matched"] == 1 and [u["row"] for u in c["unmatched"]] == [0, 1]
    near = c["unmatched"][0]["neighbour"]
    assert near["distance_r200"] == pytest.approx(1.2 / 1.5) and near["log_m200_ratio"] == pytest.approx(np.log10(0.5))
    assert c["unmatched"][1]["neighbour"] is None
    assert compare(found, truth, top=3, neighbour_radius=1.0)["unmatched"][0]["neighbour"] is None
