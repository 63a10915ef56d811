"""The classical baseline on synthetic datasets with a planted power law and aperture."""
from __future__ import annotations

import csv
import json
import math

import h5py
import numpy as np
import pytest

from cmcnn import cli
from cmcnn.evaluate.baseline import Aperture, enclosed_sums, fit_baseline, pixel_radii, soft_log10, write_baseline
from cmcnn.evaluate.predictions_csv import COLUMNS, read_predictions
from cmcore.datafile import DatasetConfig, noise_field
from cmcore.errors import InputError
from cmcore.halos import cosmology_to_json
from cmcore.observables import default_cosmology, pixel_normalisation

SLOPE_B = 5.0 / 3.0  # planted X ∝ M^(5/3), the self-similar Y–M slope


def make_dataset(path, *, aperture: Aperture, channel: str = "Ypar", n_halo: int = 60, amplitude: float = 1e-5,
                 seed: int = 0) -> float:
    """Write a dataset (docs/dataset.md layout) whose ``channel`` carries a planted power law.

    The intrinsic quantity inside ``aperture`` is X = A (M/1e14)^(5/3) exactly; inside
    it, a random fraction sits in a core of a third of its radius (so smaller
    apertures scatter), and a random fraction of X (up to 60 %) is spread uniformly
    outside it (so larger apertures scatter); then the instrument's recorded noise.
    ``amplitude`` is the mean pixel value inside the aperture at M = 1e14 and z = 0.05.
    Returns log10 A.
    """
    rng = np.random.default_rng(seed)
    config = DatasetConfig(channels=(channel,), instrument="paper", seed=seed)
    cosmo = default_cosmology()
    npix, pix = config.npix, config.pixel_scale_arcsec
    r = pixel_radii(npix, pix / 60.0)
    logm_halo = rng.uniform(13.0, 15.0, n_halo)
    split_halo = np.array([0, 0, 0, 1, 2] * (n_halo // 5), dtype=np.uint8)
    projections = (b"x", b"y", b"z", b"diag")
    n = n_halo * len(projections)
    logm = np.repeat(logm_halo, len(projections))
    z = rng.uniform(0.03, 0.07, n)
    from astropy import units as u

    d_a = cosmo.angular_diameter_distance(z).to_value(u.Mpc)

    def theta_arcmin(d_a_mpc):  # planted radius on the sky, computed here independently
        return aperture.radius if aperture.kind == "angular" else np.degrees(aperture.radius / d_a_mpc) * 60

    n_ref = np.count_nonzero(r <= theta_arcmin(cosmo.angular_diameter_distance(0.05).to_value(u.Mpc)))
    big_a = amplitude * n_ref / pixel_normalisation(channel, 0.05, pix, cosmo)
    seeds = rng.integers(0, 2**63, size=(n, 1), dtype=np.uint64)
    images = np.empty((n, npix, npix), dtype=np.float32)
    for k in range(n):
        theta = theta_arcmin(d_a[k])
        inside, core = r <= theta, r <= theta / 3
        total = big_a * 10 ** (SLOPE_B * (logm[k] - 14.0)) * pixel_normalisation(channel, z[k], pix, cosmo)
        f_core = rng.uniform(0.2, 0.8)
        img = np.zeros((npix, npix))
        img[core] += f_core * total / core.sum()
        img[inside & ~core] += (1 - f_core) * total / (inside & ~core).sum()
        img[~inside] += rng.uniform(0.0, 0.6) * total / (~inside).sum()
        img += noise_field(channel, int(seeds[k, 0]), float(z[k]), config, cosmo)
        images[k] = img
    with h5py.File(path, "w") as f:
        f.attrs.update({"format": "cmc-dataset", "format_version": 1, "config": config.to_json(),
                        "channels": [channel], "units": json.dumps({channel: ""}), "pixel_scale_arcsec": pix,
                        "npix": npix, "fov_arcmin": config.fov_arcmin, "cosmology": cosmology_to_json(cosmo),
                        "seed": seed, "split_names": ["train", "validation", "test"]})
        f[f"images/{channel}"] = images
        f["labels/m200"] = 10**logm
        f["labels/log10_m200"] = logm
        f["labels/halo_id"] = np.repeat(np.arange(n_halo, dtype=np.int64) + 100, len(projections))
        f["labels/projection"] = np.array(projections * n_halo, dtype="S4")
        f["labels/redshift"] = z
        f["labels/split"] = np.repeat(split_halo, len(projections))
        f["noise/seed"] = seeds
        f["noise/seed"].attrs["channels"] = [channel]
    return math.log10(big_a)


def test_enclosed_sums_count_pixel_centres_within_the_radius():
    npix, pix = 8, 1.0
    images = np.ones((2, npix, npix))
    images[1] *= 3.0
    # pixel centres at ±0.5, ±1.5, ...: 4 within 0.71, 12 within 1.6, all 64 within 5
    out = enclosed_sums(images, np.array([[0.71, 1.6, 5.0], [0.4, 0.71, 1.6]]), pix)
    assert out.tolist() == [[4.0, 12.0, 64.0], [0.0, 12.0, 36.0]]
    assert pixel_radii(npix, pix)[3, 4] == pytest.approx(math.sqrt(0.5))


def test_soft_log_is_log_for_bright_sums_and_finite_increasing_for_negative_ones():
    x = np.array([-1e3, -1.0, 0.0, 1.0, 1e3, 1e6])
    ell = soft_log10(x, 1.0)
    assert np.all(np.isfinite(ell)) and np.all(np.diff(ell) > 0)
    assert ell[2] == pytest.approx(0.0)
    assert ell[-1] == pytest.approx(6.0, abs=1e-11)
    assert ell[-2] == pytest.approx(3.0, abs=1e-6)


@pytest.mark.parametrize("planted", [Aperture("angular", 4.0), Aperture("physical", 0.2)])
def test_recovers_the_planted_power_law_and_chooses_the_planted_aperture(tmp_path, planted):
    data = tmp_path / "data.h5"
    log_a = make_dataset(data, aperture=planted)
    result = fit_baseline(data, ["Ypar"])
    fit = result.fits["Ypar"]
    assert fit.aperture == planted
    # log10 M = 14 + (log10 X - log10 A) / b
    assert fit.slope == pytest.approx(1 / SLOPE_B, rel=0.01)
    assert fit.intercept == pytest.approx(14.0 - log_a / SLOPE_B, abs=0.03)
    val = {(c["kind"], c["radius"]): c["validation_rms_dex"] for c in fit.candidates}
    best = val[(planted.kind, planted.radius)]
    assert best < 0.01
    # neighbours and the other kind of aperture are clearly worse
    assert all(v > 2 * best for key, v in val.items() if key != (planted.kind, planted.radius))
    pred = result.predictions["Ypar"]
    test = pred["split"] == "test"
    assert np.abs(pred["log10_m200_pred"][test] - pred["log10_m200_true"][test]).max() < 0.03


def test_noise_dominated_sums_are_softened_not_fatal(tmp_path):
    data = tmp_path / "faint.h5"
    make_dataset(data, aperture=Aperture("angular", 2.0), amplitude=2e-9, seed=3)
    result = fit_baseline(data, ["Ypar"], apertures=[Aperture("angular", 2.0), Aperture("angular", 6.0)])
    fit = result.fits["Ypar"]
    assert max(c["negative_fraction"] for c in fit.candidates) > 0.05
    # the softening scale is the aperture's noise rms: a few 1e-8 per pixel over ~450 pixels
    assert all(c["softening"] > 0 for c in fit.candidates)
    assert np.all(np.isfinite(result.predictions["Ypar"]["m200_pred"]))
    assert fit.slope > 0  # still increasing with the signal


def test_write_baseline_and_cli(tmp_path, capsys):
    data = tmp_path / "data.h5"
    make_dataset(data, aperture=Aperture("angular", 4.0), n_halo=30)
    out = tmp_path / "report"
    assert cli.main(["baseline", str(data), "--channels", "Ypar", "--out", str(out)]) == 0
    assert "Ypar" in capsys.readouterr().out
    with open(out / "baseline-Ypar.csv", newline="") as fh:
        assert next(csv.reader(fh)) == list(COLUMNS)
    cols = read_predictions(out / "baseline-Ypar.csv")
    assert cols["index"].tolist() == list(range(120))
    report = json.loads((out / "baseline.json").read_text())
    entry = report["channels"]["Ypar"]
    assert entry["aperture"] == {"kind": "angular", "radius": 4.0, "unit": "arcmin", "label": "4′"}
    test = (cols["split"] == "test") & (cols["log10_m200_true"] > 13.25) & (cols["log10_m200_true"] < 14.5)
    assert entry["table2"]["n"] == test.sum()
    ratio = cols["m200_pred"][test] / cols["m200_true"][test]
    assert entry["table2"]["rms_pct"] == pytest.approx(100 * np.sqrt(np.mean((ratio - 1) ** 2)))
    assert {s["radius"] for s in report["skipped_apertures"]} >= {0.5, 1.0}  # larger than the field at z = 0.03

    # evaluate with the baseline beside a predictions file: the comparison has both
    rep = tmp_path / "eval"
    assert cli.main(["evaluate", str(out / "baseline-Ypar.csv"), "--data", str(data), "--baseline", "all",
                     "--out", str(rep)]) == 0
    table = (rep / "comparison.md").read_text()
    assert "| baseline-Ypar | baseline |" in table and "| baseline Ypar (4′, image + z) | baseline |" in table
    assert "| baseline Ypar (4′, image only) | baseline |" in table  # both forms, each saying what it is given
    assert (rep / "baseline-Ypar" / "metrics.json").is_file() and (rep / "baseline-Ypar-2" / "metrics.json").is_file()
    m = json.loads((rep / "baseline-Ypar-image-only" / "metrics.json").read_text())
    assert m["given"] == "image only" and json.loads((rep / "baseline-Ypar-2" / "metrics.json").read_text())["given"] == "image + z"


def test_bad_channel_and_empty_split(tmp_path, capsys):
    data = tmp_path / "data.h5"
    make_dataset(data, aperture=Aperture("angular", 4.0), n_halo=10)
    assert cli.main(["baseline", str(data), "--channels", "Fxb", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no channel 'Fxb'" in err and "\n" not in err
    with h5py.File(data, "r+") as f:
        split = f["labels/split"][:]
        split[split == 2] = 0
        f["labels/split"][:] = split
    with pytest.raises(InputError, match="test split has no images"):
        fit_baseline(data, ["Ypar"])
    with pytest.raises(InputError, match="no channel"):
        write_baseline(fit_baseline(data, ["Star"]), tmp_path / "x")


def test_image_only_baseline_pays_for_not_knowing_the_distance(tmp_path):
    """Without z the pixel sum is X/d_A²(z) (Ypar): the fit scatters by the slope times the
    spread of log10 d_A² over the dataset's redshifts, computed here independently."""
    data = tmp_path / "data.h5"
    make_dataset(data, aperture=Aperture("angular", 4.0))
    blind = fit_baseline(data, ["Ypar"], redshift=False)
    aware = fit_baseline(data, ["Ypar"])
    fb, fa = blind.fits["Ypar"], aware.fits["Ypar"]
    assert not fb.redshift and fa.redshift and fb.given == "image only" and fa.given == "image + z"
    assert all(c["kind"] == "angular" for c in fb.candidates)
    assert fb.aperture == Aperture("angular", 4.0) and "pixel sum" in fb.unit
    from astropy import units as u

    with h5py.File(data, "r") as f:
        z, split = f["labels/redshift"][:], f["labels/split"][:]
    log_da2 = 2 * np.log10(default_cosmology().angular_diameter_distance(z).to_value(u.Mpc))
    expected = np.std(log_da2[split == 1]) / SLOPE_B
    val = min(c["validation_rms_dex"] for c in fb.candidates)
    assert val == pytest.approx(expected, rel=0.25)
    assert val > 5 * min(c["validation_rms_dex"] for c in fa.candidates)
