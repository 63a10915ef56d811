"""Redshift-aware models: export with both inputs and the error output, and every way cmc predict
finds a cutout's redshift (dataset labels, FITS header, --redshift, --catalog), refusals included."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from astropy.io import fits

pytest.importorskip("tensorflow")

from cmcnn import cli  # noqa: E402
from cmcnn.serve.predictor import Predictor  # noqa: E402
from cmcnn.train.data import ImageSource  # noqa: E402
from cmcnn.train.training import load_model, model_inputs  # noqa: E402

NPIX = 24


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _cutout(path, image, **cards):
    from cmcore.render import cutout_wcs

    header = cutout_wcs(NPIX, 10.0).to_header()
    header["BUNIT"] = ""
    header["CHANNEL"] = "Ypar"
    for k, v in cards.items():
        header[k] = v
    fits.PrimaryHDU(np.asarray(image, np.float64), header=header).writeto(path)
    return str(path)


@pytest.fixture(scope="module")
def zmodel(trained_onnx):
    return trained_onnx["modelz"], trained_onnx["runz"], trained_onnx["data"]


def test_export_takes_image_and_redshift_and_gives_the_calibrated_error(zmodel):
    model_path, run, data = zmodel
    p = Predictor(model_path)
    cfg = json.loads((run / "config.json").read_text())
    assert p.info.takes_redshift and p.info.has_error
    assert p.info.redshift_range == pytest.approx(tuple(cfg["scaling"]["redshift"]["range"]))
    model, _ = load_model(run)
    lo, hi = p.info.redshift_range
    with ImageSource(data, ["Ypar"]) as src:
        rows = src.rows("test")
        rows = rows[(src.label("redshift", rows) >= lo) & (src.label("redshift", rows) <= hi)]
        x, z = src.read(rows), src.label("redshift", rows)
    y = model(model_inputs(model, x, z), training=False)
    logm, err = p.predict(x, redshift=z, return_error=True)
    np.testing.assert_allclose(logm, np.asarray(y[0]).ravel(), atol=1e-5)
    np.testing.assert_allclose(err, cfg["error_scale"] * np.exp(np.asarray(y[1])[:, 1]), rtol=1e-4)
    assert p._split is not None  # the NumPy preprocessing split serves two-input graphs too
    with pytest.raises(Exception, match="redshift"):
        p.predict(x)
    with pytest.raises(Exception, match="outside the training range"):
        p.predict(x, redshift=hi + 0.5)


def test_cmc_predict_reads_the_redshift_from_labels_headers_flags_and_catalogues(zmodel, tmp_path, capsys):
    model_path, run, data = zmodel
    p = Predictor(model_path)
    lo, hi = p.info.redshift_range
    with ImageSource(data, ["Ypar"]) as src:
        x = src.read(np.arange(4))[..., 0]
    z_in = (lo + hi) / 2
    files = [_cutout(tmp_path / "a.fits", x[0], REDSHIFT=z_in),           # header REDSHIFT
             _cutout(tmp_path / "b.fits", x[1], Z=lo),                     # header Z
             _cutout(tmp_path / "c.fits", x[2]),                           # none: refused
             _cutout(tmp_path / "d.fits", x[3], REDSHIFT=hi + 1.0)]        # outside the range: refused
    out = tmp_path / "p.csv"
    assert cli.main(["predict", str(model_path), *files, "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "c.fits: HDU 0: no redshift" in err and "outside the training range" in err
    rows = {r["name"]: r for r in _rows(out)}
    assert set(rows) == {files[0], files[1]}
    assert float(rows[files[0]]["redshift"]) == pytest.approx(z_in, rel=1e-6)
    expect, expect_err = p.predict(x[:2, ..., None], redshift=[z_in, lo], return_error=True)
    got = np.array([float(rows[f]["log10_m200"]) for f in files[:2]])
    np.testing.assert_allclose(got, expect, atol=2e-7)
    np.testing.assert_allclose([float(rows[f]["log10_m200_err"]) for f in files[:2]], expect_err, atol=2e-7)
    # --redshift for all: c is predicted at it; a catalogue row comes first (d gets an in-range one)
    cat = tmp_path / "cat.csv"
    cat.write_text(f"file,redshift\nd.fits,{hi}\n")
    assert cli.main(["predict", str(model_path), *files, "--out", str(out), "--no-progress",
                     "--redshift", str(lo), "--catalog", str(cat)]) == 0
    rows = {r["name"]: r for r in _rows(out)}
    assert float(rows[files[2]]["redshift"]) == pytest.approx(lo, rel=1e-6)
    assert float(rows[files[3]]["redshift"]) == pytest.approx(hi, rel=1e-6)
    assert float(rows[files[0]]["redshift"]) == pytest.approx(lo, rel=1e-6)  # --redshift before the header
    # --extrapolate predicts outside the range
    assert cli.main(["predict", str(model_path), files[3], "--out", str(out), "--no-progress", "--extrapolate"]) == 0


def test_dataset_inputs_use_their_redshift_labels(zmodel, tmp_path):
    model_path, run, data = zmodel
    out = tmp_path / "d.csv"
    cli.main(["predict", str(model_path), str(data), "--out", str(out), "--no-progress", "--extrapolate"])
    rows = _rows(out)
    with ImageSource(data, ["Ypar"]) as src:
        z = src.label("redshift")
    idx = np.array([int(r["index"]) for r in rows])
    np.testing.assert_allclose([float(r["redshift"]) for r in rows], z[idx], rtol=1e-6)


def test_a_bad_catalogue_is_refused_in_one_line(zmodel, tmp_path, capsys):
    model_path, _, data = zmodel
    cat = tmp_path / "cat.csv"
    cat.write_text("file,redshift\na.fits,-1\n")
    assert cli.main(["predict", str(model_path), str(data), "--out", str(tmp_path / "x.csv"),
                     "--catalog", str(cat)]) == 2
    assert "not finite and positive" in capsys.readouterr().err
    cat.write_text("name,z\na.fits,0.05\n")
    assert cli.main(["predict", str(model_path), str(data), "--out", str(tmp_path / "x.csv"),
                     "--catalog", str(cat)]) == 2
    assert "no column(s) file, redshift" in capsys.readouterr().err


def test_mask_scan_of_a_redshift_aware_model_is_exact_at_the_given_redshift(zmodel, tmp_path):
    from cmcnn.interpret.maskscan import ScanModel, mask_scan

    model_path, _, data = zmodel
    scan = ScanModel(model_path)
    p = Predictor(model_path)
    lo, hi = p.info.redshift_range
    with ImageSource(data, ["Ypar"]) as src:
        image = src.read(np.array([3]))[0]
    with pytest.raises(Exception, match="redshift"):
        mask_scan(scan, image, stride=6)
    fast = mask_scan(scan, image, stride=6, redshift=lo)
    brute = mask_scan(scan, image, stride=6, redshift=lo, method="brute")
    np.testing.assert_allclose(fast.delta, brute.delta, atol=1e-5)
    assert fast.log10_m == pytest.approx(float(p.predict(image, redshift=lo)[0]), abs=1e-5)
    # the CLI takes the dataset label as the redshift
    assert cli.main(["interpret", "mask", str(model_path), str(data), "--index", "3", "--stride", "6", "--channels", "Ypar",
                     "--out", str(tmp_path / "m"), "--no-progress", "--redshift", str(hi)]) == 0
    summary = json.loads((tmp_path / "m" / "planted_3_mask.json").read_text())
    assert summary["redshift"] == hi
    assert summary["log10_m_pred"] == pytest.approx(float(p.predict(image, redshift=hi)[0]), abs=1e-5)


def test_export_with_the_validation_calibration_removes_regression_to_the_mean(zmodel, tmp_path):
    from cmcnn.serve.export import export_run
    from cmcnn.train.calibration import fit_calibration
    from cmcnn.train.training import predict_run

    _, run, data = zmodel
    out = tmp_path / "cal.onnx"
    s = export_run(run, out, calibrate=True)
    cal = json.loads(s.metadata["mass_calibration"])
    val = predict_run(run, split="validation")
    ref = fit_calibration(val["log10_m200_true"], val["log10_m200_pred"])
    assert cal["slope"] == pytest.approx(ref.slope) and cal["intercept"] == pytest.approx(ref.intercept)
    p = Predictor(out)
    with ImageSource(data, ["Ypar"]) as src:
        rows = src.rows("validation")
        x, z, t = src.read(rows), src.label("redshift", rows), src.log10_m200[rows]
    logm, err = p.predict(x, redshift=z, return_error=True, extrapolate=True)
    np.testing.assert_allclose(logm, ref.apply(val["log10_m200_pred"]), atol=1e-5)
    # calibrated on validation: no mean trend of the residual with the true mass, ±1σ holds 68.3 %
    assert abs(np.polyfit(t, logm - t, 1)[0]) < 1e-6 + abs(np.polyfit(t, val["log10_m200_pred"] - t, 1)[0]) * 0.01
    c1, c2 = np.mean(np.abs(logm - t) <= err), np.mean(np.abs(logm - t) <= 2 * err)   # at least nominal at 1σ and 2σ, one of them tight
    assert c1 >= 0.6827 - 1.5 / t.size and c2 >= 0.9545 - 1.5 / t.size
    assert min(abs(c1 - 0.6827), abs(c2 - 0.9545)) <= 1.5 / t.size
