"""Table 2 quantities and per-bin bias against hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest

from cmcnn.evaluate.metrics import bias_scatter, bin_edges, in_range, per_bin, table2
from cmcore.errors import InputError


def test_bias_scatter_hand_computed():
    # ratios 2, 1/2, 1, 5/4: fractional errors 100, -50, 0, 25 %
    m_true = np.full(4, 1e14)
    s = bias_scatter(m_true, m_true * np.array([2.0, 0.5, 1.0, 1.25]))
    assert s.n == 4
    assert s.frac_bias_pct == pytest.approx(18.75)
    # deviations 81.25, -68.75, -18.75, 6.25: sum of squares 11718.75 / 3 = 62.5²
    assert s.frac_std_pct == pytest.approx(62.5)
    assert s.frac_bias_pct_se == pytest.approx(31.25)
    # RMS about zero (includes the bias): sqrt((100² + 50² + 0 + 25²)/4)
    assert s.rms_pct == pytest.approx(math.sqrt(13125.0 / 4))
    # log10 ratios ±0.30103, 0, 0.09691
    assert s.log_bias == pytest.approx(math.log10(1.25) / 4)
    assert s.scatter_dex == pytest.approx(0.2505206, abs=1e-6)
    assert s.log_bias_se == pytest.approx(0.2505206 / 2, abs=1e-6)
    # median log10(1.25)/2 = 0.048455; absolute deviations 0.252575, 0.349485, 0.048455,
    # 0.048455, whose median is (0.048455 + 0.252575)/2 = log10(2)/2
    assert s.robust_scatter_dex == pytest.approx(1.4826 * math.log10(2) / 2, abs=1e-9)
    assert s.robust_scatter_dex == pytest.approx(0.2231535, abs=1e-6)


def test_robust_scatter_ignores_an_outlier_but_rms_does_not():
    rng = np.random.default_rng(1)
    m_true = 10 ** rng.uniform(13.3, 14.4, 4000)
    log_err = rng.normal(0.0, 0.1, m_true.size)
    clean = bias_scatter(m_true, m_true * 10**log_err)
    log_err[:40] = 1.0  # 1 % of the clusters predicted 10x too massive
    dirty = bias_scatter(m_true, m_true * 10**log_err)
    assert clean.robust_scatter_dex == pytest.approx(0.1, rel=0.05)
    assert dirty.robust_scatter_dex == pytest.approx(clean.robust_scatter_dex, rel=0.05)
    assert dirty.rms_pct > 3 * clean.rms_pct


def test_table2_uses_the_open_central_range():
    logm = np.array([13.0, 13.25, 13.3, 14.0, 14.4999, 14.5, 14.9])
    m_true = 10**logm
    pred = m_true * np.array([9.0, 9.0, 1.1, 1.1, 1.1, 9.0, 9.0])  # only the inside is 10 % high
    assert in_range(m_true).tolist() == [False, False, True, True, True, False, False]
    t = table2(m_true, pred)
    assert t.n == 3
    assert t.frac_bias_pct == pytest.approx(10.0)
    assert t.rms_pct == pytest.approx(10.0)
    assert t.scatter_dex == pytest.approx(0.0, abs=1e-12)


def test_per_bin_against_independent_computation():
    rng = np.random.default_rng(7)
    logm = np.concatenate([rng.uniform(13.0, 15.0, 500), [13.0, 13.25, 15.0]])
    m_true = 10**logm
    m_pred = m_true * 10 ** (rng.normal(0.02, 0.1, logm.size) - 0.1 * (logm - 14))
    rows = per_bin(m_true, m_pred)
    assert [r["lo"] for r in rows] == pytest.approx(np.arange(13.0, 14.8, 0.25))
    assert sum(r["n"] for r in rows) == logm.size
    for k, r in enumerate(rows):
        lo, hi = 13.0 + 0.25 * k, 13.25 + 0.25 * k
        sel = (logm >= lo) & ((logm < hi) if k < 7 else (logm <= hi))
        ratio = m_pred[sel] / m_true[sel]
        assert r["n"] == sel.sum()
        assert r["frac_bias_pct"] == pytest.approx(100 * (ratio.mean() - 1))
        assert r["frac_std_pct"] == pytest.approx(100 * ratio.std(ddof=1))
        assert r["log_bias"] == pytest.approx(np.log10(ratio).mean())
        assert r["scatter_dex"] == pytest.approx(np.log10(ratio).std(ddof=1))
        assert r["central"] == (lo >= 13.25 and hi <= 14.5)


def test_bin_edges_cover_the_range_on_multiples_of_a_quarter_dex():
    assert bin_edges(np.array([13.1, 14.6])).tolist() == [13.0, 13.25, 13.5, 13.75, 14.0, 14.25, 14.5, 14.75]
    assert bin_edges(np.array([13.0, 14.0])).tolist() == [13.0, 13.25, 13.5, 13.75, 14.0]


def test_empty_bins_and_single_images_give_none_not_nan():
    m = np.array([10**13.1, 10**13.6])
    rows = per_bin(m, m * 1.1)
    assert [r["n"] for r in rows] == [1, 0, 1]
    assert rows[0]["frac_bias_pct"] == pytest.approx(10.0)
    assert rows[0]["scatter_dex"] is None and rows[0]["log_bias_se"] is None
    assert rows[1]["log_bias"] is None


@pytest.mark.parametrize("bad", [np.nan, np.inf, 0.0, -1e14])
def test_bad_masses_are_refused(bad):
    m = np.full(3, 1e14)
    pred = m.copy()
    pred[1] = bad
    with pytest.raises(InputError, match="predicted masses"):
        table2(m, pred)
    with pytest.raises(InputError, match="true masses"):
        bias_scatter(pred, m)


def test_standard_errors_are_by_halo_when_the_haloes_are_given():
    """Four identical projections of each halo carry one halo's information: the bootstrap
    over haloes gives the error of h haloes (s/√h), twice the naive s/√(4h) over images."""
    rng = np.random.default_rng(1)
    h = 400
    true = 10 ** rng.uniform(13.3, 14.4, h)
    pred = true * 10 ** rng.normal(0.0, 0.1, h)
    ids = np.repeat(np.arange(h), 4)
    s = bias_scatter(np.repeat(true, 4), np.repeat(pred, 4), halo_id=ids)
    naive = bias_scatter(np.repeat(true, 4), np.repeat(pred, 4))
    per_halo = np.log10(pred / true).std(ddof=1) / np.sqrt(h)
    assert s.n_halos == h and s.n == 4 * h
    assert s.log_bias_se == pytest.approx(per_halo, rel=0.1)
    assert s.log_bias_se == pytest.approx(2 * naive.log_bias_se, rel=0.1)
    # the error of the scatter: σ/√(2h) for a Gaussian
    assert s.scatter_dex_se == pytest.approx(s.scatter_dex / np.sqrt(2 * h), rel=0.15)
    # independent images (one per halo): the bootstrap agrees with s/√n
    one = bias_scatter(true, pred, halo_id=np.arange(h))
    assert one.log_bias_se == pytest.approx(bias_scatter(true, pred).log_bias_se, rel=0.1)


def test_table2_passes_the_haloes_of_the_selected_images():
    m = np.array([1e13, 1e14, 1e14, 2e14, 1e15])
    r = table2(m, m * 1.1, halo_id=np.array([7, 1, 1, 2, 9]))
    assert r.n == 3 and r.n_halos == 2
    with pytest.raises(InputError, match="halo_id"):
        table2(m, m, halo_id=np.arange(3))


def test_coverage_of_gaussian_errors_is_nominal_and_detects_overconfidence():
    from cmcnn.evaluate.metrics import coverage

    rng = np.random.default_rng(2)
    n = 20000
    sigma = rng.uniform(0.05, 0.2, n)
    true = rng.uniform(13.3, 14.4, n)
    pred = true + rng.normal(0.0, sigma)
    good = coverage(true, pred, sigma)
    assert good["68"]["observed"] == pytest.approx(0.6827, abs=0.01)
    assert good["95"]["observed"] == pytest.approx(0.9545, abs=0.005)
    assert np.allclose(good["reliability"]["observed"], good["reliability"]["nominal"], atol=0.015)
    # errors quoted half their true size: ±σ/2 holds 38.3 % of a Gaussian, ±σ 68.3 %
    bad = coverage(true, pred, sigma / 2)
    assert bad["68"]["observed"] == pytest.approx(0.383, abs=0.015)
    assert bad["95"]["observed"] == pytest.approx(0.6827, abs=0.015)
    # errors by halo: 4 copies of each image cover the same, with a halo-bootstrap error 2x the image one
    ids = np.repeat(np.arange(2000), 4)
    rep = coverage(np.repeat(true[:2000], 4), np.repeat(pred[:2000], 4), np.repeat(sigma[:2000], 4), ids)
    one = coverage(true[:2000], pred[:2000], sigma[:2000])
    assert rep["68"]["observed"] == pytest.approx(one["68"]["observed"])
    assert rep["68"]["se"] == pytest.approx(one["68"]["se"], rel=0.15)
