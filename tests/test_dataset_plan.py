"""Selection, plan and split of the dataset builder: pure functions of the catalogue."""
from __future__ import annotations

import numpy as np
import pytest

from cmcore.dataset import plan_images, select_halos, split_of
from cmcore.datafile import DatasetConfig
from cmcore.errors import InputError


def _catalogue(n=400, seed=1):
    rng = np.random.default_rng(seed)
    ids = rng.permutation(np.arange(10_000, 10_000 + n)).astype(np.int64)
    m200 = 10 ** rng.uniform(12.5, 15.2, n)
    return ids, m200


def test_selection_respects_bins_and_per_bin():
    ids, m200 = _catalogue()
    cfg = DatasetConfig(per_bin=7)
    rows, counts, msgs = select_halos(ids, m200, cfg)
    assert len(counts) == 8 and msgs == []
    assert all(c == 7 for c in counts)
    logm = np.log10(m200[rows])
    assert logm.min() >= 13.0 and logm.max() <= 15.0
    # bin k holds exactly counts[k] of the selected haloes
    hist, _ = np.histogram(logm, bins=cfg.bin_edges)
    assert hist.tolist() == counts
    assert len(set(rows.tolist())) == rows.size


def test_selection_independent_of_catalogue_order_and_grows_as_superset():
    ids, m200 = _catalogue()
    cfg = DatasetConfig(per_bin=5, seed=3)
    rows, _, _ = select_halos(ids, m200, cfg)
    perm = np.random.default_rng(0).permutation(ids.size)
    rows_p, _, _ = select_halos(ids[perm], m200[perm], cfg)
    assert set(ids[rows]) == set(ids[perm][rows_p])
    more, _, _ = select_halos(ids, m200, DatasetConfig(per_bin=9, seed=3))
    assert set(ids[rows]) < set(ids[more])
    other, _, _ = select_halos(ids, m200, DatasetConfig(per_bin=5, seed=4))
    assert set(ids[rows]) != set(ids[other])


def test_empty_bin_warns_and_continues():
    ids, m200 = _catalogue()
    keep = ~((np.log10(m200) >= 13.5) & (np.log10(m200) < 13.75))
    rows, counts, msgs = select_halos(ids[keep], m200[keep], DatasetConfig(per_bin=3))
    assert counts[2] == 0 and len(msgs) == 1 and "13.50-13.75" in msgs[0]
    assert sum(counts) == rows.size == 3 * 7


def test_plan_is_keyed_by_halo_and_projection_not_order():
    ids, m200 = _catalogue()
    cfg = DatasetConfig(per_bin=4, z_range=(0.03, 0.07))
    rows, _, _ = select_halos(ids, m200, cfg)
    plan = plan_images(rows, ids, cfg)
    assert len(plan) == 4 * rows.size
    for t in plan:
        assert 0.03 <= t.redshift <= 0.07 and 0 <= t.azimuth < 2 * np.pi
        assert len(t.noise_seeds) == 4 and len(set(t.noise_seeds)) == 4
    by_key = {t.key: t for t in plan}
    assert len(by_key) == len(plan)
    # the same halo in a reversed plan gets the same draws
    again = {t.key: t for t in plan_images(rows[::-1], ids, cfg)}
    assert again == by_key
    # projections of one halo are not all alike
    az = [by_key[(int(ids[rows[0]]), p)].azimuth for p in cfg.projections]
    assert len(set(az)) == 4
    zs = np.array([t.redshift for t in plan])
    assert abs(zs.mean() - 0.05) < 0.004  # uniform in [0.03, 0.07]


def test_split_by_halo_is_stable_and_has_the_fractions():
    ids = np.arange(5000, dtype=np.int64)
    s = split_of(ids, seed=0)
    frac = np.bincount(s, minlength=3) / ids.size
    assert np.allclose(frac, [0.6, 0.2, 0.2], atol=0.025)
    # a halo repeated (four projections) always lands in the same split
    rep = np.repeat(ids[:100], 4)
    assert (split_of(rep, seed=0).reshape(100, 4) == s[:100, None]).all()
    # stable when more haloes are added, different with another seed
    assert (split_of(ids[:1000], seed=0) == s[:1000]).all()
    assert (split_of(ids, seed=1) != s).any()


@pytest.mark.parametrize("kwargs", [
    {"per_bin": 0}, {"bins": (15.0, 13.0, 0.25)}, {"projections": ("x", "w")},
    {"channels": ("Star", "Star")}, {"z_range": (0.0, 0.05)}, {"split_fractions": (0.5, 0.2, 0.2)},
])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(InputError):
        DatasetConfig(**kwargs)


def test_config_json_round_trip_and_differences():
    cfg = DatasetConfig(per_bin=3, channels=("Ypar",), z_range=(0.04, 0.05))
    assert DatasetConfig.from_json(cfg.to_json()) == cfg
    assert DatasetConfig(per_bin=9, channels=("Ypar",), z_range=(0.04, 0.05)).differences(cfg) == []
    diffs = DatasetConfig(per_bin=3, channels=("Star",), z_range=(0.04, 0.05)).differences(cfg)
    assert len(diffs) == 1 and diffs[0].startswith("channels")
