"""The synthetic universe (issue 4): files, labels from particles, abundance,
relations measured back from the particles, periodic boundary, determinism."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

import cmcore
from cmcnn import cli
from cmcore.errors import InputError
from cmcore.halos import read_halos
from cmcore.readers import read_snapshot
from cmcore.synth import generate, get_preset
from cmcore.synth import relations as rel
from cmcore.synth.cosmo import rho_crit
from cmcore.synth.measure import fit_power_law, measure
from cmcore.synth.universe import Halo, realise_halo

SEED = 1


@pytest.fixture(scope="module")
def tiny(tiny_universe):
    """The ``tiny`` preset with seed 1 (the session's ``tiny_universe`` of conftest.py)."""
    assert json.loads(tiny_universe.meta.read_text())["seed"] == SEED
    return tiny_universe


@pytest.fixture(scope="module")
def snap(tiny):
    return read_snapshot(tiny.snapshot)


@pytest.fixture(scope="module")
def relations(tiny):
    """Measured relations and the generator's drawn properties, in halo-id order."""
    got = measure(tiny.snapshot, tiny.halos)
    order = np.argsort(got["halo_id"])
    return {k: np.asarray(v)[order] for k, v in got.items()}, tiny.targets


def _all_particles(snap):
    types = list(snap.particles.values())
    return np.concatenate([p.positions for p in types]), np.concatenate([p.masses for p in types])


def test_outputs_are_complete_and_described(tiny, snap):
    assert sorted(p.name for p in tiny.out.iterdir()) == ["halos.h5", "snapshot.hdf5", "synth.json"]
    meta = json.loads(tiny.meta.read_text())
    assert meta["code_version"] == cmcore.__version__ and meta["seed"] == SEED
    assert meta["config"] == get_preset("tiny").as_dict()
    assert "Diemer" in meta["relations"]["concentration"]["model"]
    assert snap.flavour == "eagle" and snap.redshift == 0.0
    assert snap.boxsize == pytest.approx(40.0 / snap.h)
    for ptype, n in tiny.n_particles.items():
        assert len(snap.particles[ptype].masses) == n > 0
    gas = snap.particles["gas"]
    assert set(gas.fields) >= {"density", "temperature", "smoothing_length", "metallicity"}
    assert np.all((gas.positions >= 0) & (gas.positions < snap.boxsize))
    # support radius holds 48 neighbours at the particle's (physical) density
    n_ngb = 4 / 3 * np.pi * gas.fields["smoothing_length"].astype(float) ** 3 * gas.fields[
        "density"] / gas.masses
    np.testing.assert_allclose(n_ngb, 48.0, rtol=1e-5)
    with h5py.File(tiny.snapshot) as f:
        ids = np.concatenate([f[g]["ParticleIDs"][()] for g in ("PartType0", "PartType1", "PartType4")])
    assert np.unique(ids).size == ids.size


def test_catalogue_mass_is_all_particles_within_r200(tiny, snap):
    cat = read_halos(tiny.halos)
    assert len(cat) == 10 * get_preset("tiny").clusters_per_bin
    pos, mass = _all_particles(snap)
    rho_200 = 200.0 * rho_crit(0.0)
    for centre, m200, r200 in zip(cat.centre, cat.m200, cat.r200):
        d = pos - centre
        d -= snap.boxsize * np.round(d / snap.boxsize)
        r = np.sqrt(np.einsum("ij,ij->i", d, d))
        assert mass[r <= r200].sum() == pytest.approx(m200, rel=1e-10)
        assert m200 / (4 / 3 * np.pi * r200**3) == pytest.approx(rho_200, rel=1e-10)
        # just outside r200 the mean density has dropped below 200 rho_crit
        outer = np.sort(r[r > r200])[0]
        assert mass[r <= outer].sum() / (4 / 3 * np.pi * outer**3) < rho_200
    # labels are measured, not copied from the inputs (but close to them)
    ratio = cat.m200 / np.sort(tiny.targets["m200"])[::-1]
    assert np.all(ratio != 1.0) and 0.8 < np.median(ratio) < 1.05
    assert np.all((np.log10(cat.m200) > 12.8) & (np.log10(cat.m200) < 15.1))


def _colossus(meta: dict):
    """colossus set from the numbers in synth.json by hand (not the generator's conversion)."""
    from colossus.cosmology import cosmology

    c = meta["cosmology"]
    params = dict(flat=True, H0=c["H0"], Om0=c["Om0"], Ob0=c["Ob0"], Tcmb0=c["Tcmb0"],
                  Neff=c["Neff"], sigma8=meta["sigma8"], ns=meta["n_s"])
    return cosmology.setCosmology("test-synth-independent", params=params, persistence="")


def _tinker_counts(meta: dict, edges_log10_msun: np.ndarray, volume_mpc3: float) -> np.ndarray:
    """Expected haloes per log-mass bin from colossus directly, in colossus' h-units."""
    from colossus.lss import mass_function

    cosmo = _colossus(meta)
    h = cosmo.H0 / 100.0
    out = []
    for lo, hi in zip(edges_log10_msun[:-1], edges_log10_msun[1:]):
        m_h = np.geomspace(10**lo * h, 10**hi * h, 64)  # M_sun/h
        dn = mass_function.massFunction(m_h, 0.0, mdef="200c", model="tinker08", q_out="dndlnM")
        out.append(np.trapezoid(dn, np.log(m_h)) * volume_mpc3 * h**3)  # (Mpc/h)^-3 -> per volume
    return np.asarray(out)


def _abundance_agrees(masses: np.ndarray, meta: dict, volume_mpc3: float, m_min: float,
                      m_max: float) -> bool:
    """Total, 0.5-dex bins (>= 10 expected) within 4 sigma, and chi^2, against colossus."""
    edges = np.arange(np.log10(m_min), np.log10(m_max) + 1e-9, 0.5)
    expected = _tinker_counts(meta, edges, volume_mpc3)
    drawn = np.histogram(np.log10(masses), edges)[0]
    ok = expected >= 10
    total = abs(drawn.sum() - expected.sum()) < 4 * np.sqrt(expected.sum())
    bins = np.all(np.abs(drawn[ok] - expected[ok]) < 4 * np.sqrt(expected[ok]))
    chi2 = np.sum((drawn[ok] - expected[ok]) ** 2 / expected[ok])
    return bool(ok.sum() >= 3 and total and bins and chi2 < ok.sum() + 5 * np.sqrt(2 * ok.sum()))


def test_field_abundance_matches_tinker_from_colossus(tiny):
    meta = json.loads(tiny.meta.read_text())
    config = get_preset("tiny")
    assert tiny.field_volume == pytest.approx((config.box_size_h / (meta["cosmology"]["H0"] / 100)) ** 3)
    assert _abundance_agrees(tiny.field_masses, meta, tiny.field_volume, config.field_min_mass,
                             config.field_max_mass)


@pytest.fixture(scope="module")
def big_volume_sampler(tiny):
    """Field masses drawn by the generator's own sampler in a (300 Mpc)^3 volume."""
    from cmcore.synth import haloes

    meta = json.loads(tiny.meta.read_text())
    config = get_preset("tiny")
    volume = 300.0**3

    def draw(seed=0):
        return haloes.sample_mass_function(np.random.default_rng(seed), volume,
                                           config.field_min_mass, config.field_max_mass)

    return draw, meta, volume, config


@pytest.mark.parametrize("mutation", ["none", "wrong_h", "wrong_slope", "normalisation_20pc"])
def test_mass_function_check_fails_under_planted_errors(big_volume_sampler, monkeypatch, mutation):
    from cmcore.synth import haloes

    draw, meta, volume, config = big_volume_sampler
    real = haloes.mass_function
    if mutation == "wrong_h":  # masses in M_sun/h taken as M_sun
        monkeypatch.setattr(haloes, "h", lambda: 1.0)
    elif mutation == "wrong_slope":
        monkeypatch.setattr(haloes, "mass_function", lambda m: real(m) * (np.asarray(m) / 1e13) ** 0.1)
    elif mutation == "normalisation_20pc":
        monkeypatch.setattr(haloes, "mass_function", lambda m: 0.8 * real(m))
    agrees = _abundance_agrees(draw(), meta, volume, config.field_min_mass, config.field_max_mass)
    assert agrees == (mutation == "none")


def _excess_expected(meta: dict, target_m200: np.ndarray, r_trunc: float, m_min: float,
                     m_max: float, r_max: float = 10.0) -> float:
    """Two-halo excess count from colossus directly: sum_t b(M_t) int n b dlnM int 4 pi r^2 xi dr."""
    from colossus.lss import bias, mass_function

    cosmo = _colossus(meta)
    h = cosmo.H0 / 100.0
    m_h = np.geomspace(m_min * h, m_max * h, 400)
    nb = mass_function.massFunction(m_h, 0.0, mdef="200c", model="tinker08", q_out="dndlnM") * \
        bias.haloBias(m_h, 0.0, mdef="200c", model="tinker10")
    per_volume = np.trapezoid(nb, np.log(m_h)) * h**3  # Mpc^-3
    rho200 = 200.0 * meta["rho_crit_msun_mpc3"]
    total = 0.0
    for m in target_m200:
        r_in = r_trunc * (3 * m / (4 * np.pi * rho200)) ** (1 / 3)
        r = np.geomspace(r_in, r_max, 400)
        xi = np.clip(cosmo.correlationFunction(r * h, 0.0), 0.0, None)
        shell = np.trapezoid(4 * np.pi * r**2 * xi, r)
        total += bias.haloBias(m * h, 0.0, mdef="200c", model="tinker10") * per_volume * shell
    return float(total)


def test_two_halo_excess_matches_linear_theory_from_colossus(tiny):
    meta = json.loads(tiny.meta.read_text())
    config = get_preset("tiny")
    expected = _excess_expected(meta, tiny.targets["m200"], config.r_trunc, config.field_min_mass,
                                config.field_max_mass)
    drawn = meta["n_field_realised"]["excess"]
    assert expected > 100
    assert abs(drawn - expected) < 4 * np.sqrt(expected)


@pytest.mark.parametrize("mutation", ["none", "wrong_h", "wrong_bias_slope", "normalisation_20pc"])
def test_two_halo_check_fails_under_planted_errors(tiny, monkeypatch, mutation):
    from cmcore.synth import haloes

    meta = json.loads(tiny.meta.read_text())
    config = get_preset("tiny")
    real_xi, real_bias = haloes.xi_linear, haloes.halo_bias
    if mutation == "wrong_h":  # separations in Mpc/h taken as Mpc
        monkeypatch.setattr(haloes, "xi_linear", lambda r: real_xi(np.asarray(r) / 0.6932))
    elif mutation == "wrong_bias_slope":
        monkeypatch.setattr(haloes, "halo_bias", lambda m: real_bias(m) * (np.asarray(m) / 1e13) ** 0.1)
    elif mutation == "normalisation_20pc":
        monkeypatch.setattr(haloes, "xi_linear", lambda r: 0.8 * real_xi(r))
    model = haloes.ExcessModel(config.field_min_mass, config.field_max_mass)
    m_t = np.repeat(tiny.targets["m200"], 10)  # ten draws per target: ~10x the counts
    bias_t = rel.halo_bias(m_t)
    rng = np.random.default_rng(0)
    drawn = sum(model.sample(rng, float(b), float(haloes.halo_extent(m, config.r_trunc)))[0].size
                for m, b in zip(m_t, bias_t))
    expected = _excess_expected(meta, m_t, config.r_trunc, config.field_min_mass,
                                config.field_max_mass)
    assert (abs(drawn - expected) < 4 * np.sqrt(expected)) == (mutation == "none")


@pytest.mark.parametrize("name, x, y, mass_key", [
    ("y500", "m500", "y500_intended", "m500"),
    ("lx_proxy", "m500", "lx_proxy_intended", "m500"),
    ("mstar_central", "m200", "mstar_central", "m200"),
])
def test_relations_have_intended_slope_and_scatter(relations, name, x, y, mass_key):
    got, drawn = relations
    _, slope, scatter = fit_power_law(got[x], got[name])
    _, slope_in, scatter_in = fit_power_law(drawn[mass_key], drawn[y])
    assert slope == pytest.approx(slope_in, abs=0.12)
    assert scatter == pytest.approx(scatter_in, abs=0.04)
    assert 0.85 < np.median(got[name] / drawn[y]) < 1.1


#: Tolerances [dex] of the literature checks on ``tiny`` (30 clusters, 4x coarser particles):
#: the median offset over the observed sample's mass range (1e14-1e15 Msun) of
#: log(measured / literature).  `small` and `paper` are measured in docs/synth.md.
LITERATURE_TOLERANCE_DEX = {"y500": np.log10(1.15), "f_gas500": np.log10(1.15),
                            "t_sl_kev": np.log10(1.10), "lx_soft500": np.log10(1.35)}


def _literature_failures(measured: dict) -> list[str]:
    """Relations whose median offset from the literature exceeds its tolerance."""
    from cmcore.synth.literature import offsets

    found = offsets(measured)
    return [k for k, tol in LITERATURE_TOLERANCE_DEX.items()
            if not abs(found[k]["sample"]["median_dex"]) < tol]


def test_gas_is_drawn_at_the_m500_the_particles_realise(relations):
    """The gas relations' M500 is the spherical M500 measured back from all particles, not the NFW one."""
    got, drawn = relations
    realised = np.median(got["m500"] / drawn["m500"])
    nfw = np.median(got["m500"] / drawn["m500_nfw"])
    assert realised == pytest.approx(1.0, abs=0.02)  # neighbours' particles add a little
    assert nfw < 0.96  # triaxial haloes with their subhaloes hold less in a sphere
    # f_gas and T_X were drawn at the realised M500: measured back they follow the inputs there
    f_resid = np.log10(got["f_gas500"] / rel.hot_gas_fraction_500(got["m500"]))
    assert abs(np.median(f_resid)) < 0.03


def test_relations_match_the_literature(relations):
    got, _ = relations
    assert _literature_failures(got) == []
    # Y500-M500: Arnaud et al. 2010 slope 1.79
    _, slope, _ = fit_power_law(got["m500"], got["y500"])
    assert slope == pytest.approx(1.79, abs=0.15)
    # BCG + ICL within R500: Kravtsov et al. 2018 with 0.21 dex scatter (tests/test_stars.py)
    resid = np.log10(got["mstar_bcg_icl500"] / 10 ** (12.15 + 0.39 * np.log10(got["m500"] / 10**14.5)))
    assert abs(np.median(resid)) < 0.13 and 0.12 < np.std(resid) < 0.3
    # M-T: Arnaud et al. 2005, scatter
    resid = np.log10(got["t_sl"] / rel.temperature_x(got["m500"]))
    assert np.std(resid) < 0.1


def _planted_offsets(out) -> dict:
    """Median log10(measured / literature) over the observed mass range of a small tiny universe."""
    from cmcore.synth.literature import offsets

    u = generate("tiny", seed=3, out=out, clusters_per_bin=3, field_min_mass=1e13, progress=False)
    return {k: v["sample"]["median_dex"] for k, v in offsets(measure(u.snapshot, u.halos)).items()}


@pytest.fixture(scope="module")
def planted_reference(tmp_path_factory):
    return _planted_offsets(tmp_path_factory.mktemp("planted_reference"))


@pytest.mark.slow
@pytest.mark.parametrize("mutation, shifts", [
    ("fgas_normalisation_20pc", {"y500": np.log10(1.2), "f_gas500": np.log10(1.2)}),
    ("fgas_wrong_slope", {"f_gas500": None}),
    ("temperature_normalisation_20pc", {"t_sl_kev": np.log10(1.2)}),
    ("temperature_wrong_h", {"t_sl_kev": np.log10(0.6932 ** (-1 / 1.71))}),
    ("density_wrong_h", {"lx_soft500": np.log10(0.6932**-2)}),
])
def test_literature_checks_fail_under_planted_errors(tmp_path, monkeypatch, planted_reference, mutation,
                                                     shifts):
    """A planted error moves the measured offset from the literature by the planted amount.

    The same universe (seed 3, 30 targets) is generated with and without the error, so the
    shift is the error's alone (11 clusters in 1e14-1e15 M☉ scatter too much about the
    literature for an absolute window to separate 20 % from noise; the absolute agreement
    is `test_relations_match_the_literature` here and the `small`/`paper` records).
    """
    from cmcore import observables

    f_real, t_real = rel.hot_gas_fraction_500, rel.temperature_x
    if mutation == "fgas_normalisation_20pc":
        monkeypatch.setattr(rel, "hot_gas_fraction_500", lambda m: 1.2 * f_real(m))
    elif mutation == "fgas_wrong_slope":
        monkeypatch.setattr(rel, "hot_gas_fraction_500",
                            lambda m: f_real(m) * (np.asarray(m) / 1e14) ** 0.25)
    elif mutation == "temperature_normalisation_20pc":
        monkeypatch.setattr(rel, "temperature_x", lambda m: 1.2 * t_real(m))
    elif mutation == "temperature_wrong_h":  # M500 taken in h^-1 Msun: T of M/h
        monkeypatch.setattr(rel, "temperature_x", lambda m: t_real(np.asarray(m) / 0.6932))
    elif mutation == "density_wrong_h":  # gas densities read as h^2 Msun/Mpc^3: L x 1/h^2
        monkeypatch.setattr(observables, "_MSUN_MPC3_TO_G_CM3",
                            observables._MSUN_MPC3_TO_G_CM3 / 0.6932**2)
    found = _planted_offsets(tmp_path)
    for key, planted in shifts.items():
        moved = found[key] - planted_reference[key]
        if planted is None:  # (M500/1e14)^0.25 over 1e14-1e15: +0.03 to +0.25 dex
            assert moved > 0.05, (key, moved)
        else:
            assert moved == pytest.approx(planted, abs=0.03), (key, moved)


def test_gas_fractions_and_temperatures_are_physical(relations, snap):
    got, drawn = relations
    assert np.all((got["f_gas500"] > 0.03) & (got["f_gas500"] < 0.17))
    assert np.median(got["f_gas500"][got["m500"] > 3e14]) > np.median(got["f_gas500"][got["m500"] < 3e13])
    assert np.all((got["t_sl"] > 3e6) & (got["t_sl"] < 2e8))
    t = snap.particles["gas"].fields["temperature"]
    assert t.min() > 1e5 and t.max() < 3e8
    z = snap.particles["gas"].fields["metallicity"] / rel.Z_SUN
    assert z.min() >= 0.29 and z.max() <= 0.61


def test_clusters_across_the_boundary_are_intact(tiny):
    config = get_preset("tiny")
    box = config.box_size_h / 0.6932
    inside = Halo(0, 3e14, np.full(3, 0.5 * box), (2, 7), "target")
    corner = Halo(0, 3e14, np.zeros(3), (2, 7), "target")
    _, a = realise_halo(inside, SEED, config, box)
    _, b = realise_halo(corner, SEED, config, box)
    for ptype in a:
        pb = b[ptype]["positions"]
        assert np.all(pb >= 0) and np.all(pb < box)
        assert np.any(pb < 1.0) and np.any(pb > box - 1.0)  # it does straddle the corner
        wrapped = pb - box * np.round(pb / box)  # minimum image about the corner
        np.testing.assert_allclose(wrapped, a[ptype]["positions"] - 0.5 * box, atol=1e-9)


def test_targets_straddle_the_boundary_and_their_labels_hold(tiny, snap):
    cat = read_halos(tiny.halos)
    edge = np.min(np.minimum(cat.centre, snap.boxsize - cat.centre), axis=1) < cat.r200
    assert edge.any()
    pos, mass = _all_particles(snap)
    for centre, m200, r200 in zip(cat.centre[edge], cat.m200[edge], cat.r200[edge]):
        d = pos - centre
        d -= snap.boxsize * np.round(d / snap.boxsize)
        within = np.einsum("ij,ij->i", d, d) <= r200**2
        # the cluster is centred on its centre once wrapped, not split in two
        # (the median: a massive subhalo may pull the mean)
        assert np.linalg.norm(np.median(d[within], axis=0)) < 0.1 * r200
        raw = np.linalg.norm(pos - centre, axis=1) <= r200
        assert mass[raw].sum() < mass[within].sum()


def _arrays(path):
    out = {}
    with h5py.File(path) as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return out


def test_determinism(tmp_path):
    """Same seed, same files, whatever the number of worker processes; another seed, another universe."""
    small = dict(clusters_per_bin=1, box_size_h=20.0, field_min_mass=1e12)
    a = generate("tiny", seed=5, out=tmp_path / "a", **small)
    b = generate("tiny", seed=5, out=tmp_path / "b", workers=2, **small)
    c = generate("tiny", seed=6, out=tmp_path / "c", **small)
    for name in ("snapshot.hdf5", "halos.h5"):
        xa, xb = _arrays(a.out / name), _arrays(b.out / name)
        assert xa.keys() == xb.keys()
        for key in xa:
            assert xa[key].tobytes() == xb[key].tobytes(), key
    pa, pc = _arrays(a.snapshot), _arrays(c.snapshot)
    assert not np.array_equal(pa["PartType1/Coordinates"][:100], pc["PartType1/Coordinates"][:100])
    assert not np.array_equal(a.targets["m200"], c.targets["m200"])


def test_interrupted_run_leaves_no_complete_looking_file(tmp_path, monkeypatch):
    from cmcore.synth import universe

    calls = {"n": 0}
    real = universe.realise_halo

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(universe, "realise_halo", failing)
    with pytest.raises(KeyboardInterrupt):
        generate("tiny", seed=2, out=tmp_path, clusters_per_bin=1, box_size_h=20.0)
    assert list(tmp_path.iterdir()) == []


def test_a_failing_worker_ends_the_run_cleanly(tmp_path):
    """An error inside a worker process reaches the caller as itself, and no file is left behind."""
    with pytest.raises(InputError, match="ID layout"):
        generate("tiny", seed=2, out=tmp_path, clusters_per_bin=1, box_size_h=20.0, m_star=1e5, workers=2)
    assert list(tmp_path.iterdir()) == []


def test_chunks_cover_every_halo_once_in_order():
    from cmcore.synth.universe import _Plan, _catalogue
    from cmcore.synth.presets import get_preset

    config = get_preset("tiny", clusters_per_bin=2, box_size_h=30.0)
    targets, field, _, _ = _catalogue(config, 4, 30.0)
    plan = _Plan(targets + field, 4, config, 30.0, 1.0)
    for n in (1, 3, 50, 10_000):
        chunks = plan.chunks(n)
        assert [i for c in chunks for i in c] == list(range(len(plan.everyone)))
        assert all(len(c) > 0 for c in chunks) and len(chunks) <= n


def test_cli_synth_tiny_preset(tiny, tmp_path, capsys):
    assert cli.main(["synth", "--preset", "tiny", "--seed", str(SEED), "--out", str(tmp_path)]) == 0
    assert "30 target clusters" in capsys.readouterr().out
    assert _arrays(tmp_path / "halos.h5").keys() == _arrays(tiny.halos).keys()
    for key, value in _arrays(tmp_path / "halos.h5").items():
        np.testing.assert_array_equal(value, _arrays(tiny.halos)[key])  # CLI == Python API


def test_cli_synth_options_and_errors(tmp_path, capsys):
    assert cli.main(["synth", "--preset", "tiny", "--seed", "3", "--out", str(tmp_path / "u"),
                     "--clusters-per-bin", "1", "--box-size", "20", "--no-progress"]) == 0
    assert "10 target clusters" in capsys.readouterr().out
    assert len(read_halos(tmp_path / "u" / "halos.h5")) == 10
    assert cli.main(["synth", "--seed", "-1", "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cmc synth: error:") and "seed" in err and "\n" not in err
    (tmp_path / "file").write_text("x")
    assert cli.main(["synth", "--out", str(tmp_path / "file")]) == 2
    assert cli.main(["synth", "--box-size", "5", "--out", str(tmp_path / "w")]) == 2
    assert "too small" in capsys.readouterr().err
    assert cli.main(["synth", "--clusters-per-bin", "-1", "--out", str(tmp_path / "w")]) == 2
    assert cli.main(["synth", "--workers", "0", "--out", str(tmp_path / "w")]) == 2
    assert "workers" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_cli_synth_plots(tiny, tmp_path, capsys):
    out = tmp_path / "relations.png"
    assert cli.main(["synth-plots", str(tiny.out), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.stat().st_size > 10_000
    meta = json.loads(tiny.meta.read_text())
    offsets = meta["literature_offsets"]
    assert set(offsets) == {"lx_soft500", "lx_soft_image", "y500", "t_sl_kev", "f_gas500"}
    for key, entry in offsets.items():
        assert f"{key} vs {entry['source']}" in printed
        assert entry["sample"]["n"] > 0 and np.isfinite(entry["sample"]["median_dex"])
    # soft-band L_X from the images agrees with the particles' (projection adds a little)
    ratio = offsets["lx_soft_image"]["sample"]["ratio"] / offsets["lx_soft500"]["sample"]["ratio"]
    assert 0.95 < ratio < 1.4
    assert cli.main(["synth-plots", str(tmp_path), "--out", str(out)]) == 2
    assert "not a complete" in capsys.readouterr().err


def test_synth_plots_writes_atomically(tiny, tmp_path, monkeypatch):
    import matplotlib.figure

    before = tiny.meta.read_bytes()

    def interrupted(self, fname, **kwargs):
        Path(fname).write_bytes(b"half a PNG")
        raise KeyboardInterrupt

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", interrupted)
    code = cli.main(["synth-plots", str(tiny.out), "--out", str(tmp_path / "rel.png"), "--no-images"])
    assert code != 0  # "cmc: interrupted"
    assert list(tmp_path.iterdir()) == []  # neither the figure nor a temporary file
    assert tiny.meta.read_bytes() == before  # synth.json untouched


@pytest.mark.slow
def test_relations_tightly_with_more_clusters(tmp_path):
    result = generate("tiny", seed=11, out=tmp_path, clusters_per_bin=12, box_size_h=70.0)
    got = measure(result.snapshot, result.halos)
    order = np.argsort(got["halo_id"])
    got = {k: np.asarray(v)[order] for k, v in got.items()}
    drawn = result.targets
    for name, x, y, mass_key in [("y500", "m500", "y500_intended", "m500"),
                                 ("lx_proxy", "m500", "lx_proxy_intended", "m500"),
                                 ("mstar_central", "m200", "mstar_central", "m200")]:
        _, slope, scatter = fit_power_law(got[x], got[name])
        _, slope_in, scatter_in = fit_power_law(drawn[mass_key], drawn[y])
        assert slope == pytest.approx(slope_in, abs=0.06), name
        assert scatter == pytest.approx(scatter_in, abs=0.025), name
    resid = np.log10(got["mstar_bcg_icl500"] / 10 ** (12.15 + 0.39 * np.log10(got["m500"] / 10**14.5)))
    assert 0.15 < np.std(resid) < 0.25  # KVM18 0.21 at >= 1e14, less in groups (stars.py)


@pytest.mark.parametrize("planted_slope, within", [(1.53, True), (1.27, False), (1.85, False)])
def test_slope_comparison_finds_a_planted_slope(planted_slope, within):
    """`literature.slopes` recovers a planted L_X-M500 slope and flags one 2.5 sigma off REXCESS."""
    from cmcore.synth.literature import slopes

    rng = np.random.default_rng(4)
    m500 = 10 ** rng.uniform(14.0, 15.0, 400)
    lx = 4e43 * (m500 / 2e14) ** planted_slope * 10 ** (0.1 * rng.normal(size=m500.size))
    found = {s["source"]: s for s in slopes({"m500": m500, "lx_soft500": lx})}
    rexcess = found["Pratt et al. 2009 (REXCESS, BCES Y|X)"]
    assert rexcess["n"] == 400 and rexcess["measured"] == pytest.approx(planted_slope, abs=0.05)
    assert (abs(rexcess["sigmas"]) < 1) == within
    assert found["Lovisari et al. 2015 (groups, bias-corrected)"]["measured"] is None  # no groups
    assert "y500" not in {s["key"] for s in slopes({"m500": m500, "lx_soft500": lx})}
