"""Cluster stellar content (issue 11): the drawn stars follow the literature relations,
the particles carry what was drawn, and the M200 labels stay exact with the new stars.

The literature numbers are typed here from the papers, not read from the module,
so a wrong constant in :mod:`cmcore.synth.stars` fails these tests."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from cmcore.halos import read_halos
from cmcore.readers import read_snapshot
from cmcore.synth import relations as rel
from cmcore.synth import stars
from cmcore.synth.measure import fit_power_law, measure
from cmcore.synth.universe import decode_ids

#: Kravtsov, Vikhlinin & Meshcheryakov 2018: log M* = norm + slope log10(M500 / 10^14.5), scatter.
KVM18_BCG = (12.15, 0.39, 0.21)
#: Total stars within R500: least-squares fit to the nine KVM18 clusters (their Table 1).
KVM18_TOTAL = (12.70, 0.60, 0.09)
#: KVM18 satellites within R500: slope 0.87 and scatter 0.10 dex; normalised so that BCG +
#: satellites equal the total fit at the pivot: log10(10^12.70 - 10^12.15).
KVM18_SAT = (np.log10(10**12.70 - 10**12.15), 0.87, 0.10)


def _kvm18(m500, fit):
    norm, slope, _ = fit
    return 10 ** (norm + slope * np.log10(np.asarray(m500) / 10**14.5))


def _satellites(m500):
    return _kvm18(m500, KVM18_SAT)


def test_total_relation_is_the_fit_to_the_kvm18_clusters():
    m500 = np.array([15.60, 10.30, 7.00, 5.34, 2.35, 1.86, 1.34, 0.46, 0.47]) * 1e14
    mstar = np.array([15.34, 12.35, 8.34, 5.48, 2.68, 3.48, 2.86, 1.88, 1.85]) * 1e12
    resid = np.log10(mstar / stars.total_stellar_mass_500(m500))
    assert abs(resid.mean()) < 0.01 and resid.std() == pytest.approx(KVM18_TOTAL[2], abs=0.01)
    slope = np.polyfit(np.log10(m500), resid, 1)[0]
    assert abs(slope) < 0.01


def _moster13(m200):
    """Moster, Naab & White 2013 z = 0 central stellar mass (their eq. 2 and Table 1)."""
    ratio = np.asarray(m200) / 10**11.590
    return np.asarray(m200) * 2 * 0.0351 / (ratio**-1.376 + ratio**0.608)


def _draws(log_m500, n, seed=0, c200=5.0):
    """``n`` stellar-content draws of a halo of M500 = 10^log_m500 with NFW c200."""
    rng = np.random.default_rng(seed)
    x500 = float(rel.nfw_r500_over_r200(c200)[0])
    m200 = 10**log_m500 * float(rel.nfw_mu(c200) / rel.nfw_mu(c200 * x500))
    r200 = float(rel.r_delta(m200))
    return [stars.draw_stellar_content(rng, m200, 10**log_m500, r200, x500 * r200, 2 * r200, 1e8,
                                       0.0) for _ in range(n)], m200, r200, x500 * r200


@pytest.mark.parametrize("log_m500", [13.2, 14.0, 14.8])
def test_cluster_draws_follow_kravtsov2018(log_m500):
    draws, m200, r200, r500 = _draws(log_m500, 1500, seed=int(10 * log_m500))
    central = np.log10([d.m_bcg + d.m_icl for d in draws])
    assert np.median(central) == pytest.approx(np.log10(_kvm18(10**log_m500, KVM18_BCG)), abs=0.03)
    assert central.std() == pytest.approx(KVM18_BCG[2], abs=0.015)
    assert all(d.weight == 1.0 and d.m_icl == pytest.approx(0.45 * (d.m_bcg + d.m_icl)) for d in draws)
    sat = np.log10([d.m_sat500_intended for d in draws])
    assert np.median(sat) == pytest.approx(np.log10(_satellites(10**log_m500)), abs=0.01)
    assert sat.std() == pytest.approx(KVM18_SAT[2], abs=0.01)
    assert abs(np.corrcoef(central, sat)[0, 1]) < 0.1  # drawn independently
    # their sum stays within the total fit's 1 sigma band
    total = np.log10([d.m_bcg + d.m_icl + d.m_sat500_intended for d in draws])
    assert abs(np.median(total) - np.log10(_kvm18(10**log_m500, KVM18_TOTAL))) < KVM18_TOTAL[2]
    assert 0.08 < total.std() < 0.14
    # the Poisson satellites hold the drawn mass within R500, on average
    within = np.array([d.sat_masses[d.sat_radii < r500].sum() for d in draws])
    ratio = within.sum() / sum(d.m_sat500_intended for d in draws)
    assert ratio == pytest.approx(1.0, abs=0.04)


def test_field_haloes_keep_moster2013_and_the_transition_is_smooth():
    draws, m200, _, _ = _draws(11.5, 1500)
    central = np.log10([d.m_bcg + d.m_icl for d in draws])
    assert central.mean() == pytest.approx(np.log10(_moster13(m200)), abs=0.02)
    assert central.std() == pytest.approx(0.15, abs=0.015)
    assert all(d.weight == 0 and d.m_icl == 0 and d.sat_masses.size == 0 for d in draws)
    # the mean relation is continuous and monotonic through 10^12-10^13 (no jump)
    logm = np.linspace(11.5, 13.5, 201)
    w = stars.transition_weight(10**logm)
    assert w[0] == 0 and w[-1] == 1 and np.all(np.diff(w) >= 0)
    c200 = 5.0
    x500 = float(rel.nfw_r500_over_r200(c200)[0])
    m200s = 10**logm * float(rel.nfw_mu(c200) / rel.nfw_mu(c200 * x500))
    mean = w * np.log10(_kvm18(10**logm, KVM18_BCG)) + (1 - w) * np.log10(_moster13(m200s))
    assert np.max(np.abs(np.diff(mean))) < 0.02  # 0.01-dex steps in mass


def test_satellites_are_less_concentrated_than_the_dark_matter_and_scale_like_richness():
    draws, m200, r200, _ = _draws(14.5, 300)
    radii = np.concatenate([d.sat_radii for d in draws]) / r200
    inner = np.mean(radii[radii < 1] < 0.25)
    # NFW with c = 2.9 (Lin, Mohr & Stanford 2004) within 0.25 R200, of the mass within R200
    mu = lambda x: np.log1p(x) - x / (1 + x)  # noqa: E731
    assert inner == pytest.approx(mu(2.9 * 0.25) / mu(2.9), abs=0.02)
    c_dm = float(rel.concentration_mean(m200))
    assert inner < mu(c_dm * 0.25) / mu(c_dm) - 0.02
    # richness (M* >= 1e10 within R200) rises as the satellite mass at fixed R500/R200
    n = [np.mean([np.sum((d.sat_masses >= 1e10) & (d.sat_radii < r)) for d in draws_])
         for draws_, _, r, _ in (_draws(13.8, 600, 1), _draws(14.8, 150, 2))]
    assert np.log10(n[1] / n[0]) == pytest.approx(np.log10(_satellites(10**14.8) / _satellites(10**13.8)),
                                                  abs=0.06)


@pytest.fixture(scope="module")
def measured(tiny_universe):
    got = measure(tiny_universe.snapshot, tiny_universe.halos)
    order = np.argsort(got["halo_id"])
    return {k: np.asarray(v)[order] for k, v in got.items()}, tiny_universe.targets


def test_particles_carry_the_drawn_stars(measured):
    got, drawn = measured
    # BCG + ICL within the measured R500: all of it but the ICL the ellipsoids take beyond
    ratio = got["mstar_bcg_icl500"] / (drawn["mstar_bcg"] + drawn["mstar_icl"])
    assert np.all((ratio > 0.85) & (ratio < 1.001)) and np.median(ratio) > 0.93
    # the central galaxy within 50 kpc, as intended (plus the odd satellite in the aperture)
    ratio = got["mstar_central"] / drawn["mstar_central"]
    assert 0.97 < np.median(ratio) < 1.1 and np.all(ratio > 0.97)
    # the measured relations recover the inputs: slope, normalisation, scatter (30 clusters)
    _, slope, scatter = fit_power_law(got["m500"], got["mstar_bcg_icl500"])
    assert slope == pytest.approx(KVM18_BCG[1], abs=0.1)
    assert scatter == pytest.approx(KVM18_BCG[2], abs=0.06)
    resid = np.log10(got["mstar_bcg_icl500"] / _kvm18(got["m500"], KVM18_BCG))
    assert abs(np.median(resid)) < 0.13  # 2.5 sigma for 30 clusters; the draws test is tighter
    _, slope, _ = fit_power_law(got["m500"], got["mstar_sat500"])
    _, slope_in, _ = fit_power_law(got["m500"], _satellites(got["m500"]))
    assert slope == pytest.approx(slope_in, abs=0.15)
    assert abs(np.log10(got["mstar_sat500"].sum() / _satellites(got["m500"]).sum())) < 0.06
    resid = np.log10(got["mstar500"] / _kvm18(got["m500"], KVM18_TOTAL))
    assert abs(np.median(resid)) < 0.1 and np.std(resid) < 0.2  # the sum sits <= 0.08 dex off the fit
    # total stars within R500: 0.5-12 % of M500 over the sample (Gonzalez et al. 2013; KVM18)
    f_star = got["mstar500"] / got["m500"]
    assert np.all((f_star > 0.005) & (f_star < 0.12))
    _, slope, _ = fit_power_law(got["m500"], f_star)
    assert -0.55 < slope < -0.15


def test_richness_counts_the_satellites(measured):
    got, drawn = measured
    # per drawn halo: its satellite mass within R500 in mean-mass galaxies, carried to R200
    x500 = drawn["r500"] / drawn["r200"]
    expected = (drawn["mstar_sat500_intended"] / stars.mean_satellite_mass(1e8)
                / stars.nfw_enclosed_fraction(x500, 2.9) * stars.fraction_above(1e10, 1e8))
    assert got["richness200"].sum() == pytest.approx(expected.sum(), rel=4 / np.sqrt(expected.sum()))
    _, slope, _ = fit_power_law(got["m200"], got["richness200"])
    _, slope_in, _ = fit_power_law(got["m200"], expected)
    assert slope == pytest.approx(slope_in, abs=0.12) and 0.6 < slope < 1.0  # LMS04: 0.84
    assert np.all(got["richness200"] <= drawn["n_satellites"])


def test_m200_labels_stay_exact_with_the_stars(tiny_universe):
    snap = read_snapshot(tiny_universe.snapshot)
    cat = read_halos(tiny_universe.halos)
    with h5py.File(tiny_universe.snapshot, "r") as f:
        galaxy = decode_ids(f["PartType4/ParticleIDs"][:])[2] >> stars.GALAXY_SHIFT
    for centre, m200, r200 in zip(cat.centre, cat.m200, cat.r200):
        within = {}
        for ptype, p in snap.particles.items():
            d = p.positions - centre
            d -= snap.boxsize * np.round(d / snap.boxsize)
            within[ptype] = np.einsum("ij,ij->i", d, d) <= r200**2
        total = sum(p.masses[within[t]].sum() for t, p in snap.particles.items())
        m_stars = snap.particles["stars"].masses[within["stars"]].sum()
        assert total == pytest.approx(m200, rel=1e-9)
        assert m_stars > 0.005 * m200  # the stars are part of the measured mass
        # BCG, ICL and satellites all sit inside
        assert {0, 1} <= set(np.unique(galaxy[within["stars"]]).tolist())


def test_docs_quote_the_star_noise_of_the_code():
    from pathlib import Path

    from cmcore import instrument

    text = (Path(__file__).resolve().parents[1] / "docs" / "synth.md").read_text()
    assert f"`PAPER_STAR_NOISE` = {instrument.PAPER_STAR_NOISE:.3g} M☉ kpc⁻²" in text
    assert f"`LITERAL_STAR_NOISE_MSUN` = {instrument.LITERAL_STAR_NOISE_MSUN:.3g} M☉ per pixel" in text
    assert "2.14e10" not in text and instrument.PAPER_STAR_NOISE * 1e6 == 2.14e11


def test_dataset_star_noise_from_the_sample(tiny_universe, tmp_path, capsys):
    import json

    from cmcnn import cli
    from cmcore.dataset import build_dataset, sample_star_noise
    from cmcore.datafile import DatasetConfig

    snap, halos = tiny_universe.snapshot, tiny_universe.halos
    config = DatasetConfig(per_bin=1, bins=(13.0, 15.0, 0.5), projections=("x", "diag"),
                           channels=("Star",), npix=40, fov_arcmin=8.0, instrument="ideal")
    clean = build_dataset(snap, halos, tmp_path / "ideal.h5", config, progress=False)
    with h5py.File(clean.path, "r") as f:
        expected = 0.1 * f["images/Star"][:].astype(np.float64).mean()
    rms = sample_star_noise(snap, halos, DatasetConfig(**{**config.__dict__, "instrument": "paper"}))
    assert rms == pytest.approx(expected, rel=1e-5) and rms > 0
    args = ["dataset", str(snap), "--halos", str(halos), "--channels", "Star", "--projections", "x,diag",
            "--per-bin", "1", "--bins", "13:15:0.5", "--npix", "40", "--fov", "8", "--no-progress"]
    assert cli.main(args + ["--out", str(tmp_path / "s.h5"), "--star-noise", "sample"]) == 0
    assert "Star noise from the sample" in capsys.readouterr().out
    with h5py.File(tmp_path / "s.h5", "r") as f:
        star = json.loads(f.attrs["instrument"])["channels"]["Star"]
        assert star["noise_rms"] == pytest.approx(rms, rel=1e-9)
        assert star["noise_unit"] == "solMass / kpc2 per pixel"
        noisy = f["images/Star"][:].astype(np.float64)
    with h5py.File(clean.path, "r") as f:
        assert np.std(noisy - f["images/Star"][:]) == pytest.approx(rms, rel=0.05)
    with pytest.raises(SystemExit) as exc:  # argparse: usage and one line, exit 2
        cli.main(args + ["--out", str(tmp_path / "t.h5"), "--star-noise", "-1"])
    assert exc.value.code == 2 and "--star-noise must be" in capsys.readouterr().err
